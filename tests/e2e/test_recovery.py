"""Recovery of a sealed state on a "new host" (spec §10, §12.8, 1.9.1): a real Coordinator, the
KEK file replaced so the state key cannot be unsealed (state 1), and the recovery secrets
decrypted and signed by the test with the openssl CLI exactly as an operator would do it.
Schemes: one key (the state key itself), 3-of-3 XOR shares, 2-of-3 Shamir shares."""
import base64
import json
import os
import subprocess
import uuid as uuidlib

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mrharness import MRSIGNER, Coordinator, Marble, SoftSGX, self_signed

NOT_IN_STATE = "server is not in expected state"


def b64(b):
    return base64.b64encode(b).decode()


def openssl(*args, stdin=None):
    r = subprocess.run(["openssl", *map(str, args)], input=stdin, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


class RecoveryKey:
    """An operator's RSA key pair, kept in PEM files; decrypts and signs with openssl."""

    def __init__(self, d, name, bits=2048):
        self.name = name
        self.priv = d / f"{name}.key"
        self.pub = d / f"{name}.pub"
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}", "-out", self.priv)
        openssl("pkey", "-in", self.priv, "-pubout", "-out", self.pub)
        self.dir = d

    @property
    def pem(self):
        return self.pub.read_text()

    def decrypt(self, ct):
        f = self.dir / f"{self.name}.ct"
        f.write_bytes(ct)
        return openssl("pkeyutl", "-decrypt", "-inkey", self.priv, "-in", f, "-pkeyopt", "rsa_padding_mode:oaep",
                       "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256")

    def sign(self, secret):
        f = self.dir / f"{self.name}.secret"
        f.write_bytes(secret)
        try:
            return openssl("dgst", "-sha256", "-sign", self.priv, f)
        finally:
            f.unlink()


class User:
    def __init__(self, d, name):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.pem = self_signed(self.key, name).public_bytes(serialization.Encoding.PEM).decode()
        self.certfile, self.keyfile = d / f"{name}.crt", d / f"{name}.pem"
        self.certfile.write_text(self.pem)
        self.keyfile.write_bytes(self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))

    @property
    def tls(self):
        return (str(self.certfile), str(self.keyfile))


def manifest(keys, admin, threshold=None):
    m = {
        "Packages": {"pkg": {"SignerID": MRSIGNER, "ProductID": 3, "SecurityVersion": 1}},
        "Marbles": {"app": {"Package": "pkg", "Parameters": {
            "Files": {"/k": "{{ hex .Secrets.perMarble }}", "/s": "{{ hex .Secrets.shared }}",
                      "/u": "{{ hex .Secrets.userKey }}"}}}},
        "Secrets": {
            "perMarble": {"Type": "symmetric-key", "Size": 128},
            "shared": {"Type": "symmetric-key", "Size": 256, "Shared": True},
            "userKey": {"Type": "symmetric-key", "Size": 128, "UserDefined": True},
        },
        "Users": {"admin": {"Certificate": admin.pem, "Roles": ["rw", "upd"]}},
        "Roles": {"rw": {"ResourceType": "Secrets", "ResourceNames": ["userKey"],
                         "Actions": ["ReadSecret", "WriteSecret"]},
                  "upd": {"ResourceType": "Manifest", "Actions": ["UpdateManifest"]}},
        "RecoveryKeys": {k.name: k.pem for k in keys},
    }
    if threshold is not None:
        m["Config"] = {"RecoveryThreshold": threshold}
    return json.dumps(m).encode()


@pytest.fixture(scope="module")
def softsgx(tmp_path_factory):
    return SoftSGX(tmp_path_factory.mktemp("softsgx") / "pki")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("rkeys")
    return [RecoveryKey(d, n) for n in ("alice", "bob", "carol", "mallory")]


