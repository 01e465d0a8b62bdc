"""End-to-end tests of the `marblerun` CLI (spec/marble-cli-k8s.md §4): the real binary against a
real Coordinator in softsgx mode (quotes verified with the DCAP verifier against the softsgx
test root and collateral), plus small python HTTPS stubs for the legacy-API fallback and for
the recovery endpoints."""
import base64
import datetime
import hashlib
import http.server
import json
import os
import pathlib
import ssl
import stat
import subprocess
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from mrharness import BIN, MRENCLAVE, MRSIGNER, Coordinator, SoftSGX
from test_coordinator_secrets import User

STATE2 = "Coordinator is ready to accept a manifest."
STATE3 = "Coordinator is running correctly and ready to accept marbles."


@pytest.fixture(scope="module")
def softsgx(tmp_path_factory):
    return SoftSGX(tmp_path_factory.mktemp("softsgx") / "pki")


class CLI:
    """Runs the marblerun binary in a work dir with its own XDG config dir."""

    def __init__(self, workdir, softsgx=None):
        self.dir = pathlib.Path(workdir)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("EDG_")}
        if softsgx is not None:
            self.env.update({k: v for k, v in softsgx.env().items() if k.startswith("EDG_ATTESTATION_")})
        self.env["XDG_CONFIG_HOME"] = str(self.dir / "xdg")
        self.cache = self.dir / "xdg" / "marblerun" / "coordinator-cert.pem"

    def __call__(self, *args, check=None, input=None):
        p = subprocess.run([str(BIN / "marblerun"), *map(str, args)], env=self.env, cwd=self.dir,
                           capture_output=True, text=True, input=input, timeout=120)
        # diagnostics only go to stderr; library warnings (non-Intel test root) are allowed there
        if check is True:
            assert p.returncode == 0, f"rc={p.returncode}\nstdout:{p.stdout}\nstderr:{p.stderr}"
        if check is False:
            assert p.returncode == 1, f"rc={p.returncode}\nstdout:{p.stdout}\nstderr:{p.stderr}"
        return p


def errline(p):
    """The cobra error line on stderr."""
    lines = [l for l in p.stderr.splitlines() if l.startswith("Error: ")]
    assert len(lines) == 1, p.stderr
    return lines[0][len("Error: "):]


def era(path, **over):
    cfg = {"SecurityVersion": 3, "ProductID": 3, "UniqueID": MRENCLAVE, "SignerID": MRSIGNER, "Debug": False}
    cfg.update(over)
    path.write_text(json.dumps(cfg))
    return path


def manifest(users=(), recovery_key=None):
    m = {
        "Packages": {"pkg": {"SignerID": MRSIGNER, "ProductID": 3, "SecurityVersion": 3}},
        "Marbles": {"app": {"Package": "pkg"}},
        "Secrets": {
            "sharedKey": {"Type": "symmetric-key", "Size": 128, "Shared": True},
            "userKey": {"Type": "symmetric-key", "Size": 128, "UserDefined": True},
            "userCert": {"Type": "cert-ecdsa", "UserDefined": True},
        },
        "Users": {u.name: {"Certificate": u.pem, "Roles": ["r", "w", "pkgUpdate", "manifestUpdate"]} for u in users},
        "Roles": {
            "r": {"ResourceType": "Secrets", "ResourceNames": ["sharedKey", "userKey", "userCert"],
                  "Actions": ["ReadSecret"]},
            "w": {"ResourceType": "Secrets", "ResourceNames": ["userKey", "userCert"], "Actions": ["WriteSecret"]},
            "pkgUpdate": {"ResourceType": "Packages", "ResourceNames": ["pkg"], "Actions": ["UpdateSecurityVersion"]},
            "manifestUpdate": {"ResourceType": "Manifest", "Actions": ["UpdateManifest"]},
        },
    }
    if recovery_key is not None:
        m["RecoveryKeys"] = {"rk": recovery_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()}
    return m


@pytest.fixture()
def coord(tmp_path, softsgx):
    c = Coordinator(tmp_path / "coord", softsgx)
    c.workdir.mkdir()
    c.start()
    yield c
    c.stop()


@pytest.fixture()
def cli(tmp_path, softsgx):
    d = tmp_path / "cli"
    d.mkdir()
    return CLI(d, softsgx)


def addr(c, host="127.0.0.1"):
    return f"{host}:{c.client_port}"


# ---------------------------------------------------------------------------------------------
# framework behaviour: exit codes, stdout/stderr split, usage only for flag/arg errors


def test_usage_errors_and_exit_codes(cli):
    p = cli(check=True)
    assert "Install and manage the MarbleRun confidential computing service mesh" in p.stdout
    order = ("install", "uninstall", "precheck", "check", "manifest", "certificate", "secret",
             "status", "recover", "recover-with-signature", "package-info", "version")
    at = [p.stdout.find(f"\n  {cmd} ") for cmd in order]
    assert -1 not in at and at == sorted(at)  # MarbleRun's registration order (spec §4.1)
    p = cli("status", check=False)  # wrong argument count: error + usage
    assert errline(p).startswith("accepts 1 arg(s), received 0") and "Usage:" in p.stdout
    p = cli("status", "127.0.0.1:1", "--bogus", check=False)
    assert "unknown flag: --bogus" in errline(p) and "Usage:" in p.stdout
    # an error inside the command: no usage, nothing on stdout
    p = cli("status", "127.0.0.1:1", check=False)
    assert "Usage:" not in p.stdout and p.stdout == ""
    assert "loading root certificate from local cache" in errline(p)


