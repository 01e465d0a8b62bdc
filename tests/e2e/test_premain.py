"""End-to-end tests of marblerun-premain against a real Coordinator: simulation mode
(EDG_COORDINATOR_SIMULATION=1, premain EDG_ATTESTATION=simulation) and softsgx (real DCAP
verification of the premain's quote). The "application" is /bin/sh dumping its argv, env and
files, so every test sees exactly what the premain handed over."""
import json
import os
import pathlib
import re
import stat
import subprocess

import pytest
import requests

from mrharness import BIN, MRENCLAVE, MRSIGNER, Coordinator, SoftSGX

PREMAIN = BIN / "marblerun-premain"

# The app: records its own argv (from /proc, so argv[0] is visible) and its environment.
DUMP = 'tr "\\0" "\\n" < /proc/$$/cmdline > "$OUT/argv"; env -0 > "$OUT/env"; echo started > "$OUT/started"'


def manifest(files=None, argv=None, env=None, max_activations=0, package=None, extra_marbles=None,
             tls=None):
    pkg = package or {"UniqueID": MRENCLAVE, "Debug": False}
    params = {"Files": files or {}, "Env": env or {}}
    if argv is not None:
        params["Argv"] = argv
    marbles = {"app": {"Package": "pkg", "MaxActivations": max_activations, "Parameters": params}}
    marbles.update(extra_marbles or {})
    m = {"Packages": {"pkg": pkg}, "Marbles": marbles,
         "Secrets": {"perMarble": {"Type": "symmetric-key", "Size": 128},
                     "shared": {"Type": "symmetric-key", "Size": 128, "Shared": True}}}
    if tls:
        m["TLS"] = tls
    return json.dumps(m).encode()


def run_premain(coord, tmp, marble_type="app", args=(), env=None, attestation="simulation",
                softsgx=None, uuid_file=None, timeout=60):
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    e = {k: v for k, v in os.environ.items() if not k.startswith(("EDG_", "MARBLE_"))}
    e.update({
        "EDG_MARBLE_COORDINATOR_ADDR": coord.mesh,
        "EDG_MARBLE_UUID_FILE": str(uuid_file or tmp / "uuid"),
        "EDG_ATTESTATION": attestation,
        "OUT": str(out),
    })
    if marble_type is not None:
        e["EDG_MARBLE_TYPE"] = marble_type
    if softsgx is not None:
        e.update({k: v for k, v in softsgx.env().items() if k.startswith("EDG_SOFTSGX")})
        e["EDG_ATTESTATION"] = "softsgx"
    e.update(env or {})
    return subprocess.run([str(PREMAIN), *args], env=e, cwd=tmp, capture_output=True, text=True,
                          timeout=timeout)


def read_env(tmp):
    env = {}
    for item in (tmp / "out" / "env").read_text().split("\0"):
        if "=" in item:
            k, v = item.split("=", 1)
            env[k] = v
    return env


def started(tmp):
    return (tmp / "out" / "started").exists()


@pytest.fixture(scope="module")
def softsgx(tmp_path_factory):
    return SoftSGX(tmp_path_factory.mktemp("softsgx") / "pki")


@pytest.fixture()
def sim(tmp_path, softsgx):
    c = Coordinator(tmp_path / "coord", None, {"EDG_COORDINATOR_SIMULATION": "1"})
    c.workdir.mkdir()
    c.start()
    yield c
    c.stop()


@pytest.fixture()
def real(tmp_path, softsgx):
    c = Coordinator(tmp_path / "coord", softsgx)
    c.workdir.mkdir()
    c.start()
    yield c
    c.stop()


# ---------------------------------------------------------------------------------------------


