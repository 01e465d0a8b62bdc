"""End-to-end tests of marblerun-coordinator: the real daemon on loopback, driven with python
requests/curl for REST and python grpcio for Activate, with softsgx quotes checked by the real
DCAP verifier."""
import base64
import hashlib
import json
import subprocess
import uuid as uuidlib

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from mrharness import BIN, MRENCLAVE, MRSIGNER, Coordinator, Marble, SoftSGX

STATE2 = "Coordinator is ready to accept a manifest."
STATE3 = "Coordinator is running correctly and ready to accept marbles."


def manifest(**over):
    m = {
        "Packages": {"backend": {"SignerID": MRSIGNER, "ProductID": 3, "SecurityVersion": 2, "Debug": False}},
        "Marbles": {
            "server": {
                "Package": "backend",
                "Parameters": {
                    "Files": {
                        "/secret/key.hex": "{{ hex .Secrets.perMarble }}",
                        "/secret/shared.b64": "{{ base64 .Secrets.shared }}",
                        "/secret/cert.pem": "{{ pem .Secrets.tlsCert.Cert }}",
                        "/secret/raw": {"Data": "AAEC", "Encoding": "base64", "NoTemplates": True},
                    },
                    "Env": {"ROOT": "{{ pem .MarbleRun.RootCA.Cert }}", "GREETING": "hello",
                            "MARBLE_KEY": "{{ pem .MarbleRun.MarbleCert.Private }}"},
                    "Argv": ["./server", "--port", "8080"],
                },
            },
            "limited": {"Package": "backend", "MaxActivations": 1},
        },
        "Secrets": {
            "perMarble": {"Type": "symmetric-key", "Size": 128},
            "shared": {"Type": "symmetric-key", "Size": 256, "Shared": True},
            "tlsCert": {"Type": "cert-ecdsa", "Size": 256, "Shared": True,
                        "Cert": {"Subject": {"CommonName": "backend.example"}}},
        },
    }
    m.update(over)
    return json.dumps(m).encode()


@pytest.fixture(scope="module")
def softsgx(tmp_path_factory):
    return SoftSGX(tmp_path_factory.mktemp("softsgx") / "pki")


@pytest.fixture()
def coord(tmp_path, softsgx):
    c = Coordinator(tmp_path, softsgx).start()
    yield c
    c.stop()


@pytest.fixture()
def running(coord):
    coord.set_manifest(manifest())
    return coord


def pem_blocks(text):
    return [b + "-----END CERTIFICATE-----\n" for b in text.split("-----END CERTIFICATE-----\n") if b.strip()]


# ---------------------------------------------------------------------------------------------
# state, status, quote


def test_fresh_start_status_v1_and_v2(coord):
    r = coord.get("/status")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"status": "success", "data": {"StatusCode": 2, "StatusMessage": STATE2}}
    assert coord.get("/api/v2/status").json()["data"] == {"code": 2, "message": STATE2}