def test_manifest_signature_json_and_yaml(cli):
    m = manifest()
    raw = json.dumps(m, indent=2).encode()
    (cli.dir / "m.json").write_bytes(raw)
    p = cli("manifest", "signature", "m.json", check=True)
    assert p.stdout == hashlib.sha256(raw).hexdigest() + "\n"
    # YAML: converted with sorted keys, compact, types kept
    (cli.dir / "m.yaml").write_text(
        "Packages:\n  pkg:\n    SignerID: " + MRSIGNER + "\n    ProductID: 3\n    Debug: false\n"
        "Marbles:\n  app:\n    Package: pkg\n    Parameters:\n      Env:\n        A: \"3\"\n        B: <&>\n")
    want = json.dumps({"Marbles": {"app": {"Package": "pkg", "Parameters": {"Env": {"A": "3", "B": "<&>"}}}},
                       "Packages": {"pkg": {"Debug": False, "ProductID": 3, "SignerID": MRSIGNER}}},
                      separators=(",", ":"), sort_keys=True).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    p = cli("manifest", "signature", "m.yaml", check=True)
    assert p.stdout.strip() == hashlib.sha256(want.encode()).hexdigest()
    (cli.dir / "dup.yaml").write_text("a: 1\na: 2\n")
    p = cli("manifest", "signature", "dup.yaml", check=False)
    assert "already set in map" in errline(p)


# ---------------------------------------------------------------------------------------------
# attestation