class Deployment:
    """A Coordinator with a manifest, one activated marble and an uploaded secret; remembers
    what a recovered Coordinator must serve again."""

    def __init__(self, tmp_path, softsgx, keys, threshold=None, env=None):
        self.admin = User(tmp_path, "admin")
        self.keys = keys
        self.c = Coordinator(tmp_path, softsgx, extra_env=env).start()
        r = self.c.post("/api/v2/manifest", json.dumps({"manifest": b64(manifest(keys, self.admin, threshold))}))
        assert r.status_code == 200, r.text
        enc = r.json()["data"]["RecoverySecrets"]
        assert set(enc) == {k.name for k in keys}
        self.enc = {k.name: base64.b64decode(enc[k.name]) for k in keys}
        self.secrets = {k.name: k.decrypt(self.enc[k.name]) for k in keys}
        self.softsgx = softsgx
        self.uuid = str(uuidlib.uuid4())
        self.user_key = os.urandom(16)
        r = requests.post(self.c.url + "/api/v2/secrets", json.dumps({"secrets": {"userKey": {"Key": b64(self.user_key)}}}),
                          verify=False, cert=self.admin.tls, timeout=30)
        assert r.status_code == 200, r.text
        self.files = dict(Marble(softsgx).activate(self.c, "app", self.uuid).Parameters.Files)
        self.root = self.root_pem()
        self.fingerprint = self.c.get("/api/v2/manifest").json()["data"]["manifestFingerprint"]

    def root_pem(self):
        cert = self.c.get("/api/v2/quote").json()["data"]["cert"]
        return cert.split("-----END CERTIFICATE-----\n")[1]

    def move_to_new_host(self):
        self.c.stop()
        (self.c.seal_dir / "kek").write_bytes(os.urandom(32))
        self.c.start()
        assert self.c.status() == 1
        assert self.root_pem() != self.root  # the temporary CA

    def upload(self, secret, sig):
        return self.c.post("/api/v2/recover", json.dumps({"recoverySecret": b64(secret), "recoverySecretSignature": b64(sig)}))

    def upload_by(self, key, signer=None):
        s = self.secrets[key.name]
        return self.upload(s, (signer or key).sign(s))

    def check_recovered(self):
        assert self.c.status() == 3
        assert self.root_pem() == self.root
        assert self.c.get("/api/v2/manifest").json()["data"]["manifestFingerprint"] == self.fingerprint
        r = requests.get(self.c.url + "/api/v2/secrets?s=userKey", verify=False, cert=self.admin.tls, timeout=30)
        assert r.status_code == 200, r.text
        assert base64.b64decode(r.json()["data"]["secrets"]["userKey"]["Private"]) == self.user_key
        files = Marble(self.softsgx).activate(self.c, "app", self.uuid).Parameters.Files
        assert dict(files) == self.files  # per-marble key, shared secret, uploaded secret

    def stop(self):
        self.c.stop()


def ok(r, remaining):
    assert r.status_code == 200, r.text
    d = r.json()["data"]
    assert d["remaining"] == remaining
    if remaining == 0:
        assert d["message"] == "Recovery successful."
    else:
        assert d["message"] == f"Secret was processed successfully. Upload the next secret. Remaining secrets: {remaining}"


def err(r, text):
    assert r.status_code == 500, r.text
    j = r.json()
    assert j["status"] == "error" and text in j["message"], j


def recovery_data(dep):
    p = dep.c.seal_dir / "recovery_data"
    return json.loads(p.read_text()) if p.exists() else None


# ---------------------------------------------------------------------------------------------