def test_missing_marble_type_is_fatal(sim, tmp_path):
    r = run_premain(sim, tmp_path, marble_type=None, args=["/bin/sh", "-c", DUMP])
    assert r.returncode == 1
    assert "environment variable not set: EDG_MARBLE_TYPE" in r.stderr
    assert not started(tmp_path)
    r = run_premain(sim, tmp_path, marble_type="", args=["/bin/sh", "-c", DUMP], env={"EDG_LOG_FORMAT": "json"})
    assert r.returncode == 1
    last = json.loads(r.stderr.strip().splitlines()[-1])
    assert last["level"] == "fatal" and last["msg"] == "[PreMain] environment variable not set: EDG_MARBLE_TYPE"
    assert not started(tmp_path)


def test_files_env_argv_applied_then_exec(sim, tmp_path):
    existing = tmp_path / "existing.txt"
    existing.write_text("old")
    existing.chmod(0o644)
    files = {
        str(tmp_path / "new" / "deep" / "key.hex"): "{{ hex .Secrets.perMarble }}",
        str(existing): "replaced",
        str(tmp_path / "root.pem"): "{{ pem .MarbleRun.RootCA.Cert }}",
    }
    sim.set_manifest(manifest(files=files, env={"GREETING": "hello {{ hex .Secrets.shared }}",
                                                "HOSTVAR": "from-manifest"},
                              argv=["/bin/sh", "-c", DUMP, "my-app", "x y", "z"]))
    r = run_premain(sim, tmp_path, env={"HOSTVAR": "from-host"})
    assert r.returncode == 0, r.stderr
    assert started(tmp_path)
    # files: contents as rendered, new dirs 0700, new files 0600, an existing file keeps only
    # its owner permission bits (the content may be secret)
    key = (tmp_path / "new" / "deep" / "key.hex").read_text()
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new" / "deep").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new" / "deep" / "key.hex").stat().st_mode) == 0o600
    assert existing.read_text() == "replaced"
    assert stat.S_IMODE(existing.stat().st_mode) == 0o600
    assert (tmp_path / "root.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert not list(tmp_path.rglob(".*premain-*")), "temporary files left behind"
    # env: manifest entries (overwriting the host's) and the predefined variables
    env = read_env(tmp_path)
    assert re.fullmatch(r"hello [0-9a-f]{32}", env["GREETING"])
    assert env["HOSTVAR"] == "from-manifest"
    for v in ("MARBLE_PREDEFINED_ROOT_CA", "MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN",
              "MARBLE_PREDEFINED_PRIVATE_KEY", "MARBLE_PREDEFINED_COORDINATOR_ROOT_CA"):
        assert "-----BEGIN" in env[v]
    assert env["MARBLE_PREDEFINED_ROOT_CA"].strip() == (tmp_path / "root.pem").read_text().strip()
    # argv: exactly the manifest's (argv[0] included)
    assert (tmp_path / "out" / "argv").read_text().splitlines() == ["/bin/sh", "-c", DUMP, "my-app", "x y", "z"]
    # the UUID file: 36 characters, no newline, 0600
    u = (tmp_path / "uuid").read_bytes()
    assert re.fullmatch(rb"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", u)
    assert stat.S_IMODE((tmp_path / "uuid").stat().st_mode) == 0o600
    m = re.search(r'done with PreMain.*"elapsedMs": ([0-9.]+)', r.stderr)
    assert m, r.stderr
    print(f"\npremain overhead (start -> exec of the app, simulation): {float(m.group(1)):.1f} ms")


def test_program_argument_is_executed_with_manifest_argv(sim, tmp_path):
    # Gramine-style: the file executed is the premain's argument, argv[0] comes from the manifest
    sim.set_manifest(manifest(argv=["renamed-shell", "-c", DUMP]))
    r = run_premain(sim, tmp_path, args=["--", "/bin/sh"])
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "argv").read_text().splitlines() == ["renamed-shell", "-c", DUMP]


