"""Users, roles and secrets against a real Coordinator: GET/POST /secrets (v1 and v2), client
certificate authentication, permission checks, and user-defined secrets reaching marbles."""
import base64
import json

import grpc
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mrharness import MRSIGNER, Coordinator, Marble, SoftSGX, self_signed


class User:
    def __init__(self, tmp_path, name):
        self.name = name
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = self_signed(self.key, name)
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()
        self.certfile = tmp_path / f"{name}.crt"
        self.keyfile = tmp_path / f"{name}.key"
        self.certfile.write_text(self.pem)
        self.keyfile.write_bytes(self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))

    @property
    def tls(self):
        return (str(self.certfile), str(self.keyfile))


@pytest.fixture(scope="module")
def softsgx(tmp_path_factory):
    return SoftSGX(tmp_path_factory.mktemp("softsgx") / "pki")


@pytest.fixture()
def setup(tmp_path, softsgx):
    admin, reader, stranger = User(tmp_path, "admin"), User(tmp_path, "reader"), User(tmp_path, "stranger")
    m = {
        "Packages": {"pkg": {"SignerID": MRSIGNER, "ProductID": 3, "SecurityVersion": 1}},
        "Marbles": {"app": {"Package": "pkg", "Parameters": {
            "Env": {"API_KEY": "{{ hex .Secrets.apiKey }}", "PASSWORD": "{{ string .Secrets.password }}"},
            "Files": {"/cfg/cert.pem": "{{ pem .Secrets.uploadedCert.Cert }}"}}}},
        "Secrets": {
            "apiKey": {"Type": "symmetric-key", "Size": 128, "UserDefined": True},
            "password": {"Type": "plain", "UserDefined": True},
            "uploadedCert": {"Type": "cert-ecdsa", "UserDefined": True},
            "sharedKey": {"Type": "symmetric-key", "Size": 256, "Shared": True},
        },
        "Users": {
            "admin": {"Certificate": admin.pem, "Roles": ["writeAll", "readAll"]},
            "reader": {"Certificate": reader.pem, "Roles": ["readShared"]},
        },
        "Roles": {
            "writeAll": {"ResourceType": "Secrets", "ResourceNames": ["apiKey", "password", "uploadedCert"],
                         "Actions": ["WriteSecret"]},
            "readAll": {"ResourceType": "Secrets", "ResourceNames": ["apiKey", "password", "sharedKey"],
                        "Actions": ["ReadSecret"]},
            "readShared": {"ResourceType": "Secrets", "ResourceNames": ["sharedKey"], "Actions": ["readsecret"]},
        },
    }
    c = Coordinator(tmp_path, softsgx).start()
    c.set_manifest(json.dumps(m).encode())
    yield c, admin, reader, stranger
    c.stop()


def get(c, path, user=None, **kw):
    return requests.get(c.url + path, verify=False, cert=user.tls if user else None, timeout=30, **kw)


def post(c, path, body, user=None):
    return requests.post(c.url + path, data=body, verify=False, cert=user.tls if user else None, timeout=30)


def b64(b):
    return base64.b64encode(b).decode()


def test_read_secrets_with_permissions(setup):
    c, admin, reader, stranger = setup
    r = get(c, "/secrets?s=sharedKey", reader)
    assert r.status_code == 200, r.text
    s = r.json()["data"]["sharedKey"]
    assert s["Type"] == "symmetric-key" and s["Shared"] is True and s["Cert"] is None
    assert len(base64.b64decode(s["Private"])) == 32 and s["Private"] == s["Public"]
    v2 = get(c, "/api/v2/secrets?s=sharedKey", reader).json()["data"]["secrets"]["sharedKey"]
    assert v2 == s
    r = get(c, "/secrets?s=sharedKey&s=apiKey", reader)
    assert r.status_code == 400
    assert r.json()["message"] == "user reader is not allowed to read one or more secrets of: [sharedKey apiKey]"
    assert get(c, "/api/v2/secrets?s=apiKey", reader).status_code == 500
    # a user-defined secret before upload has no value
    s = get(c, "/secrets?s=apiKey", admin).json()["data"]["apiKey"]
    assert s["UserDefined"] is True and s["Private"] is None