def test_quote_binds_root_and_verifies_with_cli(coord, softsgx, tmp_path):
    d = coord.get("/api/v2/quote").json()["data"]
    inter, root = pem_blocks(d["cert"])
    root_der = x509.load_pem_x509_certificate(root.encode()).public_bytes(serialization.Encoding.DER)
    quote = base64.b64decode(d["quote"])
    qfile = tmp_path / "quote.bin"
    qfile.write_bytes(quote)
    out = subprocess.run([BIN / "marblerun", "quote", "verify", qfile, "--root-ca", softsgx.dir / "root-ca.pem",
                          "--collateral", softsgx.dir / "collateral.json", "-o", "json"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    claims = json.loads(out.stdout)
    assert claims["reportData"][:64] == hashlib.sha256(root_der).hexdigest()
    assert claims["uniqueID"] == MRENCLAVE and claims["productID"] == 3
    # the nonce variant quotes SHA-256(root DER || nonce)
    nonce = b"fresh-nonce"
    d2 = coord.get("/api/v2/quote", params={"nonce": base64.urlsafe_b64encode(nonce).decode()}).json()["data"]
    qfile.write_bytes(base64.b64decode(d2["quote"]))
    out = subprocess.run([BIN / "marblerun", "quote", "verify", qfile, "--root-ca", softsgx.dir / "root-ca.pem",
                          "--collateral", softsgx.dir / "collateral.json", "-o", "json"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["reportData"][:64] == hashlib.sha256(root_der + nonce).hexdigest()
    bad = coord.get("/api/v2/quote", params={"nonce": "!!"})
    assert bad.status_code == 400
    assert bad.json()["status"] == "fail"
    assert bad.json()["message"].startswith("invalid query: bad nonce format")
    v1 = coord.get("/quote").json()["data"]
    assert set(v1) == {"Cert", "Quote"} and pem_blocks(v1["Cert"])[1] == root


def test_chain_validates_with_openssl(coord, tmp_path):
    inter, root = pem_blocks(coord.get("/quote").json()["data"]["Cert"])
    (tmp_path / "root.pem").write_text(root)
    (tmp_path / "inter.pem").write_text(inter)
    r = subprocess.run(["openssl", "verify", "-CAfile", tmp_path / "root.pem", tmp_path / "inter.pem"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_unknown_paths_and_methods_answer_405(coord):
    for path in ["/", "/nope", "/api/v2/nope", "/status/"]:
        r = coord.get(path)
        assert r.status_code == 405, path
        assert r.json() == {"status": "error", "data": None}
    assert requests_put(coord, "/status").status_code == 405


def requests_put(coord, path):
    import requests
    return requests.put(coord.url + path, verify=False, timeout=10)


def test_v1_recover_is_gone(coord):
    r = coord.post("/recover", b"secret")
    assert r.status_code == 410
    assert "/api/v2/recover" in r.json()["message"]


# ---------------------------------------------------------------------------------------------
# manifest


def test_set_manifest_v1_then_get(coord):
    raw = manifest()
    assert coord.set_manifest(raw) is None
    assert coord.status() == 3
    d = coord.get("/manifest").json()["data"]
    assert base64.b64decode(d["Manifest"]) == raw
    assert d["ManifestSignature"] == hashlib.sha256(raw).hexdigest()
    # the signature is ECDSA by the root key over SHA-256(raw manifest)
    root = x509.load_pem_x509_certificate(pem_blocks(coord.get("/quote").json()["data"]["Cert"])[1].encode())
    root.public_key().verify(base64.b64decode(d["ManifestSignatureRootECDSA"]), hashlib.sha256(raw).digest(),
                             ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    v2 = coord.get("/api/v2/manifest").json()["data"]
    assert v2["manifestFingerprint"] == hashlib.sha256(raw).hexdigest()
    # a second manifest is refused: wrong state
    r = coord.post("/manifest", raw)
    assert r.status_code == 400 and r.json()["message"] == "server is not in expected state"


def test_set_manifest_v2_and_empty_get_before(coord):
    r = coord.get("/api/v2/manifest")
    assert r.status_code == 500 and r.json()["status"] == "error"
    assert coord.get("/manifest").json()["data"] == {"ManifestSignatureRootECDSA": None, "ManifestSignature": "",
                                                     "Manifest": None}
    r = coord.post("/api/v2/manifest", json.dumps({"manifest": base64.b64encode(manifest()).decode()}))
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"RecoverySecrets": {}}
    assert coord.status() == 3
    bad = coord.post("/api/v2/manifest", b"{not json")
    assert bad.status_code == 400 and bad.json()["status"] == "fail"


@pytest.mark.parametrize("body,text", [
    (b"{", "unmarshaling manifest: "),
    (b'{"Packages":{}}', "checking manifest: no allowed packages defined"),
    (json.dumps({"Packages": {"p": {"UniqueID": MRENCLAVE, "SignerID": MRSIGNER}},
                 "Marbles": {"m": {"Package": "p"}}}).encode(),
     "checking manifest: manifest specifies both UniqueID *and* SignerID"),
    (manifest(Secrets={"bad": {"Type": "symmetric-key", "Size": 7}}), "invalid secret size: bad"),
    (manifest(Marbles={"m": {"Package": "backend", "Parameters": {"Env": {"X": "{{ raw .Secrets.x }}"}}}}),
     "function \"raw\" not defined"),
])
def test_invalid_manifest_changes_nothing(coord, body, text):
    r = coord.post("/manifest", body)
    assert r.status_code == 400
    assert r.headers["Content-Type"].startswith("text/plain")
    assert text in r.json()["message"], r.json()
    assert coord.status() == 2
    assert coord.get("/manifest").json()["data"]["Manifest"] is None
    assert not (coord.seal_dir / "sealed_key").exists()


# ---------------------------------------------------------------------------------------------
# activation


def test_activation_renders_files_env_argv(running, softsgx, tmp_path):
    m = Marble(softsgx)
    resp = m.activate(running, "server")
    p = resp.Parameters
    assert list(p.Argv) == ["./server", "--port", "8080"]
    assert len(bytes.fromhex(p.Files["/secret/key.hex"].decode())) == 16
    assert len(base64.b64decode(p.Files["/secret/shared.b64"])) == 32
    assert p.Files["/secret/raw"] == b"\x00\x01\x02"
    tls = x509.load_pem_x509_certificate(p.Files["/secret/cert.pem"])
    assert tls.subject.rfc4514_string() == "CN=backend.example"
    assert p.Env["GREETING"] == b"hello"
    chain = p.Env["MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN"].decode()
    leaf_pem, inter_pem = pem_blocks(chain)
    leaf = x509.load_pem_x509_certificate(leaf_pem.encode())
    # the leaf: CN = UUID, marble-type extension, chains to the marble root and the intermediate
    ext = leaf.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.9903.2.1"))
    assert ext.value.value == b"server"
    (tmp_path / "mroot.pem").write_bytes(p.Env["MARBLE_PREDEFINED_ROOT_CA"])
    (tmp_path / "leaf.pem").write_text(leaf_pem)
    (tmp_path / "croot.pem").write_bytes(p.Env["MARBLE_PREDEFINED_COORDINATOR_ROOT_CA"])
    (tmp_path / "inter.pem").write_text(inter_pem)
    for args in (["-CAfile", tmp_path / "mroot.pem"],
                 ["-CAfile", tmp_path / "croot.pem", "-untrusted", tmp_path / "inter.pem"]):
        r = subprocess.run(["openssl", "verify", *args, tmp_path / "leaf.pem"], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    key = serialization.load_pem_private_key(p.Env["MARBLE_PREDEFINED_PRIVATE_KEY"], None)
    assert key.public_key().public_numbers() == leaf.public_key().public_numbers()
    assert p.Env["MARBLE_KEY"] == p.Env["MARBLE_PREDEFINED_PRIVATE_KEY"]
    events = __import__("requests").get(f"http://127.0.0.1:{running.metrics_port}/events", timeout=10).json()
    assert events[-1]["activation"]["marbleType"] == "server"


def test_per_marble_keys_stable_per_uuid_and_across_restart(running, softsgx):
    u1, u2 = str(uuidlib.uuid4()), str(uuidlib.uuid4())
    k1 = Marble(softsgx).activate(running, "server", u1).Parameters.Files["/secret/key.hex"]
    k1b = Marble(softsgx).activate(running, "server", u1.upper()).Parameters.Files["/secret/key.hex"]
    k2 = Marble(softsgx).activate(running, "server", u2).Parameters.Files["/secret/key.hex"]
    shared1 = Marble(softsgx).activate(running, "server", u2).Parameters.Files["/secret/shared.b64"]
    assert k1 == k1b and k1 != k2
    running.restart()
    assert running.status() == 3
    assert Marble(softsgx).activate(running, "server", u1).Parameters.Files["/secret/key.hex"] == k1
    assert Marble(softsgx).activate(running, "server", u1).Parameters.Files["/secret/shared.b64"] == shared1


def rpc_error(fn):
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details()


def test_activation_rejections(running, softsgx):
    good = Marble(softsgx)
    assert rpc_error(lambda: good.activate(running, "nosuch")) == (
        grpc.StatusCode.PERMISSION_DENIED, "marble verification failed: unknown marble type requested")
    code, msg = rpc_error(lambda: Marble(softsgx, mrsigner="ef" * 32).activate(running, "server"))
    assert code == grpc.StatusCode.PERMISSION_DENIED and msg.startswith("marble verification failed: invalid quote")
    code, msg = rpc_error(lambda: Marble(softsgx, isvsvn=1).activate(running, "server"))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "PackageProperties not compliant" in msg
    code, msg = rpc_error(lambda: Marble(softsgx, debug=True).activate(running, "server"))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "PackageProperties not compliant" in msg
    # a quote that binds another certificate
    other = Marble(softsgx)
    code, msg = rpc_error(lambda: good.activate(running, "server", quote=other.quote()))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "hash(cert) != report.Data" in msg
    # a quote whose signed report body was changed (one bit of ISVSVN's neighbourhood)
    q = bytearray(good.quote())
    q[16 + 48 + 300] ^= 1
    code, msg = rpc_error(lambda: good.activate(running, "server", quote=bytes(q)))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "invalid quote" in msg
    assert rpc_error(lambda: good.activate(running, "server", uuid="not-a-uuid"))[0] == grpc.StatusCode.INVALID_ARGUMENT
    code, msg = rpc_error(lambda: good.activate(running, "server", csr=b"\x30\x03garbage"))
    assert code == grpc.StatusCode.INTERNAL and msg.startswith("generating marble authentication secrets: ")


def test_max_activations(running, softsgx):
    Marble(softsgx).activate(running, "limited")
    code, msg = rpc_error(lambda: Marble(softsgx).activate(running, "limited"))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert msg == 'marble verification failed: reached max activations count (1) for marble type "limited"'
    running.restart()
    assert rpc_error(lambda: Marble(softsgx).activate(running, "limited"))[0] == grpc.StatusCode.PERMISSION_DENIED


def test_activation_refused_before_manifest(coord, softsgx):
    code, msg = rpc_error(lambda: Marble(softsgx).activate(coord, "server"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and msg == "cannot accept marbles in current state"


def test_concurrent_activations(running, softsgx):
    from concurrent.futures import ThreadPoolExecutor
    marbles = [Marble(softsgx) for _ in range(64)]
    quotes = [m.quote() for m in marbles]
    with ThreadPoolExecutor(max_workers=64) as ex:
        results = list(ex.map(lambda mq: mq[0].activate(running, "server", quote=mq[1]), zip(marbles, quotes)))
    assert len(results) == 64 and all(r.Parameters.Argv[0] == "./server" for r in results)


# ---------------------------------------------------------------------------------------------
# sealing


def test_restart_keeps_state_and_other_kek_means_recovery(running, softsgx):
    fp = running.get("/api/v2/manifest").json()["data"]["manifestFingerprint"]
    running.restart()
    assert running.status() == 3
    assert running.get("/api/v2/manifest").json()["data"]["manifestFingerprint"] == fp
    running.stop()
    kek = running.seal_dir / "kek"
    kek.write_bytes(b"\x01" * 32)
    running.start()
    assert running.status() == 1
    assert "recovery mode" in running.get("/status").json()["data"]["StatusMessage"]
    assert "cannot be unsealed" in running.read_log()


def test_metrics_and_health(running, softsgx):
    import requests
    Marble(softsgx).activate(running, "server")
    base = f"http://127.0.0.1:{running.metrics_port}"
    text = requests.get(base + "/metrics", timeout=10).text
    assert "coordinator_state 3" in text
    assert "coordinator_marble_activations_success_total{type=\"server\",uuid=" in text
    assert "coordinator_marble_activations_total{type=\"server\"" in text
    assert "grpc_server_handled_total" in text
    # one series per (type, UUID): a second activation with the same UUID counts in its series
    import uuid as uuidlib
    u = str(uuidlib.uuid4())
    for _ in range(2):
        Marble(softsgx).activate(running, "server", uuid=u)
    text = requests.get(base + "/metrics", timeout=10).text
    mine = [l for l in text.splitlines() if f'uuid="{u}"' in l]
    assert f'coordinator_marble_activations_success_total{{type="server",uuid="{u}"}} 2' in mine, mine
    assert len([l for l in mine if l.startswith("coordinator_marble_activations_success_total")]) == 1
    # promtool parses the page; the only lint findings allowed are for the two names the spec
    # prescribes (MarbleRun's "..._histogram_bytes/_seconds" metrics)
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    findings = [l for l in (lint.stdout + lint.stderr).splitlines() if l.strip()]
    assert lint.returncode in (0, 3), lint.stdout + lint.stderr
    assert all("_histogram_" in l and "metric name should not include type 'histogram'" in l
               for l in findings), findings
    assert requests.get(base + "/healthz", timeout=10).status_code == 200
    assert requests.get(base + "/readyz", timeout=10).status_code == 200


def test_refusal_log_names_tcb_status(tmp_path):
    old = SoftSGX(tmp_path / "old-pki", tcb_status="OutOfDate")
    c = Coordinator(tmp_path, old).start()
    try:
        c.set_manifest(manifest())
        code, msg = rpc_error(lambda: Marble(old).activate(c, "server"))
        assert code == grpc.StatusCode.PERMISSION_DENIED and "TCB level invalid: OutOfDate" in msg
        refusals = [json.loads(l) for l in c.read_log().splitlines()
                    if l.startswith("{") and "marble activation refused" in l]
        assert refusals and refusals[-1]["tcbStatus"] == "OutOfDate"
        assert refusals[-1]["marbleType"] == "server" and refusals[-1]["advisoryIDs"].startswith("INTEL-SA-")
        # a package that accepts the status lets the same platform in
        m = json.loads(manifest())
        m["Packages"]["backend"]["AcceptedTCBStatuses"] = ["OutOfDate"]
        c.stop()
        c2 = Coordinator(tmp_path / "second", old)
        c2.workdir.mkdir()
        c2.start()
        c2.set_manifest(json.dumps(m).encode())
        Marble(old).activate(c2, "server")
        c2.stop()
    finally:
        c.stop()


def test_idle_connections_do_not_block_activations(running, softsgx):
    import socket
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    idle = []
    try:
        for i in range(500):
            s = socket.create_connection(("127.0.0.1", running.client_port if i % 2 else running.mesh_port), timeout=10)
            if i % 2:
                s = ctx.wrap_socket(s)  # half of them finish a TLS handshake and then sit idle
            idle.append(s)
        for _ in range(3):
            assert Marble(softsgx).activate(running, "server", timeout=30).Parameters.Argv[0] == "./server"
        assert running.status() == 3
    finally:
        for s in idle:
            s.close()


def test_startup_manifest(tmp_path, softsgx):
    path = tmp_path / "startup.json"
    path.write_bytes(manifest())
    c = Coordinator(tmp_path, softsgx, extra_env={"EDG_STARTUP_MANIFEST": str(path)}).start()
    try:
        assert c.status() == 3
        assert base64.b64decode(c.get("/api/v2/manifest").json()["data"]["manifest"]) == manifest()
        # with a state already initialised, the startup manifest is fatal (spec §13 #8)
        c.stop()
        c.start(expect_ready=False)
        assert c.proc.wait(timeout=30) == 1
        assert "server is not in expected state" in c.read_log()
        c.proc = None
    finally:
        c.stop(check=False)


def test_simulation_mode(tmp_path, softsgx):
    c = Coordinator(tmp_path, None, extra_env={"EDG_COORDINATOR_SIMULATION": "1"}).start()
    try:
        assert c.get("/api/v2/quote").json()["data"]["quote"] is None
        assert c.get("/quote").json()["data"]["Quote"] is None
        c.set_manifest(manifest())
        # marble quotes are not checked at all in simulation mode
        resp = Marble(softsgx).activate(c, "server", quote=b"")
        assert resp.Parameters.Argv[0] == "./server"
        log = c.read_log()
        assert "SIMULATION MODE" in log and "activating a marble without checking its quote" in log
    finally:
        c.stop()


def test_tls_handshake_errors_are_logged_at_the_configured_level(tmp_path, softsgx):
    import socket
    import ssl
    c = Coordinator(tmp_path, softsgx, extra_env={"EDG_HTTP_ERROR_LOG_LEVEL": "warn"}).start()
    try:
        # a mesh connection without a client certificate fails its handshake
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        with socket.create_connection(("127.0.0.1", c.mesh_port)) as s:
            try:
                with ctx.wrap_socket(s) as t:
                    t.recv(1)
            except (ssl.SSLError, OSError):
                pass
        import time
        for _ in range(50):
            lines = [json.loads(l) for l in c.read_log().splitlines()
                     if l.startswith("{") and "TLS handshake error" in l]
            if lines:
                break
            time.sleep(0.1)
        assert lines and lines[-1]["level"] == "warn" and lines[-1]["remote"].startswith("127.0.0.1:")
    finally:
        c.stop()


def test_max_activations_under_concurrency(coord, softsgx):
    from concurrent.futures import ThreadPoolExecutor
    m = json.loads(manifest())
    m["Marbles"]["limited"]["MaxActivations"] = 10
    coord.set_manifest(json.dumps(m).encode())
    marbles = [Marble(softsgx) for _ in range(32)]
    quotes = [mb.quote() for mb in marbles]

    def one(i):
        try:
            marbles[i].activate(coord, "limited", quote=quotes[i])
            return "ok"
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e.details()
            return "refused"
    with ThreadPoolExecutor(max_workers=32) as ex:
        results = list(ex.map(one, range(32)))
    assert results.count("ok") == 10 and results.count("refused") == 22
    coord.restart()
    assert rpc_error(lambda: Marble(softsgx).activate(coord, "limited"))[0] == grpc.StatusCode.PERMISSION_DENIED