def test_empty_manifest_argv_uses_premain_arguments(sim, tmp_path):
    sim.set_manifest(manifest())
    r = run_premain(sim, tmp_path, args=["--", "/bin/sh", "-c", DUMP, "arg0", "a"])
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "argv").read_text().splitlines() == ["/bin/sh", "-c", DUMP, "arg0", "a"]
    # no program at all: refused before anything happens
    (tmp_path / "out" / "started").unlink()
    r = run_premain(sim, tmp_path)
    assert r.returncode == 1
    assert "nothing to execute" in r.stderr


def test_json_logs(sim, tmp_path):
    sim.set_manifest(manifest(argv=["/bin/sh", "-c", DUMP]))
    r = run_premain(sim, tmp_path, env={"EDG_LOG_FORMAT": "JSON"})
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    msgs = [line["msg"] for line in lines]
    assert "[PreMain] starting PreMain" in msgs
    assert any(m.startswith("[PreMain] activating marble of type app") for m in msgs)
    assert all(line["level"] in ("info", "warn") for line in lines)
    # every line carries the prefix exactly once (Go's log.SetPrefix, spec §1.4 step 1)
    assert lines and len(lines) == len(r.stderr.splitlines())
    assert all(m.startswith("[PreMain] ") and "[PreMain] [PreMain]" not in m for m in msgs), msgs


def test_console_logs_all_prefixed(sim, tmp_path):
    sim.set_manifest(manifest(argv=["/bin/sh", "-c", DUMP]))
    r = run_premain(sim, tmp_path)
    assert r.returncode == 0, r.stderr
    # console lines: time, LEVEL, caller, message[, fields], tab-separated
    msgs = [line.split("\t")[3] for line in r.stderr.splitlines()]
    assert len(msgs) >= 8, r.stderr
    assert all(m.startswith("[PreMain] ") and not m.startswith("[PreMain] [PreMain]") for m in msgs), msgs
    assert "[PreMain] Not using TTLS" in msgs and "[PreMain] setting env vars from manifest" in msgs
    # and the error lines of a failing premain
    r = run_premain(sim, tmp_path, marble_type="nosuchtype")
    assert r.returncode == 1
    errors = [line.split("\t") for line in r.stderr.splitlines() if "\tERROR\t" in line]
    assert errors and errors[-1][3].startswith("[PreMain] activating marble failed: rpc error"), r.stderr


def test_uuid_persisted_and_reused(sim, tmp_path):
    keyfile = tmp_path / "key.hex"
    sim.set_manifest(manifest(files={str(keyfile): "{{ hex .Secrets.perMarble }}"},
                              argv=["/bin/sh", "-c", DUMP]))
    assert run_premain(sim, tmp_path).returncode == 0
    u1, k1 = (tmp_path / "uuid").read_text(), keyfile.read_text()
    assert run_premain(sim, tmp_path).returncode == 0
    assert (tmp_path / "uuid").read_text() == u1
    assert keyfile.read_text() == k1, "same UUID must give the same per-marble key"
    # another UUID file: another UUID and another key
    assert run_premain(sim, tmp_path, uuid_file=tmp_path / "uuid2").returncode == 0
    assert (tmp_path / "uuid2").read_text() != u1
    assert keyfile.read_text() != k1
    # accepted forms: {...}, urn:uuid:..., 32 hex digits; all name the same marble
    for form in ("{" + u1 + "}", "urn:uuid:" + u1, u1.replace("-", "").upper()):
        (tmp_path / "uuid3").write_text(form)
        assert run_premain(sim, tmp_path, uuid_file=tmp_path / "uuid3").returncode == 0
        assert keyfile.read_text() == k1


def test_uuid_file_with_newline_is_refused(sim, tmp_path):
    sim.set_manifest(manifest(argv=["/bin/sh", "-c", DUMP]))
    (tmp_path / "uuid").write_text("9a4b7f76-3e2a-4f38-8c63-7b2f0e44a1d0\n")
    r = run_premain(sim, tmp_path)
    assert r.returncode == 1
    assert "invalid UUID length: 37" in r.stderr
    assert not started(tmp_path)
    # a missing parent directory is an error too (no mkdir)
    r = run_premain(sim, tmp_path, uuid_file=tmp_path / "nodir" / "uuid")
    assert r.returncode == 1 and not (tmp_path / "nodir").exists()