def test_verify_with_era_config(coord, cli):
    (cli.dir / "m.json").write_text(json.dumps(manifest()))
    coord.set_manifest((cli.dir / "m.json").read_bytes())
    era(cli.dir / "era.json")
    p = cli("manifest", "verify", "m.json", addr(coord), "--era-config", "era.json", check=True)
    assert p.stdout == "OK\n"
    assert cli.cache.exists() and stat.S_IMODE(cli.cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(cli.cache.parent.stat().st_mode) == 0o755
    blocks = cli.cache.read_text().count("BEGIN CERTIFICATE")
    assert blocks == 2
    # by hash, and ./era-config.json is picked up automatically
    era(cli.dir / "era-config.json")
    h = hashlib.sha256((cli.dir / "m.json").read_bytes()).hexdigest()
    p = cli("manifest", "verify", h, addr(coord), check=True)
    assert p.stdout == "Reusing existing config file\nOK\n"
    # nonce: a fresh quote over SHA-256(root || nonce)
    p = cli("manifest", "verify", h, addr(coord), "--nonce", "hello", "--save-sgx-quote", "q.bin", check=True)
    assert (cli.dir / "q.bin").stat().st_size > 0
    # a different manifest
    p = cli("manifest", "verify", "00" * 32, addr(coord), check=False)
    assert "MarbleRun deployment is using a different manifest than expected" in errline(p)
    p = cli("manifest", "verify", "abc", addr(coord), check=False)
    assert errline(p) == "abc is not a file and of invalid length to be a signature (needs to be 32 bytes)"
    p = cli("manifest", "verify", "zz" * 32, addr(coord), check=False)
    assert "not a valid signature (needs to be in hex format)" in errline(p)


@pytest.mark.parametrize("over,text", [
    ({"SecurityVersion": 4}, "invalid SecurityVersion"),
    ({"ProductID": 4}, "invalid ProductID"),
    ({"UniqueID": "00" * 32}, "invalid UniqueID"),
    ({"SignerID": "00" * 32}, "invalid SignerID"),
    ({"UniqueID": "", "SecurityVersion": 0}, "missing SecurityVersion in config"),
    ({"UniqueID": "", "ProductID": 0}, "missing ProductID in config"),
])
def test_verify_wrong_era_config_fails(coord, cli, over, text):
    era(cli.dir / "era.json", **over)
    p = cli("manifest", "verify", "00" * 32, addr(coord), "--era-config", "era.json", check=False)
    assert text in errline(p)
    assert not cli.cache.exists()


def test_era_config_keys_case_insensitive_and_no_id_warning(coord, cli):
    (cli.dir / "era.json").write_text(json.dumps({"securityversion": 2, "PRODUCTID": 3}))
    coord.set_manifest(json.dumps(manifest()).encode())
    p = cli("manifest", "get", addr(coord), "--era-config", "era.json", check=True)
    assert "Configuration contains neither UniqueID nor SignerID!" in p.stdout


def test_no_era_config_and_tcb_policy(coord, cli):
    p = cli("manifest", "verify", "00" * 32, addr(coord), check=False)
    assert "no era config" in errline(p) and "--era-config" in errline(p)
    # an empty quote source: without collateral the quote cannot be verified
    era(cli.dir / "era.json")
    cli.env.pop("EDG_ATTESTATION_COLLATERAL")
    p = cli("manifest", "verify", "00" * 32, addr(coord), "--era-config", "era.json", check=False)
    assert "EDG_ATTESTATION_COLLATERAL" in errline(p)


def test_tcb_status_out_of_date(tmp_path, cli):
    sx = SoftSGX(tmp_path / "pki-ood", tcb_status="OutOfDate")
    c = Coordinator(tmp_path / "coord-ood", sx)
    c.workdir.mkdir()
    c.start()
    try:
        cli.env.update({k: v for k, v in sx.env().items() if k.startswith("EDG_ATTESTATION_")})
        era(cli.dir / "era.json")
        p = cli("manifest", "verify", "00" * 32, addr(c), "--era-config", "era.json", check=False)
        assert errline(p) == "invalid TCB status: OutOfDate"
        p = cli("manifest", "verify", "00" * 32, addr(c), "--era-config", "era.json",
                "--accepted-tcb-statuses", "UpToDate,OutOfDate", check=False)
        assert "Warning: TCB level invalid, but accepted by configuration: OutOfDate" in p.stdout
        assert "TCB Advisories: [" in p.stdout
        assert "Coordinator returned no manifest signature" in errline(p) or "requested value not set" in errline(p)
    finally:
        c.stop()


def test_tcb_status_sw_hardening_needed(tmp_path, cli):
    sx = SoftSGX(tmp_path / "pki-swh", tcb_status="SWHardeningNeeded")
    c = Coordinator(tmp_path / "coord-swh", sx)
    c.workdir.mkdir()
    c.start()
    try:
        c.set_manifest(json.dumps(manifest()).encode())
        cli.env.update({k: v for k, v in sx.env().items() if k.startswith("EDG_ATTESTATION_")})
        era(cli.dir / "era.json")
        E = ("--era-config", "era.json")
        p = cli("manifest", "get", addr(c), *E, check=True)  # accepted by default
        assert p.stdout.startswith("TCB level accepted by configuration: SWHardeningNeeded\nTCB Advisories: [")
        # with -o json the trust messages go to stderr and stdout is pure JSON
        p = cli("manifest", "get", addr(c), *E, "-o", "json", check=True)
        assert json.loads(p.stdout)["manifest"]["Marbles"] == {"app": {"Package": "pkg"}}
        assert "TCB level accepted by configuration: SWHardeningNeeded" in p.stderr
        p = cli("manifest", "get", addr(c), *E, "--accepted-tcb-statuses", "UpToDate", check=False)
        assert errline(p) == "invalid TCB status: SWHardeningNeeded"
        adv = p.stdout
        p = cli("manifest", "get", addr(c), *E, "--accepted-advisories", "INTEL-SA-99999", check=None)
        advisories = cli("manifest", "get", addr(c), *E, check=True).stdout.split("TCB Advisories: [")[1].split("]")[0].split()
        if advisories:
            assert "advisories not accepted by configuration" in errline(p)
            p = cli("manifest", "get", addr(c), *E, "--accepted-advisories", ",".join(a.lower() for a in advisories), check=True)
        else:
            assert p.returncode == 0
        assert adv == ""
    finally:
        c.stop()


def test_insecure_warnings(coord, cli):
    (cli.dir / "m.json").write_text(json.dumps(manifest()))
    p = cli("manifest", "set", "m.json", addr(coord), "--insecure", check=True)
    assert p.stdout.startswith("Warning: skipping quote verification\n"
                               "Successfully verified Coordinator, now uploading manifest\n")
    assert "Manifest successfully set" in p.stdout
    p = cli("status", addr(coord), "-i", check=True)
    assert p.stdout == f"3: {STATE3}\n"
    p = cli("manifest", "set", "m.json", addr(coord), "-i", check=False)
    assert errline(p).startswith("setting manifest: POST https://") and "server is not in expected state" in errline(p)


# ---------------------------------------------------------------------------------------------
# the main flow against one Coordinator


def test_full_flow(coord, cli, tmp_path):
    admin, other = User(tmp_path, "admin"), User(tmp_path, "other")
    rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    m = manifest(users=[admin], recovery_key=rk)
    raw = json.dumps(m, indent=1).encode()
    (cli.dir / "m.json").write_bytes(raw)
    era(cli.dir / "era.json")
    E = ("--era-config", "era.json")

    p = cli("status", addr(coord), "-i", check=True)
    assert p.stdout == f"2: {STATE2}\n"
    p = cli("manifest", "set", "m.json", addr(coord), "-r", "rec.json", *E, check=True)
    assert p.stdout == ("Successfully verified Coordinator, now uploading manifest\n"
                        f"Manifest signature: {hashlib.sha256(raw).hexdigest()}\n"
                        "Manifest successfully set\nRecovery data saved to: rec.json\n")
    rec = json.loads((cli.dir / "rec.json").read_text())
    assert list(rec) == ["RecoverySecrets"] and list(rec["RecoverySecrets"]) == ["rk"]
    assert stat.S_IMODE((cli.dir / "rec.json").stat().st_mode) == 0o600
    secret = rk.decrypt(base64.b64decode(rec["RecoverySecrets"]["rk"]),
                        padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    assert len(secret) in (16, 32)
    assert stat.S_IMODE(cli.cache.stat().st_mode) == 0o600

    # cached-certificate commands, with hostname verification against the root
    assert cli("status", addr(coord), check=True).stdout == f"3: {STATE3}\n"
    assert cli("status", addr(coord, "localhost"), check=True).stdout == f"3: {STATE3}\n"
    j = json.loads(cli("status", addr(coord), "-o", "json", check=True).stdout)
    assert j == {"code": 3, "message": STATE3}
    # a cache holding another root: TLS fails
    other_cache = cli.dir / "other.pem"
    other_cache.write_text(CertChain().chain_pem)
    p = cli("status", addr(coord), "--coordinator-cert", other_cache, check=False)
    assert "Get \"https://127.0.0.1" in errline(p)

    # manifest get: the exact bytes; -s wraps; -o json
    p = cli("manifest", "get", addr(coord), *E, check=True)
    assert p.stdout == "Successfully verified Coordinator, now requesting manifest\n" + raw.decode() + "\n"
    p = cli("manifest", "get", addr(coord), *E, "-o", "got.json", check=True)
    assert (cli.dir / "got.json").read_bytes() == raw
    p = cli("manifest", "get", addr(coord), *E, "-s", check=True)
    assert f'{{\n"ManifestSignature": "{hashlib.sha256(raw).hexdigest()}",\n"Manifest": ' in p.stdout
    j = json.loads(cli("manifest", "get", addr(coord), *E, "-o", "json", check=True).stdout)
    assert j["manifest"] == m and j["manifestFingerprint"] == hashlib.sha256(raw).hexdigest()

    # certificates, validated with openssl
    for sub, fn, text in (("chain", "marblerunChainCA.crt", "Certificate chain"),
                          ("root", "marblerunRootCA.crt", "Root certificate"),
                          ("intermediate", "marblerunIntermediateCA.crt", "Intermediate certificate")):
        p = cli("certificate", sub, addr(coord), *E, check=True)
        assert p.stdout == f"{text} written to {fn}\n"
        assert stat.S_IMODE((cli.dir / fn).stat().st_mode) == 0o600
    chain = (cli.dir / "marblerunChainCA.crt").read_text()
    root = (cli.dir / "marblerunRootCA.crt").read_text()
    inter = (cli.dir / "marblerunIntermediateCA.crt").read_text()
    assert chain == inter + root and chain == cli.cache.read_text()
    v = subprocess.run(["openssl", "verify", "-CAfile", cli.dir / "marblerunRootCA.crt",
                        cli.dir / "marblerunIntermediateCA.crt"], capture_output=True, text=True)
    assert v.returncode == 0 and ": OK" in v.stdout, v.stdout + v.stderr
    p = cli("certificate", "root", addr(coord), *E, "-o", "", check=False)
    assert errline(p) == "output flag must not be empty"
    j = json.loads(cli("certificate", "chain", addr(coord), *E, "-o", "json", check=True).stdout)
    assert j["root"] == root and j["intermediate"] == inter

    # secrets: set as the admin (JSON and PEM), get back; another user is refused
    A = ("-c", admin.certfile, "-k", admin.keyfile)
    key = bytes(range(16))
    (cli.dir / "s.json").write_text(json.dumps({"userKey": {"Key": base64.b64encode(key).decode()}}))
    p = cli("secret", "set", "s.json", addr(coord), *A, check=True)
    assert p.stdout == "Secret successfully set\n"
    svc = User(tmp_path, "svc")
    (cli.dir / "svc.pem").write_bytes(svc.certfile.read_bytes() + svc.keyfile.read_bytes())
    p = cli("secret", "set", "svc.pem", addr(coord), *A, "--from-pem", "userCert", check=True)
    p = cli("secret", "get", "userKey", "sharedKey", addr(coord), *A, "-o", "json", check=True)
    got = json.loads(p.stdout)
    assert base64.b64decode(got["userKey"]["Private"]) == key and got["sharedKey"]["Type"] == "symmetric-key"
    p = cli("secret", "get", "userKey", addr(coord), *A, check=True)
    assert p.stdout == ("userKey:\n\tType:         symmetric-key\n\tUserDefined:  true\n\tSize:         128\n"
                        f"\tKey:          [{' '.join(str(b) for b in key)}]\n")
    p = cli("secret", "get", "userCert", addr(coord), *A, check=True)
    assert "\tCertificate:  -----BEGIN CERTIFICATE-----" in p.stdout and "\tPrivate Key:  [" in p.stdout
    # a SEC1 ("EC PRIVATE KEY") client key works as well as PKCS#8
    (cli.dir / "admin-sec1.key").write_bytes(admin.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
    assert b"EC PRIVATE KEY" in (cli.dir / "admin-sec1.key").read_bytes()
    p = cli("secret", "get", "userKey", addr(coord), "-c", admin.certfile, "-k", "admin-sec1.key", "-o", "json", check=True)
    assert base64.b64decode(json.loads(p.stdout)["userKey"]["Private"]) == key
    p = cli("secret", "get", "userKey", addr(coord), *A, "-o", "out.json", check=True)
    assert p.stdout == "Saved secrets to: out.json\n"
    assert base64.b64decode(json.loads((cli.dir / "out.json").read_text())["userKey"]["Private"]) == key
    p = cli("secret", "get", "userKey", addr(coord), "-c", other.certfile, "-k", other.keyfile, check=False)
    assert errline(p).startswith("GET https://127.0.0.1:") and ": authorizing user: " in errline(p)
    p = cli("secret", "get", "userKey", addr(coord), check=False)
    assert "at least one of the flags in the group [cert pkcs11-config] is required" == errline(p)
    p = cli("secret", "get", "userKey", addr(coord), "-c", admin.certfile, "-k", other.keyfile, check=False)
    assert "private key does not match public key" in errline(p)
    p = cli("secret", "get", "userKey", addr(coord), "--pkcs11-config", "x.json", check=False)
    assert "PKCS #11 is not supported" in errline(p)

    # update log and package update
    p = cli("manifest", "log", addr(coord), check=True)
    assert p.stdout.startswith("Successfully verified Coordinator, now requesting update log\nUpdate log:\n{")
    assert "Initial manifest set" in p.stdout
    (cli.dir / "upd.json").write_text(json.dumps({"Packages": {"pkg": {"SecurityVersion": 4}}}))
    p = cli("manifest", "update", "apply", "upd.json", addr(coord), *A, check=True)
    assert p.stdout == "Update manifest set successfully\n"
    p = cli("manifest", "log", addr(coord), "-o", "json", check=True)
    entries = [json.loads(l) for l in json.loads(p.stdout)["updateLog"]]
    assert entries[-1]["package"] == "pkg" and entries[-1]["new version"] == 4
    p = cli("manifest", "get", addr(coord), *E, "-u", check=True)
    shown = json.loads(p.stdout.split("\n", 1)[1])
    assert shown["Packages"]["pkg"]["SecurityVersion"] == 4
    p = cli("manifest", "log", addr(coord), "-o", "log.txt", check=True)
    assert "SecurityVersion increased" in (cli.dir / "log.txt").read_text()


def test_multi_party_update(coord, cli, tmp_path):
    alice, bob = User(tmp_path, "alice"), User(tmp_path, "bob")
    m = manifest(users=[alice, bob])
    coord.set_manifest(json.dumps(m).encode())
    (cli.dir / "m.json").write_text(json.dumps(m))
    era(cli.dir / "era.json")
    cli("manifest", "verify", "m.json", addr(coord), "--era-config", "era.json", check=True)
    m2 = json.loads(json.dumps(m))
    m2["Marbles"]["other"] = {"Package": "pkg"}
    rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    m2["RecoveryKeys"] = manifest(recovery_key=rk)["RecoveryKeys"]
    (cli.dir / "m2.json").write_text(json.dumps(m2))
    A = ("-c", alice.certfile, "-k", alice.keyfile)
    B = ("-c", bob.certfile, "-k", bob.keyfile)
    p = cli("manifest", "update", "get", addr(coord), check=False)
    assert "no update in progress" in errline(p)
    p = cli("manifest", "update", "apply", "m2.json", addr(coord), *A, check=True)
    assert p.stdout == ("Update manifest submitted successfully.\nChanges are pending and have not been applied yet.\n"
                        "1 user still needs to acknowledge the update manifest.\n\n"
                        "The following users may acknowledge the update: bob\n")
    p = cli("manifest", "update", "get", addr(coord), check=True)
    assert json.loads(p.stdout) == m2
    p = cli("manifest", "update", "get", addr(coord), "--missing", check=True)
    assert p.stdout == "The following users have not yet acknowledged the update: [bob]\n"
    j = json.loads(cli("manifest", "update", "get", addr(coord), "-o", "json", check=True).stdout)
    assert j["manifest"] == m2 and j["missingUsers"] == ["bob"]
    # cancel, then apply again and acknowledge
    p = cli("manifest", "update", "cancel", addr(coord), *B, check=True)
    assert p.stdout == "Cancellation successful\n"
    p = cli("manifest", "update", "get", addr(coord), "-o", "pending.json", check=False)
    assert "no update in progress" in errline(p) and not (cli.dir / "pending.json").exists()
    cli("manifest", "update", "apply", "m2.json", addr(coord), *A, check=True)
    p = cli("manifest", "update", "acknowledge", "m.json", addr(coord), *B, check=False)
    assert "acknowledging update manifest" in errline(p)
    p = cli("manifest", "update", "acknowledge", "m2.json", addr(coord), *B, "-r", "rec2.json", check=True)
    assert p.stdout.startswith("Acknowledgement successful: ")
    assert "Update successful" in p.stdout
    # the update added a recovery key: new recovery data is saved like `manifest set` does
    assert p.stdout.endswith("Recovery data saved to: rec2.json\n")
    rec = json.loads((cli.dir / "rec2.json").read_text())
    secret = rk.decrypt(base64.b64decode(rec["RecoverySecrets"]["rk"]),
                        padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    assert len(secret) == 32
    p = cli("manifest", "update", "cancel", addr(coord), check=False)
    assert "required" in errline(p)


# ---------------------------------------------------------------------------------------------
# package-info


def sigstruct(mrenclave, isvprodid, isvsvn, modulus):
    s = bytearray(1808)
    s[0:16] = bytes.fromhex("06000000E10000000000010000000000")
    s[24:40] = bytes.fromhex("01010000600000006000000001000000")
    s[128:512] = modulus
    s[960:992] = mrenclave
    s[1024:1026] = isvprodid.to_bytes(2, "little")
    s[1026:1028] = isvsvn.to_bytes(2, "little")
    return bytes(s)


def test_package_info(cli):
    mod = bytes((i * 7) & 0xFF for i in range(384))
    mre = bytes(range(32))
    sig = sigstruct(mre, 7, 513, mod)
    (cli.dir / "app.manifest.sgx.sig").write_bytes(sig)
    p = cli("package-info", "app.manifest.sgx.sig", check=True)
    want = (f"UniqueID (MRENCLAVE)      : {mre.hex()}\n"
            f"SignerID (MRSIGNER)       : {hashlib.sha256(mod).hexdigest()}\n"
            "ProductID (ISVPRODID)     : 7\nSecurityVersion (ISVSVN)  : 513\n")
    assert p.stdout == ("Detected Gramine instance.\n"
                        "PackageProperties for Gramine instance at 'app.manifest.sgx.sig':\n" + want)
    d = cli.dir / "gramine"
    d.mkdir()
    (d / "x.sig").write_bytes(b"junk" + sig)
    p = cli("package-info", "gramine", check=True)
    assert want in p.stdout
    (cli.dir / "bad.sig").write_bytes(sig[:1000])
    p = cli("package-info", "bad.sig", check=False)
    assert errline(p) == "unable to determine enclave properties"
    assert "ERROR: Failed to automatically determine SGX package signature properties." in p.stderr
    assert "Error - Gramine: SIGSTRUCT is too short" in p.stderr and p.stdout == ""
    p = cli("package-info", check=False)
    assert "Usage:" in p.stdout
    # SGX SDK / Occlum: the SIGSTRUCT in ELF section .note.sgxmeta
    (cli.dir / "enclave.signed.so").write_bytes(elf_with_section(".note.sgxmeta", b"\0" * 12 + sig))
    p = cli("package-info", "enclave.signed.so", check=True)
    assert p.stdout == "PackageProperties for 'enclave.signed.so':\n" + want
    occ = cli.dir / "occlum" / "build" / "lib"
    occ.mkdir(parents=True)
    (occ / "libocclum-libos.signed.so").write_bytes(elf_with_section(".note.sgxmeta", sig))
    p = cli("package-info", "occlum", check=True)
    assert p.stdout == "Detected Occlum image.\nPackageProperties for Occlum image at 'occlum':\n" + want
    # Open Enclave / EGo: section .oeinfo
    (cli.dir / "oe.signed").write_bytes(elf_with_section(".oeinfo", b"\1" * 100 + sig))
    p = cli("package-info", "oe.signed", check=True)
    assert p.stdout == "PackageProperties for 'oe.signed':\n" + want


def elf_with_section(name, content):
    """A minimal ELF64 LE image: null section, .shstrtab, and one named section."""
    import struct
    shstr = b"\0.shstrtab\0" + name.encode() + b"\0"
    body = shstr + content
    shoff = 64 + len(body)
    hdr = bytearray(64)
    hdr[0:7] = b"\x7fELF\x02\x01\x01"
    struct.pack_into("<Q", hdr, 0x28, shoff)
    struct.pack_into("<HHH", hdr, 0x3a, 64, 3, 1)

    def sh(nm, off, size):
        b = bytearray(64)
        struct.pack_into("<I", b, 0, nm)
        struct.pack_into("<QQ", b, 24, off, size)
        return bytes(b)
    return bytes(hdr) + body + sh(0, 0, 0) + sh(1, 64, len(shstr)) + sh(11, 64 + len(shstr), len(content))


# ---------------------------------------------------------------------------------------------
# python HTTPS stubs: legacy (v1-only) Coordinator and recovery endpoints


class CertChain:
    def __init__(self, names=("localhost",)):
        now = datetime.datetime.now(datetime.timezone.utc)
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        rn = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "MarbleRun Coordinator")])
        self.root = (x509.CertificateBuilder().subject_name(rn).issuer_name(rn)
                     .public_key(self.root_key.public_key()).serial_number(1)
                     .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names] +
                                                                [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), critical=False)
                     .sign(self.root_key, hashes.SHA256()))
        ik = ec.generate_private_key(ec.SECP256R1())
        self.inter = (x509.CertificateBuilder().subject_name(rn).issuer_name(rn)
                      .public_key(ik.public_key()).serial_number(2)
                      .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
                      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                      .sign(self.root_key, hashes.SHA256()))
        pem = lambda c: c.public_bytes(serialization.Encoding.PEM).decode()
        self.chain_pem = pem(self.inter) + pem(self.root)