def test_authentication_and_query_errors(setup):
    c, admin, reader, stranger = setup
    r = get(c, "/secrets?s=sharedKey")
    assert r.status_code == 401 and r.json()["message"] == "no client certificate provided"
    r = get(c, "/secrets?s=sharedKey", stranger)
    assert r.status_code == 401 and "did not match any MarbleRun users" in r.json()["message"]
    r = get(c, "/api/v2/secrets?s=sharedKey", stranger)
    assert r.status_code == 401 and r.json()["status"] == "fail"
    r = get(c, "/secrets", admin)
    assert r.status_code == 400 and r.json()["message"] == "invalid query: endpoint requires at least one query parameter"
    r = get(c, "/api/v2/secrets?s=", admin)
    assert r.status_code == 400 and r.json() == {"status": "fail", "data": None,
                                                 "message": "malformed query string: empty query parameter"}


def test_upload_secrets_and_use_them(setup, softsgx, tmp_path):
    c, admin, reader, stranger = setup
    key = bytes(range(16))
    cert_user = User(tmp_path, "svc")
    body = {"apiKey": {"Key": b64(key)}, "password": {"Key": b64(b"hunter2")},
            "uploadedCert": {"Cert": b64(cert_user.cert.public_bytes(serialization.Encoding.DER)),
                             "Private": b64(cert_user.key.private_bytes(serialization.Encoding.DER,
                                                                         serialization.PrivateFormat.PKCS8,
                                                                         serialization.NoEncryption()))}}
    r = post(c, "/secrets", json.dumps(body), admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "success", "data": None}
    got = get(c, "/secrets?s=apiKey&s=password", admin).json()["data"]
    assert base64.b64decode(got["apiKey"]["Private"]) == key
    assert base64.b64decode(got["password"]["Public"]) == b"hunter2"
    resp = Marble(softsgx).activate(c, "app")
    assert resp.Parameters.Env["API_KEY"] == key.hex().encode()
    assert resp.Parameters.Env["PASSWORD"] == b"hunter2"
    assert resp.Parameters.Files["/cfg/cert.pem"] == cert_user.pem.encode()
    # v2 upload overwrites
    r = post(c, "/api/v2/secrets", json.dumps({"secrets": {"password": {"Key": b64(b"new")}}}), admin)
    assert r.status_code == 200, r.text
    assert base64.b64decode(get(c, "/secrets?s=password", admin).json()["data"]["password"]["Public"]) == b"new"


def test_activation_fails_while_user_secret_is_missing(setup, softsgx):
    c, *_ = setup
    with pytest.raises(grpc.RpcError) as e:
        Marble(softsgx).activate(c, "app")
    assert e.value.code() == grpc.StatusCode.INTERNAL
    assert "tried to parse secret with empty value" in e.value.details()


@pytest.mark.parametrize("body,text", [
    ({}, "no new secrets defined"),
    ({"nosuch": {"Key": b64(b"x")}}, "secret manifest specifies a secret which the original manifest does not contain"),
    ({"sharedKey": {"Key": b64(bytes(32))}}, "secret sharedKey is not writeable"),
    ({"apiKey": {"Key": b64(bytes(15))}}, "declared size and actual size don't match: apiKey"),
    ({"apiKey": {"Key": b64(bytes(16)), "Private": b64(b"x")}},
     "secret apiKey is set to be of type symmetric-key but specified values for a certificate"),
    ({"uploadedCert": {"Key": b64(b"x")}},
     "secret uploadedCert is set to be of type cert-ecdsa but specified values for a symmetric-key"),
    ({"password": {"Key": b64(b"a\x00b")}}, "running manifest template dry run: "),
])
def test_invalid_uploads_change_nothing(setup, body, text):
    c, admin, *_ = setup
    r = post(c, "/secrets", json.dumps(body), admin)
    assert r.status_code == 400
    assert text in r.json()["message"], r.json()
    assert get(c, "/secrets?s=apiKey&s=password", admin).json()["data"]["apiKey"]["Private"] is None


def test_upload_needs_write_permission(setup):
    c, admin, reader, stranger = setup
    r = post(c, "/secrets", json.dumps({"apiKey": {"Key": b64(bytes(16))}}), reader)
    assert r.status_code == 400
    assert r.json()["message"] == "user reader is not allowed to update secret: apiKey"
    r = post(c, "/api/v2/secrets", json.dumps({"secrets": {"apiKey": {"Key": b64(bytes(16))}}}), reader)
    assert r.status_code == 500
    r = post(c, "/secrets", "{bad", admin)
    assert r.status_code == 400 and r.json()["message"].startswith("unmarshaling secret manifest: ")