def test_max_activations_refused_and_app_not_started(sim, tmp_path):
    sim.set_manifest(manifest(argv=["/bin/sh", "-c", DUMP], max_activations=1,
                              files={str(tmp_path / "f.txt"): "x"}))
    assert run_premain(sim, tmp_path).returncode == 0
    (tmp_path / "out" / "started").unlink()
    (tmp_path / "f.txt").unlink()
    r = run_premain(sim, tmp_path)
    assert r.returncode == 1
    assert "PermissionDenied" in r.stderr and "reached max activations count (1)" in r.stderr
    assert not started(tmp_path) and not (tmp_path / "f.txt").exists()


def test_failed_file_applies_nothing(sim, tmp_path):
    (tmp_path / "blocker").write_text("a file where a directory is needed")
    good = tmp_path / "gooddir" / "good.txt"
    sim.set_manifest(manifest(files={str(good): "x", str(tmp_path / "blocker" / "sub" / "f"): "y"},
                              argv=["/bin/sh", "-c", DUMP]))
    r = run_premain(sim, tmp_path)
    assert r.returncode == 1
    assert "applying the marble parameters failed" in r.stderr
    assert not started(tmp_path)
    assert not good.exists() and not (tmp_path / "gooddir").exists()
    assert not list(tmp_path.rglob(".*premain-*"))


# A TTLS config is no longer refused: tests/e2e/test_ttls_premain.py (issue 15).


def test_unreachable_coordinator(tmp_path):
    class Nowhere:
        mesh = "127.0.0.1:1"
    r = run_premain(Nowhere, tmp_path, args=["/bin/sh", "-c", DUMP])
    assert r.returncode == 1
    assert "Unavailable" in r.stderr and not started(tmp_path)


def test_p256_key_curve(sim, tmp_path):
    sim.set_manifest(manifest(argv=["/bin/sh", "-c", DUMP]))
    assert run_premain(sim, tmp_path, env={"EDG_MARBLE_KEY_CURVE": "P-256"}).returncode == 0
    r = run_premain(sim, tmp_path, env={"EDG_MARBLE_KEY_CURVE": "P-999"})
    assert r.returncode == 1 and "EDG_MARBLE_KEY_CURVE" in r.stderr


# ---- softsgx: the premain's quote goes through the real DCAP verifier ----


def test_softsgx_activation_and_wrong_mrenclave(real, softsgx, tmp_path):
    real.set_manifest(manifest(argv=["/bin/sh", "-c", DUMP],
                               package={"UniqueID": MRENCLAVE, "Debug": False}))
    r = run_premain(real, tmp_path, softsgx=softsgx)
    assert r.returncode == 0, r.stderr
    assert started(tmp_path)
    m = re.search(r'done with PreMain.*"elapsedMs": ([0-9.]+)', r.stderr)
    print(f"\npremain overhead (start -> exec of the app, softsgx quote + DCAP-verified activation): "
          f"{float(m.group(1)):.1f} ms")
    (tmp_path / "out" / "started").unlink()
    r = run_premain(real, tmp_path, softsgx=softsgx, env={"EDG_SOFTSGX_MRENCLAVE": "ef" * 32})
    assert r.returncode == 1
    assert "PermissionDenied" in r.stderr and "marble verification failed" in r.stderr
    assert not started(tmp_path)
    # without a quote (simulation issuer) a real Coordinator refuses
    r = run_premain(real, tmp_path)
    assert r.returncode == 1 and "invalid quote" in r.stderr
    assert not started(tmp_path)


# ---- Coordinator pinning (beyond MarbleRun) ----