def test_single_key(tmp_path, softsgx, keys):
    d = Deployment(tmp_path, softsgx, keys[:1])
    assert len(d.secrets["alice"]) == 32
    assert recovery_data(d) is None
    d.move_to_new_host()
    # a wrong key does not open the state and changes nothing
    err(d.upload(os.urandom(32), keys[0].sign(b"x")), "loading sealed state: ")
    assert d.c.status() == 1
    # the right key signed by a key that is not in the manifest
    err(d.upload_by(keys[0], signer=keys[3]), 'no matching recovery key found for recovery public key "alice"')
    # the right key with a signature over something else
    err(d.upload(d.secrets["alice"], keys[0].sign(b"other")), 'no matching recovery key found')
    assert d.c.status() == 1
    ok(d.upload_by(keys[0]), 0)
    d.check_recovered()
    # the key was re-sealed for this host: a restart loads the state directly
    d.c.restart()
    d.check_recovered()
    assert d.c.get("/api/v2/recover/public-key").status_code == 500
    err(d.upload_by(keys[0]), NOT_IN_STATE)
    d.stop()


def test_xor_three_of_three(tmp_path, softsgx, keys):
    d = Deployment(tmp_path, softsgx, keys[:3])
    data = recovery_data(d)
    assert data["scheme"] == "xor" and data["keys"] == 3 and len(data["shareHashes"]) == 3
    assert oct((d.c.seal_dir / "recovery_data").stat().st_mode & 0o777) == "0o600"
    assert all(len(s) == 32 for s in d.secrets.values())
    d.move_to_new_host()
    alice, bob, carol, mallory = keys
    ok(d.upload_by(alice), 2)
    # reuse and unknown shares are rejected without losing what was collected
    err(d.upload_by(alice), "setting recovery key: uploaded an invalid or already used secret")
    err(d.upload(os.urandom(32), alice.sign(b"x")), "uploaded an invalid or already used secret")
    err(d.upload(b"\x01" * 33, alice.sign(b"x")), "setting recovery key: recovery secrets must match in length")
    ok(d.upload_by(bob), 1)
    assert d.c.status() == 1  # too few shares
    # all shares, but one signed by a key outside the manifest: the attempt fails and is reset
    err(d.upload_by(carol, signer=mallory), 'no matching recovery key found for recovery public key')
    assert d.c.status() == 1
    ok(d.upload_by(carol), 2)
    ok(d.upload_by(alice), 1)
    ok(d.upload_by(bob), 0)
    d.check_recovered()
    d.c.restart()
    d.check_recovered()
    d.stop()


def test_shamir_two_of_three(tmp_path, softsgx, keys):
    d = Deployment(tmp_path, softsgx, keys[:3], threshold=2)
    data = recovery_data(d)
    assert data["scheme"] == "shamir" and data["threshold"] == 2 and data["keys"] == 3
    assert all(len(s) == 33 for s in d.secrets.values())
    d.move_to_new_host()
    alice, bob, carol, mallory = keys
    ok(d.upload_by(carol), 2)  # remaining counts against the number of keys
    err(d.upload_by(carol), "uploaded an invalid or already used secret")
    assert d.c.status() == 1
    # enough shares, wrong signer: refused before the state is used, then reset
    err(d.upload_by(alice, signer=mallory), "no matching recovery key found")
    assert d.c.status() == 1
    ok(d.upload_by(alice), 2)
    ok(d.upload_by(bob), 0)
    d.check_recovered()
    d.c.restart()
    d.check_recovered()
    d.stop()


