"""The premain and the Coordinator around Transparent TLS (issue 15, docs/ttls.md): the premain
logs the policy and preloads libmarble-ttls.so (appended to LD_PRELOAD; EDG_MARBLE_TTLS=off
leaves it out; a library that cannot be found stops the marble); the library takes the key out
of the environment and refuses a config it cannot use; the Coordinator puts AllowedMarbleTypes
and an Outgoing Cert into MARBLE_TTLS_CONFIG and validates them."""
import json
import os
import subprocess

import pytest
from cryptography import x509

from mrharness import BIN, Coordinator, Marble, SoftSGX
from mrttls import PY, TTLS_LIB, base_env
from test_premain import DUMP, manifest, read_env, run_premain, started

LIBM = "/lib/x86_64-linux-gnu/libm.so.6"  # harmless to preload


@pytest.fixture(scope="module")
def softsgx(tmp_path_factory):
    return SoftSGX(tmp_path_factory.mktemp("softsgx") / "pki")


@pytest.fixture()
def sim(tmp_path):
    c = Coordinator(tmp_path / "coord", None, {"EDG_COORDINATOR_SIMULATION": "1"})
    c.workdir.mkdir()
    c.start()
    yield c
    c.stop()


def ttls_manifest(tls, env=None):
    m = json.loads(manifest(argv=["/bin/sh", "-c", DUMP], env=env or {}))
    m["TLS"] = tls
    m["Marbles"]["app"]["TLS"] = list(tls)
    return json.dumps(m).encode()


WEB = {"web": {"Outgoing": [{"Port": "8080", "Addr": "service.name"}], "Incoming": [{"Port": "8443"}]}}


def test_premain_preloads_the_library(sim, tmp_path):
    # an LD_PRELOAD the application already gets (here from the manifest's Env; a host value
    # would be preloaded into the premain itself, which an ASan build refuses)
    preload = LIBM if os.path.exists(LIBM) else ""
    sim.set_manifest(ttls_manifest(WEB, env=dict({"FROM_MANIFEST": "x"},
                                                 **({"LD_PRELOAD": preload} if preload else {}))))
    r = run_premain(sim, tmp_path)
    assert r.returncode == 0, r.stderr
    assert started(tmp_path)
    lines = [line.split("\t")[3] for line in r.stderr.splitlines() if "\tINFO\t" in line]
    # MarbleRun 1.4.1's policy log, then ours
    i = lines.index("[PreMain] TTLS config")
    assert lines[i + 1:i + 5] == ["[PreMain]   Incoming", "[PreMain]     *:8443", "[PreMain]   Outgoing",
                                  "[PreMain]     service.name:8080"]
    assert f"[PreMain] TTLS: preloading {TTLS_LIB.resolve()}" in lines
    env = read_env(tmp_path)
    want = f"{preload}:{TTLS_LIB.resolve()}" if preload else str(TTLS_LIB.resolve())
    assert env["LD_PRELOAD"] == want  # appended to the value the application would have had
    # the key never stays in the environment of the programs (sh, then env, both preloaded)
    assert "MARBLE_TTLS_CONFIG" not in env
    assert env["MARBLE_TTLS_ENDPOINTS"] == "in=*:8443 out=service.name:8080"
    assert env["FROM_MANIFEST"] == "x"
    assert "[TTLS] TTLS config" in r.stderr


def test_ttls_off_leaves_the_config_to_the_application(sim, tmp_path):
    sim.set_manifest(ttls_manifest(WEB))
    r = run_premain(sim, tmp_path, env={"EDG_MARBLE_TTLS": "off"})
    assert r.returncode == 0, r.stderr
    assert "EDG_MARBLE_TTLS=off: MARBLE_TTLS_CONFIG is left to the application" in r.stderr
    env = read_env(tmp_path)
    assert "LD_PRELOAD" not in env
    cfg = json.loads(env["MARBLE_TTLS_CONFIG"])  # as with MarbleRun: the app reads it itself
    assert sorted(cfg["tls"]["Incoming"]) == ["*:8443"]


def test_a_missing_library_stops_the_marble(sim, tmp_path):
    sim.set_manifest(ttls_manifest(WEB))
    r = run_premain(sim, tmp_path, env={"EDG_MARBLE_TTLS_LIB": str(tmp_path / "nope.so")})
    assert r.returncode == 1
    assert f"TTLS configured, but EDG_MARBLE_TTLS_LIB {tmp_path / 'nope.so'} cannot be read" in r.stderr
    assert not started(tmp_path)
    assert not (tmp_path / "out" / "env").exists()


def test_an_empty_config_is_an_error(sim, tmp_path):
    sim.set_manifest(ttls_manifest({"none": {}}))
    r = run_premain(sim, tmp_path)
    assert r.returncode == 1 and "TTLS config is empty" in r.stderr
    assert not started(tmp_path)