def coordinator_root(coord):
    cert = requests.get(coord.url + "/api/v2/quote", verify=False, timeout=30).json()["data"]["cert"]
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", cert, re.S)
    return blocks[1]


@pytest.fixture()
def two(tmp_path, softsgx):
    cs = []
    for name in ("a", "b"):
        c = Coordinator(tmp_path / name, softsgx)
        c.workdir.mkdir()
        c.start()
        c.set_manifest(manifest(argv=["/bin/sh", "-c", DUMP],
                                package={"UniqueID": MRENCLAVE, "Debug": False}))
        cs.append(c)
    yield cs
    for c in cs:
        c.stop()


def pin_env(coord, root_pem=None, policy=None):
    e = {"EDG_MARBLE_COORDINATOR_CLIENT_ADDR": f"127.0.0.1:{coord.client_port}"}
    if root_pem is not None:
        e["EDG_MARBLE_COORDINATOR_ROOT_CA"] = root_pem
    if policy is not None:
        e["EDG_MARBLE_COORDINATOR_POLICY"] = str(policy)
    return e


def test_pinned_root_refuses_other_coordinator(two, softsgx, tmp_path):
    a, b = two
    root_a = coordinator_root(a)
    (tmp_path / "root-a.pem").write_text(root_a)
    # pinned to A, talking to A: fine (PEM given inline)
    r = run_premain(a, tmp_path, softsgx=softsgx, env=pin_env(a, root_a))
    assert r.returncode == 0, r.stderr
    assert "Coordinator verified" in r.stderr
    (tmp_path / "out" / "started").unlink()
    # pinned to A (as a file), talking to B: refused before the quote is sent, app not started
    r = run_premain(b, tmp_path, softsgx=softsgx, env=pin_env(b, str(tmp_path / "root-a.pem")))
    assert r.returncode == 1
    assert "Coordinator pinning" in r.stderr
    assert not started(tmp_path)
    # client API of A but mesh of B: the mesh certificate does not carry A's key
    e = pin_env(a, root_a)
    r = run_premain(b, tmp_path, softsgx=softsgx, env=e)
    assert r.returncode == 1
    assert "pinned key" in r.stderr or "certificate" in r.stderr
    assert not started(tmp_path)


def test_pinned_policy(two, softsgx, tmp_path):
    a, _ = two
    env_sgx = {"EDG_ATTESTATION_ROOT_CA": str(softsgx.dir / "root-ca.pem"),
               "EDG_ATTESTATION_COLLATERAL": str(softsgx.dir / "collateral.json")}
    good = tmp_path / "policy.json"
    good.write_text(json.dumps({"UniqueID": MRENCLAVE, "SignerID": MRSIGNER, "ProductID": 3,
                                "SecurityVersion": 3, "Debug": False}))
    r = run_premain(a, tmp_path, softsgx=softsgx, env={**env_sgx, **pin_env(a, policy=good)})
    assert r.returncode == 0, r.stderr
    (tmp_path / "out" / "started").unlink()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"UniqueID": "ef" * 32, "Debug": False}))
    r = run_premain(a, tmp_path, softsgx=softsgx, env={**env_sgx, **pin_env(a, policy=bad)})
    assert r.returncode == 1
    assert "Coordinator pinning" in r.stderr and "PackageProperties not compliant" in r.stderr
    assert not started(tmp_path)
    # without the test root the Coordinator's softsgx quote does not verify
    r = run_premain(a, tmp_path, softsgx=softsgx, env={**pin_env(a, policy=good),
                                                       "EDG_ATTESTATION_COLLATERAL": env_sgx["EDG_ATTESTATION_COLLATERAL"]})
    assert r.returncode == 1 and not started(tmp_path)
    # more accepted TCB statuses than the premain holds: refused, not cut to the first 16
    many = tmp_path / "many.json"
    many.write_text(json.dumps({"UniqueID": MRENCLAVE, "SignerID": MRSIGNER, "ProductID": 3,
                                "SecurityVersion": 3, "Debug": False,
                                "AcceptedTCBStatuses": ["SWHardeningNeeded"] * 16 + ["UpToDate"]}))
    r = run_premain(a, tmp_path, softsgx=softsgx, env={**env_sgx, **pin_env(a, policy=many)})
    assert r.returncode == 1
    assert "EDG_MARBLE_COORDINATOR_POLICY: more than 16 AcceptedTCBStatuses" in r.stderr, r.stderr
    assert not started(tmp_path)