def test_ephemeral_key_upload(tmp_path, softsgx, keys):
    d = Deployment(tmp_path, softsgx, keys[:3], threshold=2)
    assert d.c.get("/api/v2/recover/public-key").json()["status"] == "error"  # state 3
    d.move_to_new_host()
    alice, bob = keys[0], keys[1]
    # no key requested yet: encrypted uploads cannot be decrypted
    r = d.upload(os.urandom(512), alice.sign(b"x"))
    assert r.status_code == 400 and r.json()["status"] == "fail"
    assert r.json()["message"].startswith("failed to decrypt recovery secret: ")
    r = d.c.get("/api/v2/recover/public-key")
    assert r.status_code == 200, r.text
    pk = r.json()["data"]
    assert pk["algorithm"] == "RSA"
    der = base64.b64decode(pk["ephemeralPublicKey"])
    assert d.c.get("/api/v2/recover/public-key").json()["data"] == pk  # kept until used
    (tmp_path / "eph.der").write_bytes(der)
    text = openssl("pkey", "-pubin", "-inform", "DER", "-in", tmp_path / "eph.der", "-noout", "-text").decode()
    assert "4096 bit" in text

    def encrypt(secret):
        (tmp_path / "plain").write_bytes(secret)
        return openssl("pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey", tmp_path / "eph.der",
                       "-in", tmp_path / "plain", "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
                       "-pkeyopt", "rsa_mgf1_md:sha256")

    ct = encrypt(d.secrets["alice"])
    assert len(ct) == 512
    bad = bytearray(ct)
    bad[10] ^= 1
    r = d.upload(bytes(bad), alice.sign(d.secrets["alice"]))
    assert r.status_code == 400 and r.json()["message"].startswith("failed to decrypt recovery secret: ")
    ok(d.upload(ct, alice.sign(d.secrets["alice"])), 2)  # signature over the plain share
    ok(d.upload(encrypt(d.secrets["bob"]), bob.sign(d.secrets["bob"])), 0)
    d.check_recovered()
    d.stop()


def test_request_errors(tmp_path, softsgx, keys):
    d = Deployment(tmp_path, softsgx, keys[:1])
    d.move_to_new_host()
    r = d.c.post("/api/v2/recover", b"{not json")
    assert r.status_code == 400 and r.json()["status"] == "fail"
    r = d.c.post("/api/v2/recover", json.dumps({"recoverySecret": 5}))
    assert r.status_code == 400 and r.json()["status"] == "fail"
    r = d.c.post("/api/v2/recover", b'{"recoverySecret":"' + b"A" * 30000 + b'"}')
    assert r.status_code == 400 and r.json()["message"] == "http: request body too large"
    # trailing data after the object is ignored, field names are case-insensitive
    s = d.secrets["alice"]
    body = json.dumps({"RECOVERYSECRET": b64(s), "recoverysecretsignature": b64(keys[0].sign(s))}) + "garbage"
    ok(d.c.post("/api/v2/recover", body), 0)
    d.check_recovered()
    assert d.c.post("/recover", b"x").status_code == 410
    d.stop()


def test_set_manifest_in_recovery_mode_starts_over(tmp_path, softsgx, keys):
    d = Deployment(tmp_path, softsgx, keys[:3])
    d.move_to_new_host()
    ok(d.upload_by(keys[0]), 2)
    temp_root = d.root_pem()
    other = User(tmp_path, "other")
    r = d.c.post("/api/v2/manifest", json.dumps({"manifest": b64(manifest(keys[:1], other))}))
    assert r.status_code == 200, r.text
    assert d.c.status() == 3
    assert d.root_pem() == temp_root != d.root  # the temporary CA became permanent
    assert not (d.c.seal_dir / "recovery_data").exists()  # single key: no recovery data
    err(d.upload_by(keys[0]), NOT_IN_STATE)
    d.c.restart()
    assert d.c.status() == 3 and d.root_pem() == temp_root
    d.stop()


