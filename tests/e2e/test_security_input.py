"""Input the Coordinator refuses although upstream accepts it (issue 18): a v2 secrets body with
data after its JSON object, and a certificate secret whose private key is not the certificate's.
Each refusal is a clear error and leaves the state byte for byte as it was."""
import base64
import datetime
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from mrharness import MRSIGNER, Coordinator, SoftSGX
from test_security_auth import Identity, get, post, seal_state


def b64(b):
    return base64.b64encode(b).decode()


@pytest.fixture(scope="module")
def softsgx(tmp_path_factory):
    return SoftSGX(tmp_path_factory.mktemp("softsgx") / "pki")


@pytest.fixture()
def setup(tmp_path, softsgx):
    admin = Identity(tmp_path, "admin")
    m = {
        "Packages": {"pkg": {"SignerID": MRSIGNER, "ProductID": 3, "SecurityVersion": 1}},
        "Marbles": {"app": {"Package": "pkg"}},
        "Secrets": {
            "password": {"Type": "plain", "UserDefined": True},
            "ecCert": {"Type": "cert-ecdsa", "UserDefined": True},
            "rsaCert": {"Type": "cert-rsa", "UserDefined": True},
        },
        "Users": {"admin": {"Certificate": admin.pem, "Roles": ["rw"]}},
        "Roles": {"rw": {"ResourceType": "Secrets", "ResourceNames": ["password", "ecCert", "rsaCert"],
                         "Actions": ["ReadSecret", "WriteSecret"]}},
    }
    c = Coordinator(tmp_path, softsgx).start()
    c.set_manifest(json.dumps(m).encode())
    assert post(c, "/secrets", json.dumps({"password": {"Key": b64(b"first")}}), admin).status_code == 200
    yield c, admin
    c.stop()


def cert_for(key):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "svc")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))


def der_private(key, fmt):
    return key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())


@pytest.mark.parametrize("tail", [b"garbage", b" x", b"{}", b"\x00", b"\n]"])
def test_v2_secrets_trailing_data_refused(setup, tail):
    c, admin = setup
    before = seal_state(c)
    body = json.dumps({"secrets": {"password": {"Key": b64(b"second")}}}).encode() + tail
    r = post(c, "/api/v2/secrets", body, admin)
    assert r.status_code == 400, r.text
    j = r.json()
    assert j["status"] == "fail"
    assert j["message"].startswith("invalid character ") and j["message"].endswith(" after top-level value")
    assert seal_state(c) == before
    r = get(c, "/secrets?s=password", admin)
    assert base64.b64decode(r.json()["data"]["password"]["Public"]) == b"first"


def test_v2_secrets_trailing_whitespace_accepted(setup):
    c, admin = setup
    body = json.dumps({"secrets": {"password": {"Key": b64(b"second")}}}).encode() + b" \r\n\t"
    assert post(c, "/api/v2/secrets", body, admin).status_code == 200


def test_v1_secrets_trailing_data_refused(setup):
    c, admin = setup
    before = seal_state(c)
    r = post(c, "/secrets", json.dumps({"password": {"Key": b64(b"x")}}) + "garbage", admin)
    assert r.status_code == 400
    assert r.json()["message"].startswith("unmarshaling secret manifest: ")
    assert seal_state(c) == before


EC_FORMATS = [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL]


@pytest.mark.parametrize("fmt", EC_FORMATS, ids=["pkcs8", "sec1"])
@pytest.mark.parametrize("v2", [False, True])
def test_cert_secret_with_foreign_key_refused(setup, fmt, v2):
    c, admin = setup
    before = seal_state(c)
    owner, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    cert = cert_for(owner).public_bytes(serialization.Encoding.DER)
    secrets = {"ecCert": {"Cert": b64(cert), "Private": b64(der_private(other, fmt))}}
    r = post(c, "/api/v2/secrets" if v2 else "/secrets",
             json.dumps({"secrets": secrets} if v2 else secrets), admin)
    assert r.status_code == (500 if v2 else 400), r.text
    assert "secret ecCert: private key does not match the certificate" in r.json()["message"]
    assert seal_state(c) == before
    # the matching key in the same encoding is taken, and read back as uploaded
    secrets["ecCert"]["Private"] = b64(der_private(owner, fmt))
    r = post(c, "/api/v2/secrets" if v2 else "/secrets",
             json.dumps({"secrets": secrets} if v2 else secrets), admin)
    assert r.status_code == 200, r.text
    got = get(c, "/secrets?s=ecCert", admin).json()["data"]["ecCert"]
    assert base64.b64decode(got["Private"]) == der_private(owner, fmt)


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL],
                         ids=["pkcs8", "pkcs1"])
def test_rsa_cert_secret_key_checked(setup, fmt):
    c, admin = setup
    owner = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = b64(cert_for(owner).public_bytes(serialization.Encoding.DER))
    before = seal_state(c)
    r = post(c, "/secrets", json.dumps({"rsaCert": {"Cert": cert, "Private": b64(der_private(other, fmt))}}), admin)
    assert r.status_code == 400 and "private key does not match the certificate" in r.json()["message"]
    assert seal_state(c) == before
    r = post(c, "/secrets", json.dumps({"rsaCert": {"Cert": cert, "Private": b64(der_private(owner, fmt))}}), admin)
    assert r.status_code == 200, r.text


def test_cert_secret_with_unparsable_key_refused(setup):
    c, admin = setup
    owner = ec.generate_private_key(ec.SECP256R1())
    cert = b64(cert_for(owner).public_bytes(serialization.Encoding.DER))
    before = seal_state(c)
    r = post(c, "/secrets", json.dumps({"ecCert": {"Cert": cert, "Private": b64(b"not a key")}}), admin)
    assert r.status_code == 400
    assert "secret ecCert: private key is not a PKCS #8, SEC 1 or PKCS #1 DER key" in r.json()["message"]
    assert seal_state(c) == before


def test_cert_secret_without_private_key_still_accepted(setup):
    # a certificate alone (e.g. a peer's CA) stays allowed, as upstream
    c, admin = setup
    cert = b64(cert_for(ec.generate_private_key(ec.SECP256R1())).public_bytes(serialization.Encoding.DER))
    assert post(c, "/secrets", json.dumps({"ecCert": {"Cert": cert}}), admin).status_code == 200