# ---- libmarble: the same activation in-process ----

LIBMARBLE_PROBE = r'''
import ctypes, os, sys
lib = ctypes.CDLL(sys.argv[1])
lib.marble_activate.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
lib.marble_last_error.restype = ctypes.c_char_p
lib.marble_params_getenv.restype = ctypes.c_char_p
lib.marble_params_getenv.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
lib.marble_params_argv.restype = ctypes.c_char_p
lib.marble_params_argv.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
lib.marble_params_argc.argtypes = [ctypes.c_void_p]
lib.marble_params_file_count.argtypes = [ctypes.c_void_p]
lib.marble_params_apply.argtypes = [ctypes.c_void_p, ctypes.c_uint]
lib.marble_params_free.argtypes = [ctypes.c_void_p]
lib.marble_ssl_ctx_server.restype = ctypes.c_void_p
p = ctypes.c_void_p()
if lib.marble_activate(ctypes.byref(p)) != 0:
    print("ERROR", lib.marble_last_error().decode()); sys.exit(3)
print("GREETING", lib.marble_params_getenv(p, b"GREETING").decode())
print("ARGV", [lib.marble_params_argv(p, i).decode() for i in range(lib.marble_params_argc(p))])
print("FILES", lib.marble_params_file_count(p))
print("CTX-BEFORE", lib.marble_ssl_ctx_server(1) is not None, lib.marble_last_error().decode())
assert lib.marble_params_apply(p, 3) == 0, lib.marble_last_error()
print("CTX-AFTER", lib.marble_ssl_ctx_server(1) is not None)
lib.marble_params_free(p)
'''


def test_libmarble_activate_in_process(sim, tmp_path):
    lib = BIN.parent / "lib" / "libmarble.so"
    if b"libasan" in subprocess.run(["ldd", str(lib)], capture_output=True).stdout:
        pytest.skip("an ASan-instrumented libmarble cannot be loaded into python")
    sim.set_manifest(manifest(files={str(tmp_path / "lib.txt"): "x"}, env={"GREETING": "hi"},
                              argv=["app", "1"]))
    e = {k: v for k, v in os.environ.items() if not k.startswith(("EDG_", "MARBLE_"))}
    e.update({"EDG_MARBLE_TYPE": "app", "EDG_MARBLE_COORDINATOR_ADDR": sim.mesh,
              "EDG_MARBLE_UUID_FILE": str(tmp_path / "uuid"), "EDG_ATTESTATION": "simulation"})
    r = subprocess.run(["/usr/bin/python3", "-c", LIBMARBLE_PROBE, str(lib)], env=e, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "GREETING hi" in r.stdout
    assert "ARGV ['app', '1']" in r.stdout
    assert "FILES 1" in r.stdout
    assert "CTX-BEFORE False environment variable not set: MARBLE_PREDEFINED_ROOT_CA" in r.stdout
    assert "CTX-AFTER True" in r.stdout
    assert (tmp_path / "lib.txt").read_text() == "x"
    # a refused activation reports its reason
    e["EDG_MARBLE_TYPE"] = "nosuch"
    r = subprocess.run(["/usr/bin/python3", "-c", LIBMARBLE_PROBE, str(lib)], env=e, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 3 and "unknown marble type requested" in r.stdout