class Stub:
    """An HTTPS server answering from a dict {(method, path): (status, json)}; records requests."""

    def __init__(self, tmp_path, routes):
        self.chain = CertChain()
        self.routes = routes
        self.requests = []
        stub = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def handle_one(self, method):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stub.requests.append((method, self.path, body))
                r = stub.routes.get((method, self.path.split("?")[0]))
                if callable(r):
                    r = r(self.path, body)
                status, doc = r if r is not None else (405, {"status": "error", "data": None})
                out = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def do_GET(self):
                self.handle_one("GET")

            def do_POST(self):
                self.handle_one("POST")

        key = tmp_path / "stub.key"
        crt = tmp_path / "stub.crt"
        key.write_bytes(self.chain.root_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
        crt.write_bytes(self.chain.root.public_bytes(serialization.Encoding.PEM))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def ok(data):
    return (200, {"status": "success", "data": data})


def test_v1_fallback_on_405(tmp_path, cli):
    raw = json.dumps(manifest()).encode()
    stub = Stub(tmp_path, {})
    stub.routes.update({
        ("GET", "/status"): ok({"StatusCode": 3, "StatusMessage": STATE3}),
        ("GET", "/quote"): ok({"Cert": stub.chain.chain_pem, "Quote": None}),
        ("GET", "/manifest"): ok({"ManifestSignatureRootECDSA": None, "ManifestSignature": hashlib.sha256(raw).hexdigest(),
                                  "Manifest": base64.b64encode(raw).decode()}),
        ("POST", "/manifest"): ok(None),
        ("GET", "/update"): ok('{"update":"Initial manifest set"}\n'),
        ("POST", "/secrets"): ok(None),
        ("GET", "/secrets"): ok({"k": {"Type": "plain", "Private": base64.b64encode(b"\x01\x02").decode()}}),
    })
    try:
        a = f"127.0.0.1:{stub.port}"
        p = cli("status", a, "-i", check=True)
        assert p.stdout == f"3: {STATE3}\n"
        assert [r[1] for r in stub.requests] == ["/api/v2/status", "/status"]
        (cli.dir / "m.json").write_bytes(raw)
        p = cli("manifest", "set", "m.json", a, "-i", check=True)
        assert stub.requests[-1] == ("POST", "/manifest", raw)
        assert cli.cache.read_text() == stub.chain.chain_pem
        # cached mode: the stub's root is the anchor; 127.0.0.1 is in its SANs
        assert cli("status", a, check=True).stdout == f"3: {STATE3}\n"
        p = cli("manifest", "get", a, "-i", check=True)
        assert raw.decode() in p.stdout
        p = cli("manifest", "log", a, check=True)
        assert p.stdout.endswith('Update log:\n{"update":"Initial manifest set"}\n')
        u = User(tmp_path, "u")
        p = cli("secret", "get", "k", a, "-c", u.certfile, "-k", u.keyfile, check=True)
        assert p.stdout == "k:\n\tType:         plain\n\tData:         [1 2]\n"
        assert stub.requests[-1][1] == "/secrets?s=k"
        (cli.dir / "s.json").write_text('{"k":{"Key":"AAE="}}')
        cli("secret", "set", "s.json", a, "-c", u.certfile, "-k", u.keyfile, check=True)
        assert stub.requests[-1] == ("POST", "/secrets", b'{"k":{"Key":"AAE="}}')
        p = cli("manifest", "verify", "m.json", a, "-i", "--nonce", "x", check=False)
        assert errline(p) == "using custom nonce requires /api/v2, but the Coordinator does not support /api/v2"
    finally:
        stub.close()


def test_jsend_errors(tmp_path, cli):
    stub = Stub(tmp_path, {
        ("GET", "/api/v2/status"): (500, {"status": "error", "data": None, "message": "boom"}),
        ("GET", "/api/v2/secrets"): (401, {"status": "fail", "data": None, "message": "client certificate did not match"}),
    })
    try:
        a = f"127.0.0.1:{stub.port}"
        p = cli("status", a, "-i", check=False)
        assert errline(p) == f"GET https://{a}/api/v2/status: 500 Internal Server Error: error: boom"
        u = User(tmp_path, "u")
        p = cli("secret", "get", "x", a, "-i", "-c", u.certfile, "-k", u.keyfile, check=False)
        assert errline(p) == f"GET https://{a}/api/v2/secrets?s=x: authorizing user: client certificate did not match"
        p = cli("status", "127.0.0.1:1", "-i", check=False)
        assert errline(p).startswith('Get "https://127.0.0.1:1/api/v2/status": ')
    finally:
        stub.close()


def test_update_recovery_data_against_stub(tmp_path, cli):
    """New recovery secrets from update apply/acknowledge (1.9) are saved like `manifest set`;
    if saving fails they are printed (a stub makes the failure paths reachable)."""
    rs = {"rk": base64.b64encode(b"x" * 256).decode()}
    stub = Stub(tmp_path, {
        ("POST", "/api/v2/update"): ok({"missingAcknowledgments": 0, "missingUsers": None, "recoverySecrets": rs}),
        ("POST", "/api/v2/update-manifest"): ok({"message": "All users have acknowledged the update manifest. "
                                                            "Update successfully applied", "missingUsers": None,
                                                 "missingAcknowledgments": 0, "recoverySecrets": rs}),
        ("POST", "/api/v2/update-cancel"): ok({"message": "Update successfully cancelled"}),
    })
    try:
        a = f"127.0.0.1:{stub.port}"
        u = User(tmp_path, "u")
        U = ("-i", "-c", u.certfile, "-k", u.keyfile)
        (cli.dir / "m.json").write_text("{}")
        p = cli("manifest", "update", "apply", "m.json", a, *U, "-r", "r1.json", check=True)
        assert p.stdout == "Update manifest set successfully\nRecovery data saved to: r1.json\n"
        assert json.loads((cli.dir / "r1.json").read_text()) == {"RecoverySecrets": rs}
        assert json.loads(stub.requests[-1][2]) == {"manifest": base64.b64encode(b"{}").decode()}
        p = cli("manifest", "update", "acknowledge", "m.json", a, *U, "-r", "nodir/r2.json", check=True)
        assert p.stdout == ("Acknowledgement successful: All users have acknowledged the update manifest. "
                            f"Update successfully applied\nrk: {rs['rk']}\n")
        assert "Failed to save recovery data" in p.stderr
        p = cli("manifest", "update", "acknowledge", "m.json", a, *U, check=True)
        assert p.stdout.endswith('{"RecoverySecrets":{"rk":"' + rs["rk"] + '"}}\n')
    finally:
        stub.close()


def recovery_stub(tmp_path, rk, ephemeral=None):
    """A Coordinator in recovery mode: checks the signature like §12.8 and counts down."""
    state = {"remaining": 2}

    def recover(path, body):
        req = json.loads(body)
        secret = base64.b64decode(req["recoverySecret"])
        if ephemeral is not None and len(secret) not in (16, 32, 33):
            secret = ephemeral.decrypt(secret, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                                            algorithm=hashes.SHA256(), label=None))
        try:
            rk.public_key().verify(base64.b64decode(req["recoverySecretSignature"]), secret,
                                   padding.PKCS1v15(), hashes.SHA256())
        except Exception:
            return (500, {"status": "error", "data": None, "message": "signature verification failed"})
        if secret != b"S" * 32:
            return (400, {"status": "fail", "data": None, "message": "uploaded an invalid or already used secret"})
        state["remaining"] -= 1
        msg = "Recovery successful." if state["remaining"] == 0 else "Secret was processed successfully. Upload the next secret. Remaining secrets: 1"
        return ok({"remaining": state["remaining"], "message": msg})

    stub = Stub(tmp_path, {("POST", "/api/v2/recover"): recover})
    stub.routes[("GET", "/api/v2/quote")] = ok({"cert": stub.chain.chain_pem, "quote": None})
    if ephemeral is not None:
        der = ephemeral.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        stub.routes[("GET", "/api/v2/recover/public-key")] = ok({"algorithm": "RSA", "ephemeralPublicKey": base64.b64encode(der).decode()})
    return stub


