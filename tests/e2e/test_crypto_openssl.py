"""The crypto module's certificates, CSRs and keys, checked by the openssl command line tool.

mr-x509-sample (tests/unit/crypto/x509_sample.c) issues a Coordinator-shaped PKI (root CA,
intermediate CA, marble root, Marble leaf) and a CSR; openssl must accept them and show the
extensions asked for. Keys made by `openssl genpkey` must load in the module.
"""
import re
import shutil
import subprocess

import pytest


def run(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def sample(build_dir):
    exe = build_dir / "tests" / "mr-x509-sample"
    if not exe.exists():
        pytest.skip(f"{exe} not built")
    return exe


@pytest.fixture(scope="module")
def pki_dir(sample, tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    run(str(sample), "issue", str(d))
    return d


def x509_text(path):
    return run("openssl", "x509", "-noout", "-text", "-in", str(path)).stdout


def ext_block(text, name):
    """The lines of one extension in `openssl x509 -text` output: header and value."""
    m = re.search(r"\n\s*(X509v3 " + re.escape(name) + r":[^\n]*)\n\s*([^\n]*)", text)
    assert m, f"extension {name} missing in:\n{text}"
    return m.group(1), m.group(2)


def key_id(text, name):
    return ext_block(text, name)[1].strip().replace("keyid:", "")


def test_openssl_verifies_chain(pki_dir):
    out = run("openssl", "verify", "-CAfile", str(pki_dir / "root.pem"),
              "-untrusted", str(pki_dir / "inter.pem"), str(pki_dir / "leaf.pem"))
    assert out.stdout.strip().endswith(": OK")
    # the marble root alone is an anchor for the leaf (cross-signed sibling of inter)
    run("openssl", "verify", "-CAfile", str(pki_dir / "marble_root.pem"), str(pki_dir / "leaf.pem"))
    # TLS purposes, as clients and servers check them
    for purpose in ("sslserver", "sslclient"):
        run("openssl", "verify", "-purpose", purpose, "-CAfile", str(pki_dir / "root.pem"),
            "-untrusted", str(pki_dir / "inter.pem"), str(pki_dir / "leaf.pem"))


def test_openssl_rejects_wrong_anchor(pki_dir):
    res = subprocess.run(["openssl", "verify", "-CAfile", str(pki_dir / "inter.pem"),
                          str(pki_dir / "root.pem")], capture_output=True, text=True)
    assert res.returncode != 0


def test_ca_extensions(pki_dir):
    root = x509_text(pki_dir / "root.pem")
    assert "Subject: CN = MarbleRun Coordinator" in root
    head, val = ext_block(root, "Key Usage")
    assert "critical" in head and val.strip() == "Digital Signature, Certificate Sign"
    head, val = ext_block(root, "Extended Key Usage")
    assert "critical" not in head
    assert val.strip() == "TLS Web Server Authentication, TLS Web Client Authentication"
    head, val = ext_block(root, "Basic Constraints")
    assert "critical" in head and val.strip() == "CA:TRUE"
    head, val = ext_block(root, "Subject Alternative Name")
    assert "DNS:localhost" in val and "IP Address:127.0.0.1" in val and "IP Address:0:0:0:0:0:0:0:1" in val
    assert "Authority Key Identifier" not in root
    assert "ecdsa-with-SHA256" in root
    # ~292 years of validity: GeneralizedTime far in the future
    assert re.search(r"Not After : .* 23\d\d GMT", root)


def test_ski_aki_relation(pki_dir):
    root = x509_text(pki_dir / "root.pem")
    inter = x509_text(pki_dir / "inter.pem")
    mroot = x509_text(pki_dir / "marble_root.pem")
    leaf = x509_text(pki_dir / "leaf.pem")
    root_ski = key_id(root, "Subject Key Identifier")
    inter_ski = key_id(inter, "Subject Key Identifier")
    assert len(root_ski.split(":")) == 20
    assert key_id(inter, "Authority Key Identifier") == root_ski
    assert key_id(mroot, "Subject Key Identifier") == inter_ski
    assert "Authority Key Identifier" not in mroot
    assert key_id(leaf, "Authority Key Identifier") == inter_ski
    assert "Subject Key Identifier" not in leaf
    assert "Subject: CN = MarbleRun Coordinator - Intermediate CA" in inter


def test_leaf_extensions(pki_dir):
    leaf = x509_text(pki_dir / "leaf.pem")
    assert re.search(r"Subject: CN = [0-9a-f-]{36}\n", leaf)
    assert "Issuer: CN = MarbleRun Coordinator - Intermediate CA" in leaf
    head, val = ext_block(leaf, "Key Usage")
    assert "critical" in head and val.strip() == "Digital Signature, Key Agreement"
    head, val = ext_block(leaf, "Basic Constraints")
    assert "critical" in head and val.strip() == "CA:FALSE"
    _, val = ext_block(leaf, "Subject Alternative Name")
    assert "IP Address:127.0.0.1" in val and "IP Address:0:0:0:0:0:0:0:1" in val
    # the Marble type extension: non-critical, raw UTF-8 bytes in the OCTET STRING
    m = re.search(r"\n\s*1\.3\.9903\.2\.1:[ ]*(critical)?[ ]*\n\s*(\S+)", leaf)
    assert m and m.group(1) is None and m.group(2) == "backend"
    der = subprocess.run(["openssl", "x509", "-in", str(pki_dir / "leaf.pem"), "-outform", "DER"],
                         check=True, capture_output=True).stdout
    # OID 1.3.9903.2.1 = 06 05 2b cd 2f 02 01, then OCTET STRING "backend"
    assert bytes.fromhex("06052bcd2f02010407") + b"backend" in der


def test_ip_sans_are_4_and_16_bytes(pki_dir):
    der = subprocess.run(["openssl", "x509", "-in", str(pki_dir / "root.pem"), "-outform", "DER"],
                         check=True, capture_output=True).stdout
    assert bytes.fromhex("87047f000001") in der                      # [7] 4 bytes 127.0.0.1
    assert bytes.fromhex("8710") + bytes(15) + b"\x01" in der          # [7] 16 bytes ::1


def test_csr_verifies(pki_dir):
    res = run("openssl", "req", "-in", str(pki_dir / "csr.pem"), "-noout", "-verify", "-text")
    assert "verify OK" in (res.stdout + res.stderr)
    assert re.search(r"Subject: O = Edgeless, CN = marble-csr", res.stdout)
    assert "DNS:marble.example" in res.stdout and "IP Address:127.0.0.1" in res.stdout


def test_leaf_key_matches_cert(pki_dir):
    cert_pub = run("openssl", "x509", "-in", str(pki_dir / "leaf.pem"), "-noout", "-pubkey").stdout
    key_pub = run("openssl", "pkey", "-in", str(pki_dir / "leaf.key"), "-pubout").stdout
    assert cert_pub == key_pub


GENPKEY = [
    ("P-256", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "sec1", "EC"),
    ("P-384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], "sec1", "EC"),
    ("P-521", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"], "sec1", "EC"),
    ("RSA", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], "pkcs1", "RSA"),
    ("Ed25519", ["-algorithm", "ED25519"], None, None),
]


@pytest.mark.parametrize("name,opts,trad,pkey_type", GENPKEY, ids=[g[0] for g in GENPKEY])
def test_openssl_keys_load(sample, tmp_path, name, opts, trad, pkey_type):
    p8 = tmp_path / "key.pem"
    run("openssl", "genpkey", *opts, "-out", str(p8))
    assert run(str(sample), "load-key", str(p8)).stdout.strip() == name
    p8der = tmp_path / "key.p8.der"
    run("openssl", "pkcs8", "-topk8", "-nocrypt", "-in", str(p8), "-outform", "DER", "-out", str(p8der))
    assert run(str(sample), "load-key", str(p8der), "pkcs8").stdout.strip() == name
    if trad is None:
        return
    # traditional forms: SEC1 ("EC PRIVATE KEY") and PKCS#1 ("RSA PRIVATE KEY")
    tpem = tmp_path / "key.trad.pem"
    tder = tmp_path / "key.trad.der"
    cmd = "ec" if pkey_type == "EC" else "rsa"
    run("openssl", cmd, "-in", str(p8), "-out", str(tpem), *(["-traditional"] if cmd == "rsa" else []))
    assert f"BEGIN {pkey_type} PRIVATE KEY" in tpem.read_text()
    assert run(str(sample), "load-key", str(tpem)).stdout.strip() == name
    run("openssl", cmd, "-in", str(p8), "-outform", "DER", "-out", str(tder),
        *(["-traditional"] if cmd == "rsa" else []))
    assert run(str(sample), "load-key", str(tder), trad).stdout.strip() == name


def test_small_rsa_key_rejected(sample, tmp_path):
    key = tmp_path / "rsa1024.pem"
    run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", str(key))
    res = subprocess.run([str(sample), "load-key", str(key)], capture_output=True, text=True)
    assert res.returncode != 0
    assert "RSA key too small: 1024 bits" in res.stderr
