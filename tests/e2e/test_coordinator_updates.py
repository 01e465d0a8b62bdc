"""Package updates, full multi-party manifest updates, cancel, and the update log against a
real Coordinator (spec §8.3, §8.4, §12.7)."""
import base64
import json

import grpc
import pytest
import requests

from mrharness import MRSIGNER, Coordinator, Marble, SoftSGX
from test_coordinator_secrets import User, get, post


def base_manifest(users, extra_marbles=None, secrets=None):
    m = {
        "Packages": {"pkg": {"SignerID": MRSIGNER, "ProductID": 3, "SecurityVersion": 3}},
        "Marbles": {"app": {"Package": "pkg", "Parameters": {
            "Files": {"/cert.pem": "{{ pem .Secrets.sharedCert.Cert }}", "/key": "{{ hex .Secrets.sharedKey }}"}}}},
        "Secrets": secrets or {
            "sharedCert": {"Type": "cert-ecdsa", "Size": 256, "Shared": True},
            "sharedKey": {"Type": "symmetric-key", "Size": 128, "Shared": True},
        },
        "Users": {u.name: {"Certificate": u.pem, "Roles": ["pkgUpdate", "manifestUpdate"]} for u in users},
        "Roles": {
            "pkgUpdate": {"ResourceType": "Packages", "ResourceNames": ["pkg"], "Actions": ["UpdateSecurityVersion"]},
            "manifestUpdate": {"ResourceType": "Manifest", "Actions": ["UpdateManifest"]},
        },
    }
    if extra_marbles:
        m["Marbles"].update(extra_marbles)
    return m


@pytest.fixture(scope="module")
def softsgx(tmp_path_factory):
    return SoftSGX(tmp_path_factory.mktemp("softsgx") / "pki")


@pytest.fixture()
def setup(tmp_path, softsgx):
    alice, bob, eve = User(tmp_path, "alice"), User(tmp_path, "bob"), User(tmp_path, "eve")
    m = base_manifest([alice, bob])
    c = Coordinator(tmp_path, softsgx).start()
    c.set_manifest(json.dumps(m).encode())
    yield c, alice, bob, eve, m
    c.stop()


def log_lines(c):
    return [json.loads(l) for l in get(c, "/api/v2/update").json()["data"]["updateLog"]]


def test_package_update(setup, softsgx):
    c, alice, bob, eve, _ = setup
    before = Marble(softsgx, isvsvn=3).activate(c, "app").Parameters.Files
    mesh_before = c.mesh_root_pem()
    r = post(c, "/update", json.dumps({"Packages": {"pkg": {"SecurityVersion": 4}}}), alice)
    assert r.status_code == 200, r.text
    assert r.json()["data"] is None
    assert c.mesh_root_pem() != mesh_before  # new intermediate / marble root
    with pytest.raises(grpc.RpcError) as e:
        Marble(softsgx, isvsvn=3).activate(c, "app")
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    after = Marble(softsgx, isvsvn=4).activate(c, "app").Parameters.Files
    assert after["/key"] == before["/key"]          # shared symmetric keys are kept
    assert after["/cert.pem"] != before["/cert.pem"]  # shared certificates are re-issued
    last = log_lines(c)[-1]
    assert last["update"] == "SecurityVersion increased"
    assert last["user"] == "alice" and last["package"] == "pkg" and last["new version"] == 4
    # the stored manifest does not change on package updates
    assert json.loads(base64.b64decode(get(c, "/api/v2/manifest").json()["data"]["manifest"]))["Packages"]["pkg"]["SecurityVersion"] == 3
    c.restart()
    with pytest.raises(grpc.RpcError):
        Marble(softsgx, isvsvn=3).activate(c, "app")
    v1log = get(c, "/update").json()["data"]
    assert isinstance(v1log, str) and v1log.endswith("\n") and "SecurityVersion increased" in v1log


def test_per_marble_previous_secrets(tmp_path, softsgx):
    """A marble's own symmetric key for the previous cycle: the current key while no root
    secret has been replaced (it is not derived twice), the key of the old root secret after a
    full update with RotateRootSecret replaced it."""
    alice = User(tmp_path, "alice")
    m = base_manifest([alice], secrets={
        "own": {"Type": "symmetric-key", "Size": 256},
        "sharedCert": {"Type": "cert-ecdsa", "Size": 256, "Shared": True},
        "sharedKey": {"Type": "symmetric-key", "Size": 128, "Shared": True}})
    m["Marbles"]["app"]["Parameters"]["Files"] = {"/own": "{{ hex .Secrets.own }}",
                                                  "/ownprev": "{{ hex .Previous.Secrets.own }}"}
    c = Coordinator(tmp_path, softsgx).start()
    try:
        c.set_manifest(json.dumps(m).encode())
        uuid = "5c2fc2a4-2b1e-4f0e-9b1d-0b7e2c1d9a11"
        first = Marble(softsgx, isvsvn=3).activate(c, "app", uuid=uuid).Parameters.Files
        assert len(first["/own"]) == 64 and first["/ownprev"] == first["/own"]
        again = Marble(softsgx, isvsvn=3).activate(c, "app", uuid=uuid).Parameters.Files
        assert again["/own"] == first["/own"] and again["/ownprev"] == first["/own"]
        other = Marble(softsgx, isvsvn=3).activate(c, "app").Parameters.Files
        assert other["/own"] != first["/own"] and other["/ownprev"] == other["/own"]
        m["Config"] = {"RotateRootSecret": True}
        raw = json.dumps(m).encode()
        r = post(c, "/api/v2/update", json.dumps({"manifest": base64.b64encode(raw).decode()}), alice)
        assert r.status_code == 200, r.text
        after = Marble(softsgx, isvsvn=3).activate(c, "app", uuid=uuid).Parameters.Files
        assert after["/own"] != first["/own"] and after["/ownprev"] == first["/own"]
    finally:
        c.stop()


