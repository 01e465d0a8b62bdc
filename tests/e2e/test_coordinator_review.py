"""Regression tests for defects found in review: re-keying on a full update that changes the
recovery keys, long user names, oversized package updates, and repeated secret names."""
import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mrharness import Coordinator, Marble, SoftSGX
from test_coordinator_secrets import User, get, post
from test_coordinator_updates import base_manifest


def rsa_key():
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = k.public_key().public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return k, pem


@pytest.fixture(scope="module")
def softsgx(tmp_path_factory):
    return SoftSGX(tmp_path_factory.mktemp("softsgx") / "pki")


def test_full_update_changing_recovery_keys_rekeys_and_keeps_state(tmp_path, softsgx):
    alice = User(tmp_path, "alice")
    m = base_manifest([alice])
    k1, p1 = rsa_key()
    m["RecoveryKeys"] = {"r1": p1}
    c = Coordinator(tmp_path, softsgx).start()
    try:
        first = c.post("/api/v2/manifest", json.dumps({"manifest": base64.b64encode(json.dumps(m).encode()).decode()}))
        old_secret = k1.decrypt(base64.b64decode(first.json()["data"]["RecoverySecrets"]["r1"]),
                                padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
        m2 = json.loads(json.dumps(m))
        k2, p2 = rsa_key()
        m2["RecoveryKeys"] = {"r2": p2}
        m2["Marbles"]["app"]["MaxActivations"] = 5
        raw2 = json.dumps(m2).encode()
        r = post(c, "/api/v2/update", json.dumps({"manifest": base64.b64encode(raw2).decode()}), alice)
        assert r.status_code == 200, r.text
        d = r.json()["data"]
        assert d["missingAcknowledgments"] == 0 and list(d["recoverySecrets"]) == ["r2"]
        new_secret = k2.decrypt(base64.b64decode(d["recoverySecrets"]["r2"]),
                                padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
        assert len(new_secret) == 32 and new_secret != old_secret
        updates = [json.loads(l)["update"] for l in get(c, "/api/v2/update").json()["data"]["updateLog"]]
        assert updates[-1] == "Complete Manifest updated" and not any("cancelled" in u for u in updates)
        Marble(softsgx).activate(c, "app")
        c.restart()
        assert c.status() == 3
        man = json.loads(base64.b64decode(get(c, "/api/v2/manifest").json()["data"]["manifest"]))
        assert list(man["RecoveryKeys"]) == ["r2"]
        Marble(softsgx).activate(c, "app")
    finally:
        c.stop()


def test_long_user_names_are_not_confused(tmp_path, softsgx):
    long_name = "A" * 300
    boss, intern = User(tmp_path, "boss"), User(tmp_path, "intern")
    m = base_manifest([])
    m["Users"] = {long_name: {"Certificate": boss.pem, "Roles": ["reader"]},
                  long_name + "-intern": {"Certificate": intern.pem}}
    m["Roles"] = {"reader": {"ResourceType": "Secrets", "ResourceNames": ["sharedKey"], "Actions": ["ReadSecret"]}}
    c = Coordinator(tmp_path, softsgx).start()
    try:
        c.set_manifest(json.dumps(m).encode())
        assert get(c, "/secrets?s=sharedKey", boss).status_code == 200
        r = get(c, "/secrets?s=sharedKey", intern)
        assert r.status_code == 400 and "is not allowed to read" in r.json()["message"]
    finally:
        c.stop()


def test_package_update_with_many_packages(tmp_path, softsgx):
    alice = User(tmp_path, "alice")
    m = base_manifest([alice])
    c = Coordinator(tmp_path, softsgx).start()
    try:
        c.set_manifest(json.dumps(m).encode())
        body = {"Packages": {f"p{i}": {"SecurityVersion": 1} for i in range(300)}}
        r = post(c, "/update", json.dumps(body), alice)
        assert r.status_code == 400 and "is not allowed to update one or more packages" in r.json()["message"]
        assert c.status() == 3
    finally:
        c.stop()


def test_repeated_secret_names_answer_once(tmp_path, softsgx):
    admin = User(tmp_path, "admin")
    m = base_manifest([])
    m["Users"] = {"admin": {"Certificate": admin.pem, "Roles": ["reader"]}}
    m["Roles"] = {"reader": {"ResourceType": "Secrets", "ResourceNames": ["sharedKey"], "Actions": ["ReadSecret"]}}
    c = Coordinator(tmp_path, softsgx).start()
    try:
        c.set_manifest(json.dumps(m).encode())
        r = get(c, "/secrets?s=sharedKey&s=sharedKey", admin)
        assert r.status_code == 200
        assert r.text.count('"sharedKey"') == 1
    finally:
        c.stop()


def test_busy_port_is_named_in_the_error(tmp_path, softsgx):
    """A listen address in use stops the start with the address and the reason."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        c = Coordinator(tmp_path, softsgx, extra_env={"EDG_COORDINATOR_CLIENT_ADDR": f"127.0.0.1:{port}"})
        c.start(expect_ready=False)
        rc = c.proc.wait(timeout=30)
        log = c.read_log()
        c.stop(check=False)
    assert rc != 0
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in log
