"""Authentication rests on the TLS leaf only (issue 18, spec §4.4 correction, docs/security.md).

User and marble certificates are public (GET /manifest lists every user's certificate; a marble
sends its leaf in every handshake). A client that presents the chain [own self-signed leaf,
victim's certificate] and proves possession of its own leaf key must not be taken for the
victim: every such request answers 401 and changes nothing, on v1 and v2 routes, and the update
log names only the real actor."""
import base64
import hashlib
import json

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mrharness import MRSIGNER, Coordinator, Marble, SoftSGX, self_signed


class Identity:
    """A key and a certificate file that may carry extra certificates behind the leaf."""

    def __init__(self, tmp_path, name, extra_pems=()):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = self_signed(self.key, name)
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()
        self.certfile = tmp_path / f"{name}.crt"
        self.keyfile = tmp_path / f"{name}.key"
        self.certfile.write_text(self.pem + "".join(extra_pems))
        self.keyfile.write_bytes(self.key.private_bytes(serialization.Encoding.PEM,
                                                        serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))

    @property
    def tls(self):
        return (str(self.certfile), str(self.keyfile))


def manifest(alice, bob):
    return {
        "Packages": {"pkg": {"SignerID": MRSIGNER, "ProductID": 3, "SecurityVersion": 3}},
        "Marbles": {"app": {"Package": "pkg", "Parameters": {
            "Env": {"PASSWORD": "{{ string .Secrets.password }}"}}}},
        "Secrets": {
            "password": {"Type": "plain", "UserDefined": True},
            "apiKey": {"Type": "symmetric-key", "Size": 128, "UserDefined": True},
        },
        "Users": {
            "alice": {"Certificate": alice.pem, "Roles": ["secrets", "pkg", "manifest"]},
            "bob": {"Certificate": bob.pem, "Roles": ["manifest"]},
        },
        "Roles": {
            "secrets": {"ResourceType": "Secrets", "ResourceNames": ["password", "apiKey"],
                        "Actions": ["ReadSecret", "WriteSecret"]},
            "pkg": {"ResourceType": "Packages", "ResourceNames": ["pkg"],
                    "Actions": ["UpdateSecurityVersion"]},
            "manifest": {"ResourceType": "Manifest", "Actions": ["UpdateManifest"]},
        },
        "Config": {"FeatureGates": ["MonotonicCounter"]},
    }


@pytest.fixture(scope="module")
def softsgx(tmp_path_factory):
    return SoftSGX(tmp_path_factory.mktemp("softsgx") / "pki")


@pytest.fixture()
def setup(tmp_path, softsgx):
    alice = Identity(tmp_path, "alice")
    bob = Identity(tmp_path, "bob")
    c = Coordinator(tmp_path, softsgx).start()
    m = manifest(alice, bob)
    c.set_manifest(json.dumps(m).encode())
    # alice sets her secrets for real
    r = post(c, "/secrets", json.dumps({"password": {"Key": b64(b"alice-password")},
                                        "apiKey": {"Key": b64(b"k" * 16)}}), alice)
    assert r.status_code == 200, r.text
    # mallory: her own self-signed leaf and key, with alice's public certificate behind it
    mallory = Identity(tmp_path, "mallory", extra_pems=[alice.pem])
    yield c, alice, bob, mallory, m
    c.stop()


def b64(b):
    return base64.b64encode(b).decode()


def get(c, path, who=None):
    return requests.get(c.url + path, verify=False, cert=who.tls if who else None, timeout=30)


def post(c, path, body, who=None):
    return requests.post(c.url + path, data=body, verify=False, cert=who.tls if who else None,
                         timeout=30)


def seal_state(c):
    """Every file of the seal directory with its content: the state byte for byte."""
    return {p.name: p.read_bytes() for p in sorted(c.seal_dir.iterdir()) if p.is_file()}


def log_lines(c):
    return [json.loads(l) for l in get(c, "/api/v2/update").json()["data"]["updateLog"]]


def assert_401(r, v2):
    assert r.status_code == 401, r.text
    j = r.json()
    assert j["status"] == ("fail" if v2 else "error")
    assert "unauthorized user" in j["message"]


def test_chain_with_victim_cert_is_really_sent(setup, tmp_path):
    # The attack file holds two certificates; alice's certificate alone authenticates alice,
    # so the refusals below are about the chain position, not a broken file.
    c, alice, _, mallory, _ = setup
    assert mallory.certfile.read_text().count("BEGIN CERTIFICATE") == 2
    assert get(c, "/api/v2/secrets?s=password", alice).status_code == 200


@pytest.mark.parametrize("v2", [False, True])
def test_read_secrets_as_alice_refused(setup, v2):
    c, alice, _, mallory, _ = setup
    path = "/api/v2/secrets?s=password" if v2 else "/secrets?s=password"
    r = get(c, path, mallory)
    assert_401(r, v2)
    assert "alice-password" not in r.text and b64(b"alice-password") not in r.text


@pytest.mark.parametrize("v2", [False, True])
def test_write_secrets_as_alice_refused(setup, v2):
    c, alice, _, mallory, _ = setup
    before = seal_state(c)
    secrets = {"password": {"Key": b64(b"mallory-was-here")}}
    body = json.dumps({"secrets": secrets} if v2 else secrets)
    assert_401(post(c, "/api/v2/secrets" if v2 else "/secrets", body, mallory), v2)
    assert seal_state(c) == before
    r = get(c, "/secrets?s=password", alice)
    assert base64.b64decode(r.json()["data"]["password"]["Public"]) == b"alice-password"