@pytest.mark.parametrize("body,text", [
    ({"Packages": {"pkg": {"SecurityVersion": 2}}},
     "checking update manifest: update manifest tries to downgrade SecurityVersion of the original manifest"),
    ({"Packages": {"pkg": {"SecurityVersion": 5, "Debug": True}}},
     "checking update manifest: update manifest contains unupdatable values"),
    ({"Packages": {"pkg": {}}}, "checking update manifest: update manifest does not specify a SecurityVersion to update"),
    ({"Packages": {"nosuch": {"SecurityVersion": 5}}}, "is not allowed to update one or more packages of [nosuch]"),
])
def test_package_update_rejections(setup, body, text):
    c, alice, *_ = setup
    r = post(c, "/update", json.dumps(body), alice)
    assert r.status_code == 400 and text in r.json()["message"], r.json()
    assert [l["update"] for l in log_lines(c)] == ["Initial manifest set"]


def test_package_update_needs_permission(setup):
    c, alice, bob, eve, _ = setup
    r = post(c, "/update", json.dumps({"Packages": {"pkg": {"SecurityVersion": 4}}}), eve)
    assert r.status_code == 401


def test_full_update_with_two_acknowledgements(setup, softsgx):
    c, alice, bob, eve, m = setup
    new = base_manifest([alice, bob], extra_marbles={"worker": {"Package": "pkg"}},
                        secrets={"sharedKey": {"Type": "symmetric-key", "Size": 128, "Shared": True},
                                 "newCert": {"Type": "cert-ecdsa", "Size": 256, "Shared": True}})
    new["Marbles"]["app"]["Parameters"]["Files"] = {"/key": "{{ hex .Secrets.sharedKey }}",
                                                    "/old": "{{ hex .Previous.Secrets.sharedKey }}"}
    raw = json.dumps(new).encode()
    key_before = Marble(softsgx).activate(c, "app").Parameters.Files["/key"]
    r = post(c, "/api/v2/update", json.dumps({"manifest": base64.b64encode(raw).decode()}), alice)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"missingAcknowledgments": 1, "missingUsers": ["bob"]}
    pending = get(c, "/api/v2/update-manifest").json()["data"]
    assert base64.b64decode(pending["manifest"]) == raw
    assert pending["message"] == "1 user still needs to acknowledge the update manifest"
    assert pending["missingUsers"] == ["bob"]
    # nothing applied yet; a second update is refused
    with pytest.raises(grpc.RpcError):
        Marble(softsgx).activate(c, "worker")
    r = post(c, "/api/v2/update", json.dumps({"manifest": base64.b64encode(raw).decode()}), bob)
    assert r.status_code == 500 and r.json()["message"].startswith("update already in progress")
    # wrong bytes are refused, then bob acknowledges
    r = post(c, "/api/v2/update-manifest", json.dumps({"manifest": base64.b64encode(raw + b" ").decode()}), bob)
    assert r.status_code == 500 and r.json()["message"] == "provided manifest does not match the pending manifest"
    r = post(c, "/api/v2/update-manifest", json.dumps({"manifest": base64.b64encode(raw).decode()}), bob)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["message"] == "All users have acknowledged the update manifest. Update successfully applied"
    assert get(c, "/api/v2/manifest").json()["data"]["manifestFingerprint"] == __import__("hashlib").sha256(raw).hexdigest()
    files = Marble(softsgx).activate(c, "app").Parameters.Files
    assert files["/key"] == key_before and files["/old"] == key_before
    Marble(softsgx).activate(c, "worker")
    assert get(c, "/api/v2/update-manifest").status_code == 404
    updates = [l["update"] for l in log_lines(c)]
    assert updates[-3:] == ["Complete Manifest update initiated by user. Waiting for acknowledgments to apply the update",
                            "Complete Manifest update acknowledged by user", "Complete Manifest updated"]


def test_full_update_cancel(setup):
    c, alice, bob, eve, m = setup
    raw = json.dumps(base_manifest([alice, bob], extra_marbles={"x": {"Package": "pkg"}})).encode()
    assert post(c, "/update", raw, alice).status_code == 200
    r = post(c, "/update-cancel", b"", eve)
    assert r.status_code == 401
    r = post(c, "/api/v2/update-cancel", b"", bob)
    assert r.status_code == 200 and r.json()["data"] == {"message": "Update successfully cancelled"}
    r = post(c, "/update-cancel", b"", bob)
    assert r.status_code == 404 and r.json()["message"] == "no update in progress"
    assert log_lines(c)[-1]["update"] == "Complete Manifest update cancelled by user"
    # v1 acknowledge answers a plain string
    assert post(c, "/update", raw, alice).status_code == 200
    r = post(c, "/update-manifest", raw, bob)
    assert r.status_code == 200
    assert r.json()["data"] == "All users have acknowledged the update manifest. Update successfully applied"