def test_the_library_refuses_a_config_it_cannot_use(tmp_path):
    e = base_env()
    e.update({"LD_PRELOAD": str(TTLS_LIB), "EDG_LOG_FORMAT": "console",
              "MARBLE_TTLS_CONFIG": '{"tls":{"Incoming":{"*:1":{"cacrt":"x","clicrt":"y","clikey":"z"}}}}'})
    r = subprocess.run([PY, "-c", "print('ran')"], env=e, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "ran" not in r.stdout
    assert "[TTLS] MARBLE_TTLS_CONFIG cannot be used; exiting" in r.stderr
    assert "holds no certificate" in r.stderr
    e["MARBLE_TTLS_CONFIG"] = "{not json"
    r = subprocess.run([PY, "-c", "print('ran')"], env=e, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "not valid JSON" in r.stderr
    # without a config the library does nothing at all
    del e["MARBLE_TTLS_CONFIG"]
    r = subprocess.run([PY, "-c", "import os; print('ran', 'LD_PRELOAD' in os.environ)"], env=e,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout == "ran True\n" and r.stderr == ""


EXT = {
    "Packages": {"pkg": {"UniqueID": "ab" * 32, "Debug": False}},
    "Marbles": {
        "front": {"Package": "pkg", "TLS": ["mesh"],
                  "Parameters": {"Env": {"API_CA": "{{ pem .Secrets.apiCA.Cert }}"}}},
        "back": {"Package": "pkg"},
    },
    "Secrets": {"apiCA": {"Type": "cert-ecdsa", "Size": 256, "Shared": True}},
    "TLS": {"mesh": {
        "Incoming": [{"Port": "9000", "AllowedMarbleTypes": ["back", "front"]}, {"Port": "9001"}],
        "Outgoing": [{"Addr": "back.svc", "Port": "9000", "AllowedMarbleTypes": ["back"]},
                     {"Addr": "api.example.com", "Port": "443", "Cert": "apiCA"},
                     {"Addr": "10.0.0.1", "Port": "80"}]}},
}


def test_coordinator_extensions(tmp_path, softsgx):
    c = Coordinator(tmp_path / "coord", softsgx)
    c.workdir.mkdir()
    c.start()
    try:
        c.set_manifest(json.dumps(EXT).encode())
        env = Marble(softsgx).activate(c, "front").Parameters.Env
        cfg = json.loads(env["MARBLE_TTLS_CONFIG"])
        inc, out = cfg["tls"]["Incoming"], cfg["tls"]["Outgoing"]
        assert list(inc["*:9000"]) == ["allowedTypes", "cacrt", "clicrt", "clientAuth", "clikey"]
        assert inc["*:9000"]["allowedTypes"] == ["back", "front"]
        assert list(inc["*:9001"]) == ["cacrt", "clicrt", "clientAuth", "clikey"]  # as MarbleRun
        assert out["back.svc:9000"]["allowedTypes"] == ["back"]
        # an external peer is verified against the named secret's certificate, not the marble root
        root = env["MARBLE_PREDEFINED_ROOT_CA"].decode()
        assert out["api.example.com:443"]["cacrt"] == env["API_CA"].decode() != root
        assert out["10.0.0.1:80"]["cacrt"] == root and "allowedTypes" not in out["10.0.0.1:80"]
        x509.load_pem_x509_certificate(out["api.example.com:443"]["cacrt"].encode())
        # the rules: client error texts of the manifest upload
        for tls, want in [
            ({"t": {"Incoming": [{"Port": "1", "AllowedMarbleTypes": ["nobody"]}]}},
             "TLS.Incoming.t allows marble type nobody, which the manifest does not define"),
            ({"t": {"Outgoing": [{"Addr": "a", "Port": "1", "Cert": "missing"}]}},
             "TLS.Outgoing.t references undefined secret missing"),
        ]:
            bad = dict(EXT, TLS=tls)
            bad["Marbles"] = {"front": {"Package": "pkg", "TLS": ["t"]}}
            fresh = Coordinator(tmp_path / f"coord-{len(want)}", softsgx)
            fresh.workdir.mkdir()
            fresh.start()
            try:
                r = fresh.post("/manifest", json.dumps(bad).encode())
                assert r.status_code == 400 and want in r.text, r.text
            finally:
                fresh.stop()
    finally:
        c.stop()


def test_library_closure_and_exports():
    """Loaded into every marble process: libc and OpenSSL only (no jansson, libcurl, ...), and
    it exports the functions it interposes and nothing else."""
    from test_linkage import ldd, sanitizer_extras
    libs = ldd(TTLS_LIB)
    assert set(libs) - sanitizer_extras(libs) == {"linux-vdso", "ld-linux-x86-64", "libc", "libssl",
                                                  "libcrypto"}, sorted(libs)
    out = subprocess.run(["nm", "-D", "--defined-only", str(TTLS_LIB)], capture_output=True, text=True,
                         check=True).stdout
    exported = {line.split()[-1] for line in out.splitlines() if line.split()[1] in ("T", "W")}
    assert exported == {
        "connect", "accept", "accept4", "close", "dup", "dup2", "dup3", "fcntl", "fcntl64",
        "getsockname", "getpeername", "getsockopt", "setsockopt", "epoll_ctl", "getaddrinfo",
        "recvfrom", "recvmsg", "sendto", "sendmsg", "execve", "execv", "execvp", "execvpe", "execl",
        "execle", "execlp", "fexecve", "posix_spawn", "posix_spawnp", "_exit", "_Exit"}, sorted(exported)