def test_cli_recover_against_real_coordinator(tmp_path, softsgx, keys):
    """`marblerun recover` (decrypt with --key, sign, upload after attesting the Coordinator)."""
    from mrharness import BIN, MRENCLAVE
    d = Deployment(tmp_path, softsgx, keys[:3], threshold=2)
    r = d.c.post("/api/v2/manifest", b"{}")  # not allowed in state 3: nothing changes
    assert r.status_code == 500
    d.move_to_new_host()
    work = tmp_path / "cli"
    work.mkdir()
    (work / "era.json").write_text(json.dumps({"SecurityVersion": 3, "ProductID": 3, "UniqueID": MRENCLAVE,
                                               "SignerID": MRSIGNER, "Debug": False}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDG_")}
    env.update({k: v for k, v in softsgx.env().items() if k.startswith("EDG_ATTESTATION_")})
    env["XDG_CONFIG_HOME"] = str(work / "xdg")
    for key, remaining in ((keys[2], 2), (keys[0], 0)):
        # the file holds the secret as issued (RSA-OAEP ciphertext); the CLI decrypts and signs it
        (work / "secret.enc").write_bytes(d.enc[key.name])
        p = subprocess.run([str(BIN / "marblerun"), "recover", "secret.enc", f"127.0.0.1:{d.c.client_port}",
                            "--key", str(key.priv), "--era-config", "era.json"],
                           env=env, cwd=work, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        assert d.c.status() == (1 if remaining else 3)
    d.check_recovered()
    d.stop()


def test_update_with_new_recovery_keys_reissues_secrets(tmp_path, softsgx, keys):
    """A full update that changes the recovery keys seals the state under a new key: the old
    secrets stop working, the new ones (and the new recovery data) recover the state."""
    alice, bob, carol, mallory = keys
    d = Deployment(tmp_path, softsgx, keys[:3], threshold=2)
    old_data = recovery_data(d)
    raw = manifest([alice, mallory], d.admin)
    r = requests.post(d.c.url + "/api/v2/update", json.dumps({"manifest": b64(raw)}), verify=False,
                      cert=d.admin.tls, timeout=60)
    assert r.status_code == 200, r.text
    enc = r.json()["data"]["recoverySecrets"]
    assert set(enc) == {"alice", "mallory"}
    old_alice = d.secrets["alice"]
    d.secrets = {k.name: k.decrypt(base64.b64decode(enc[k.name])) for k in (alice, mallory)}
    new_data = recovery_data(d)
    assert new_data["scheme"] == "xor" and new_data["keys"] == 2 and new_data != old_data
    d.fingerprint = d.c.get("/api/v2/manifest").json()["data"]["manifestFingerprint"]
    d.files = dict(Marble(softsgx).activate(d.c, "app", d.uuid).Parameters.Files)
    d.move_to_new_host()
    err(d.upload(old_alice, alice.sign(old_alice)), "uploaded an invalid or already used secret")
    ok(d.upload_by(alice), 1)
    ok(d.upload_by(mallory), 0)
    d.check_recovered()
    d.stop()


def test_sealing_disabled_needs_recovery_after_every_restart(tmp_path, softsgx, keys):
    """EDG_COORDINATOR_KEK=none: the state is written but its key is never sealed."""
    d = Deployment(tmp_path, softsgx, keys[:1], env={"EDG_COORDINATOR_KEK": "none"})
    assert not (d.c.seal_dir / "sealed_key").exists()
    d.c.restart()
    assert d.c.status() == 1
    assert "sealing is disabled" in d.c.read_log()
    ok(d.upload_by(keys[0]), 0)
    d.check_recovered()
    assert not (d.c.seal_dir / "sealed_key").exists()
    d.c.restart()
    assert d.c.status() == 1
    ok(d.upload_by(keys[0]), 0)
    d.check_recovered()
    d.stop()


def test_recovery_refuses_a_tampered_state(tmp_path, softsgx, keys):
    """The right key does not make a modified state acceptable: nothing of it is loaded."""
    d = Deployment(tmp_path, softsgx, keys[:1])
    d.c.stop()
    log = d.c.seal_dir / "state.log"
    data = bytearray(log.read_bytes())
    data[len(data) // 2] ^= 0x01
    log.write_bytes(bytes(data))
    (d.c.seal_dir / "kek").write_bytes(os.urandom(32))
    d.c.start()
    assert d.c.status() == 1
    err(d.upload_by(keys[0]), "loading sealed state: sealed state is corrupted")
    assert d.c.status() == 1
    assert d.c.get("/api/v2/manifest").status_code == 500
    d.stop()