@pytest.mark.parametrize("v2", [False, True])
def test_package_update_as_alice_refused(setup, softsgx, v2):
    c, _, _, mallory, _ = setup
    before, log_before = seal_state(c), log_lines(c)
    body = json.dumps({"Packages": {"pkg": {"SecurityVersion": 9}}})
    assert_401(post(c, "/api/v2/update" if v2 else "/update", body, mallory), v2)
    assert seal_state(c) == before and log_lines(c) == log_before
    # the SVN was not raised: a marble at SVN 3 still activates
    Marble(softsgx, isvsvn=3).activate(c, "app")


@pytest.mark.parametrize("v2", [False, True])
def test_acknowledge_update_in_bob_name_refused(setup, tmp_path, v2):
    c, alice, bob, _, m = setup
    new = dict(m, Marbles=dict(m["Marbles"], worker={"Package": "pkg"}))
    raw = json.dumps(new).encode()
    r = post(c, "/api/v2/update", json.dumps({"manifest": b64(raw)}), alice)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["missingUsers"] == ["bob"]
    before, log_before = seal_state(c), log_lines(c)
    mallory_as_bob = Identity(tmp_path, "mallory2", extra_pems=[bob.pem])
    ack = json.dumps({"manifest": b64(raw)}) if v2 else raw
    assert_401(post(c, "/api/v2/update-manifest" if v2 else "/update-manifest", ack,
                    mallory_as_bob), v2)
    assert_401(post(c, "/api/v2/update-cancel" if v2 else "/update-cancel", b"", mallory_as_bob), v2)
    assert seal_state(c) == before and log_lines(c) == log_before
    pending = get(c, "/api/v2/update-manifest").json()["data"]
    assert pending["missingUsers"] == ["bob"]
    # bob acknowledges for real; the log names alice and bob, nobody else
    r = post(c, "/api/v2/update-manifest", json.dumps({"manifest": b64(raw)}), bob)
    assert r.status_code == 200, r.text
    users = [l.get("user") for l in log_lines(c)[len(log_before) - 1:] if "user" in l]
    assert set(users) <= {"alice", "bob"} and "bob" in users


def test_every_user_route_refuses_the_chain(setup):
    # the same chain on every route that authenticates users
    c, _, _, mallory, _ = setup
    before = seal_state(c)
    for path, v2 in [("/secrets?s=password", False), ("/api/v2/secrets?s=password", True)]:
        assert_401(get(c, path, mallory), v2)
    for path, v2, body in [("/secrets", False, "{}"), ("/api/v2/secrets", True, "{}"),
                           ("/update", False, "{}"), ("/api/v2/update", True, "{}"),
                           ("/update-manifest", False, "{}"),
                           ("/api/v2/update-manifest", True, '{"manifest":""}'),
                           ("/update-cancel", False, ""), ("/api/v2/update-cancel", True, "")]:
        assert_401(post(c, path, body, mallory), v2)
    assert seal_state(c) == before


def test_monotonic_counter_with_marble_cert_behind_own_leaf_refused(setup, softsgx, tmp_path):
    c, _, _, _, _ = setup
    env = Marble(softsgx).activate(c, "app").Parameters.Env
    chain = env["MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN"]
    (tmp_path / "m.crt").write_bytes(chain)
    (tmp_path / "m.key").write_bytes(env["MARBLE_PREDEFINED_PRIVATE_KEY"])
    real = (str(tmp_path / "m.crt"), str(tmp_path / "m.key"))

    def bump(value, tls):
        return requests.post(c.url + "/api/v2/monotonic-counter", json={"name": "ctr", "value": value},
                             cert=tls, verify=False, timeout=30)
    assert bump(5, real).json()["data"] == {"value": 0}
    # the marble's certificate (public: it is sent in every handshake) behind an own leaf
    marble_leaf = chain.decode().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    attacker = Identity(tmp_path, "attacker", extra_pems=[marble_leaf])
    before = seal_state(c)
    r = bump(100, attacker.tls)
    assert r.status_code == 401, r.text
    assert r.json()["status"] == "fail" and r.json()["message"].startswith("unauthorized marble")
    assert seal_state(c) == before
    assert bump(0, real).json()["data"] == {"value": 5}


def test_activation_binds_the_leaf_not_the_chain(setup, softsgx, tmp_path):
    # A quote binds SHA-256 of the certificate the TLS handshake proved; a client sending
    # [own leaf, the quoted marble's certificate] cannot reuse that marble's quote.
    import grpc
    from mrharness import grpc_stubs
    c, _, _, _, _ = setup
    victim = Marble(softsgx)
    quote = victim.quote()
    attacker = Marble(softsgx)
    pb, pbg = grpc_stubs()
    creds = grpc.ssl_channel_credentials(
        root_certificates=c.mesh_root_pem(),
        private_key=attacker.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()),
        certificate_chain=attacker.cert.public_bytes(serialization.Encoding.PEM) +
        victim.cert.public_bytes(serialization.Encoding.PEM))
    with grpc.secure_channel(c.mesh, creds, options=[("grpc.ssl_target_name_override", "localhost")]) as ch:
        with pytest.raises(grpc.RpcError) as e:
            pbg.MarbleStub(ch).Activate(pb.ActivationReq(Quote=quote, CSR=victim.csr(), MarbleType="app",
                                                         UUID="2d1b2c3e-0000-4000-8000-000000000001"),
                                        timeout=30)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED or "hash(cert)" in e.value.details()
    assert hashlib.sha256(victim.cert_der).digest() != hashlib.sha256(attacker.cert_der).digest()