def test_recover_against_stub(tmp_path, cli):
    """/api/v2/recover is not served by our Coordinator yet: a stub with the spec's shapes."""
    rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (cli.dir / "rk.pem").write_bytes(rk.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                                      serialization.NoEncryption()))  # PKCS#1
    (cli.dir / "rk8.pem").write_bytes(rk.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    enc = rk.public_key().encrypt(b"S" * 32, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    (cli.dir / "secret.enc").write_bytes(enc)
    (cli.dir / "secret.raw").write_bytes(b"S" * 32)
    stub = recovery_stub(tmp_path, rk)
    try:
        a = f"127.0.0.1:{stub.port}"
        p = cli("recover", "secret.enc", a, "-i", check=False)
        assert "at least one of the flags in the group [key pkcs11-key-id pkcs11-key-label] is required" == errline(p)
        p = cli("recover", "secret.enc", a, "-i", "-k", "rk.pem", check=True)
        assert p.stdout == ("Warning: skipping quote verification\n"
                            "Secret was processed successfully. Upload the next secret. Remaining secrets: 1\n")
        req = json.loads(stub.requests[-1][2])
        assert base64.b64decode(req["recoverySecret"]) == b"S" * 32
        p = cli("recover", "secret.raw", a, "-i", "-k", "rk8.pem", check=True)
        assert p.stdout.endswith("Recovery successful.\n")
        # a wrong key cannot decrypt
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (cli.dir / "other.pem").write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                                serialization.NoEncryption()))
        p = cli("recover", "secret.enc", a, "-i", "-k", "other.pem", check=False)
        assert errline(p).startswith("decrypting recovery secret")
        # attestation is required without -i: no era config here
        p = cli("recover", "secret.enc", a, "-k", "rk.pem", check=False)
        assert "no era config" in errline(p)
    finally:
        stub.close()


