"""sign-quote, monotonic counters with marble authentication, and MARBLE_TTLS_CONFIG against a
real Coordinator (spec §12.5, §12.6, §5.7)."""
import base64
import hashlib
import json

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from mrharness import MRSIGNER, Coordinator, Marble, SoftSGX


def manifest(gates):
    return json.dumps({
        "Packages": {"pkg": {"SignerID": MRSIGNER, "ProductID": 3, "SecurityVersion": 1}},
        "Marbles": {
            "app": {"Package": "pkg", "TLS": ["web"]},
            "plain": {"Package": "pkg"},
        },
        "Secrets": {"webCert": {"Type": "cert-ecdsa", "Size": 256, "Shared": True}},
        "TLS": {"web": {"Incoming": [{"Port": "8443", "Cert": "webCert", "DisableClientAuth": True},
                                     {"Port": "9000"}],
                        "Outgoing": [{"Addr": "db.local", "Port": "5432"}]}},
        "Config": {"FeatureGates": gates},
    }).encode()


@pytest.fixture(scope="module")
def softsgx(tmp_path_factory):
    return SoftSGX(tmp_path_factory.mktemp("softsgx") / "pki")


def start(tmp_path, softsgx, gates):
    c = Coordinator(tmp_path, softsgx).start()
    c.set_manifest(manifest(gates))
    return c


def root_key(c):
    cert = c.get("/quote").json()["data"]["Cert"].split("-----END CERTIFICATE-----\n")[1] + "-----END CERTIFICATE-----\n"
    return x509.load_pem_x509_certificate(cert.encode()).public_key()


def test_sign_quote(tmp_path, softsgx):
    c = start(tmp_path, softsgx, ["signquoteendpoint"])  # gate names are case-insensitive
    try:
        q = softsgx.quote(hashlib.sha256(b"anything").digest())
        r = c.post("/api/v2/sign-quote", json.dumps({"sgxQuote": base64.b64encode(q).decode()}))
        assert r.status_code == 200, r.text
        d = r.json()["data"]
        assert d["tcbStatus"] == "UpToDate"
        msg = base64.b64encode(q) + d["tcbStatus"].encode()
        root_key(c).verify(base64.b64decode(d["verificationSignature"]), hashlib.sha256(msg).digest(),
                           ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        bad = bytearray(q)
        bad[100] ^= 1
        r = c.post("/api/v2/sign-quote", json.dumps({"sgxQuote": base64.b64encode(bytes(bad)).decode()}))
        assert r.status_code == 400
        j = r.json()
        assert j["status"] == "fail" and j["message"] == "quote verification failed"
        assert j["data"]["sgxQuote"].startswith("quote verification failed: ")
        r = c.post("/api/v2/sign-quote", b"{nope")
        assert r.status_code == 400 and r.json()["data"] == {"sgxQuote": "failed to parse JSON data"}
    finally:
        c.stop()


def test_features_off(tmp_path, softsgx):
    c = start(tmp_path, softsgx, [])
    try:
        r = c.post("/api/v2/sign-quote", json.dumps({"sgxQuote": "AAAA"}))
        assert r.status_code == 403
        assert r.json()["message"] == "SignQuoteEndpoint feature is not enabled in the manifest"
    finally:
        c.stop()


def test_monotonic_counter(tmp_path, softsgx):
    c = start(tmp_path, softsgx, ["MonotonicCounter"])
    try:
        env = Marble(softsgx).activate(c, "plain").Parameters.Env
        (tmp_path / "m.crt").write_bytes(env["MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN"])
        (tmp_path / "m.key").write_bytes(env["MARBLE_PREDEFINED_PRIVATE_KEY"])
        cert = (str(tmp_path / "m.crt"), str(tmp_path / "m.key"))

        def bump(name, value, tls=cert):
            return requests.post(c.url + "/api/v2/monotonic-counter", json={"name": name, "value": value},
                                 cert=tls, verify=False, timeout=30)
        assert bump("c", 5).json()["data"] == {"value": 0}
        assert bump("c", 3).json()["data"] == {"value": 5}
        assert bump("c", 7).json()["data"] == {"value": 5}
        assert bump("c", 0).json()["data"] == {"value": 7}
        assert bump("other", 1).json()["data"] == {"value": 0}
        c.restart()
        assert bump("c", 0).json()["data"] == {"value": 7}
        r = bump("c", 9, tls=None)
        assert r.status_code == 401 and r.json()["status"] == "fail"
        assert r.json()["message"].startswith("unauthorized marble")
    finally:
        c.stop()


def test_ttls_config(tmp_path, softsgx):
    c = start(tmp_path, softsgx, [])
    try:
        env = Marble(softsgx).activate(c, "app").Parameters.Env
        raw = env["MARBLE_TTLS_CONFIG"].decode()
        cfg = json.loads(raw)
        assert list(cfg) == ["tls"] and list(cfg["tls"]) == ["Incoming", "Outgoing"]
        inc, out = cfg["tls"]["Incoming"], cfg["tls"]["Outgoing"]
        assert sorted(inc) == ["*:8443", "*:9000"] and list(out) == ["db.local:5432"]
        assert list(inc["*:8443"]) == ["cacrt", "clicrt", "clientAuth", "clikey"]
        assert inc["*:8443"]["clientAuth"] is False and inc["*:9000"]["clientAuth"] is True
        web = x509.load_pem_x509_certificate(inc["*:8443"]["clicrt"].encode())
        own = x509.load_pem_x509_certificate(inc["*:9000"]["clicrt"].encode())
        assert web != own and inc["*:9000"]["clicrt"] == out["db.local:5432"]["clicrt"]
        assert inc["*:8443"]["cacrt"].encode() == env["MARBLE_PREDEFINED_ROOT_CA"]
        assert list(out["db.local:5432"]) == ["cacrt", "clicrt", "clikey"]
        assert "MARBLE_TTLS_CONFIG" not in Marble(softsgx).activate(c, "plain").Parameters.Env
    finally:
        c.stop()