def test_recover_with_signature_against_stub(tmp_path, cli):
    rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    eph = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (cli.dir / "rk.pem").write_bytes(rk.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    enc = rk.public_key().encrypt(b"S" * 32, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    (cli.dir / "secret.enc").write_bytes(enc)
    stub = recovery_stub(tmp_path, rk, ephemeral=eph)
    try:
        a = f"127.0.0.1:{stub.port}"
        p = cli("recover-with-signature", "public-key", a, "-i", "-o", "coord.pem", check=True)
        pub = serialization.load_pem_public_key((cli.dir / "coord.pem").read_bytes())
        assert pub.public_numbers() == eph.public_key().public_numbers()
        p = cli("recover-with-signature", "public-key", a, "-i", "-o", "coord.pem", check=False)
        assert "File exists" in errline(p)
        p = cli("recover-with-signature", "sign-secret", "secret.enc", "-k", "rk.pem", "-o", "secret.sig", check=True)
        rk.public_key().verify((cli.dir / "secret.sig").read_bytes(), b"S" * 32, padding.PKCS1v15(), hashes.SHA256())
        p = cli("recover-with-signature", "encrypt-secret", "secret.enc", "-k", "rk.pem",
                "--coordinator-pub-key", "coord.pem", "-o", "secret.eph", check=True)
        assert eph.decrypt((cli.dir / "secret.eph").read_bytes(),
                           padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)) == b"S" * 32
        p = cli("recover-with-signature", "encrypt-secret", "secret.enc", "-o", "x", check=False)
        assert errline(p) == 'required flag(s) "coordinator-pub-key" not set'
        p = cli("recover-with-signature", "secret.eph", a, "-i", check=False)
        assert errline(p) == 'required flag(s) "signature" not set'
        p = cli("recover-with-signature", "secret.eph", a, "-i", "-s", "secret.sig", check=True)
        assert "Remaining secrets: 1" in p.stdout
        req = json.loads(stub.requests[-1][2])
        assert base64.b64decode(req["recoverySecret"]) == (cli.dir / "secret.eph").read_bytes()
    finally:
        stub.close()


def test_recover_real_coordinator(coord, cli, tmp_path):
    """Recovery against the real Coordinator (state key lost -> recovery mode -> recover)."""
    rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (cli.dir / "rk.pem").write_bytes(rk.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    (cli.dir / "m.json").write_text(json.dumps(manifest(recovery_key=rk)))
    era(cli.dir / "era.json")
    E = ("--era-config", "era.json")
    cli("manifest", "set", "m.json", addr(coord), *E, "-r", "rec.json", check=True)
    enc = base64.b64decode(json.loads((cli.dir / "rec.json").read_text())["RecoverySecrets"]["rk"])
    (cli.dir / "secret.enc").write_bytes(enc)
    coord.stop()
    (coord.seal_dir / "kek").write_bytes(b"\x01" * 32)  # the state can no longer be unsealed
    coord.start()
    assert cli("status", addr(coord), "-i", check=True).stdout.startswith("1: Coordinator is in recovery mode")
    p = cli("recover", "secret.enc", addr(coord), *E, "-k", "rk.pem", check=True)
    assert p.stdout.endswith("Recovery successful.\n")
    assert cli("status", addr(coord), "-i", check=True).stdout == f"3: {STATE3}\n"
    # the state (and root certificate) is back: the old cache verifies TLS again
    assert cli("status", addr(coord), check=True).stdout == f"3: {STATE3}\n"
    # again, now with the ephemeral-key flow of recover-with-signature
    coord.stop()
    (coord.seal_dir / "kek").write_bytes(b"\x02" * 32)
    coord.start()
    assert cli("status", addr(coord), "-i", check=True).stdout.startswith("1: ")
    cli("recover-with-signature", "public-key", addr(coord), *E, "-o", "coord.pem", check=True)
    assert b"BEGIN PUBLIC KEY" in (cli.dir / "coord.pem").read_bytes()
    cli("recover-with-signature", "sign-secret", "secret.enc", "-k", "rk.pem", "-o", "secret.sig", check=True)
    cli("recover-with-signature", "encrypt-secret", "secret.enc", "-k", "rk.pem", "--coordinator-pub-key",
        "coord.pem", "-o", "secret.eph", check=True)
    p = cli("recover-with-signature", "secret.eph", addr(coord), *E, "-s", "secret.sig", check=True)
    assert p.stdout.endswith("Recovery successful.\n")
    assert cli("status", addr(coord), check=True).stdout == f"3: {STATE3}\n"
