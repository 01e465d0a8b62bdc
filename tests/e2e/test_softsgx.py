"""End-to-end tests of marblerun-softsgx: the TEST PKI it writes, the collateral, and the quotes.

Everything is checked with third-party tools (the openssl CLI and python `cryptography`), not
with our own parser, so a layout or signature mistake in softsgx cannot hide behind a matching
mistake in our verifier.
"""
import hashlib
import json
import os
import stat
import struct
import subprocess

import pytest

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
except ImportError:  # pragma: no cover - Debian ships python3-cryptography
    x509 = None

SGX_EXT_OID = "1.2.840.113741.1.13.1"
INTEL_VENDOR_ID = bytes.fromhex("939A7233F79C4CA9940A0DB3957F0607")
STATUSES = [
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "Revoked",
]


def tool(bin_dir):
    path = bin_dir / "marblerun-softsgx"
    if not path.exists():
        pytest.skip(f"{path} not built")
    return str(path)


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, check=False, **kw)


@pytest.fixture(scope="module")
def softsgx(bin_dir):
    return tool(bin_dir)


@pytest.fixture()
def sdir(softsgx, tmp_path):
    d = tmp_path / "softsgx"
    r = run(softsgx, "init", d, "--tcb-status", "SWHardeningNeeded", "--valid-days", "3")
    assert r.returncode == 0, r.stderr
    return d


def load_certs(pem):
    """All certificates of a PEM bundle (older `cryptography` lacks load_pem_x509_certificates)."""
    marker = b"-----END CERTIFICATE-----"
    return [x509.load_pem_x509_certificate(part + marker + b"\n")
            for part in pem.split(marker) if b"-----BEGIN CERTIFICATE-----" in part]


def need_crypto():
    if x509 is None:
        pytest.skip("python3-cryptography missing")


def raw_sig_ok(pub, sig, msg):
    r = int.from_bytes(sig[:32], "big")
    s = int.from_bytes(sig[32:], "big")
    try:
        pub.verify(encode_dss_signature(r, s), msg, ec.ECDSA(hashes.SHA256()))
        return True
    except Exception:  # noqa: BLE001 - any failure means "does not verify"
        return False


def parse_quote(q):
    """Splits a raw v3 quote by the offsets of spec/attestation.md §1."""
    f = {}
    f["version"], f["att_key_type"], f["reserved"], f["qe_svn"], f["pce_svn"] = struct.unpack_from(
        "<HHIHH", q, 0
    )
    f["vendor"] = q[12:28]
    f["user_data"] = q[28:48]
    f["body"] = q[48:432]
    f["flags"], f["xfrm"] = struct.unpack_from("<QQ", q, 96)
    f["mrenclave"] = q[112:144]
    f["mrsigner"] = q[176:208]
    f["isvprodid"], f["isvsvn"] = struct.unpack_from("<HH", q, 304)
    f["report_data"] = q[368:432]
    (f["sig_len"],) = struct.unpack_from("<I", q, 432)
    f["sig"] = q[436:500]
    f["att_pub"] = q[500:564]
    f["qe_report"] = q[564:948]
    f["qe_sig"] = q[948:1012]
    (n,) = struct.unpack_from("<H", q, 1012)
    f["qe_auth"] = q[1014 : 1014 + n]
    f["cert_type"], f["cert_len"] = struct.unpack_from("<HI", q, 1014 + n)
    f["cert_data"] = q[1020 + n : 1020 + n + f["cert_len"]]
    f["end"] = 1020 + n + f["cert_len"]
    return f


# ---- init -------------------------------------------------------------------------------


def test_help_warns(softsgx):
    r = run(softsgx, "--help")
    assert r.returncode == 0
    out = r.stdout.decode()
    assert "TEST" in out and "never trust" in out.lower() or "NOTHING" in out
    assert "EDG_ATTESTATION_ROOT_CA" in out


def test_bad_usage(softsgx, tmp_path):
    assert run(softsgx).returncode == 2
    assert run(softsgx, "frobnicate", tmp_path).returncode == 2
    r = run(softsgx, "init", tmp_path / "x", "--tcb-status", "Great")
    assert r.returncode == 2 and b"unknown TCB status" in r.stderr
    assert run(softsgx, "quote", tmp_path / "x").returncode == 2  # no --report-data
    r = run(softsgx, "quote", tmp_path / "missing", "--report-data", "00")
    assert r.returncode != 0 and b"missing" in r.stderr


def test_init_files_and_modes(sdir):
    for name in ["root-ca.pem", "pck-ca.pem", "pck.pem", "tcb-signing.pem", "collateral.json"]:
        assert (sdir / name).is_file(), name
    priv = sdir / "private"
    assert stat.S_IMODE(priv.stat().st_mode) == 0o700
    names = sorted(p.name for p in priv.iterdir())
    assert names == [
        "attestation-key.pem",
        "pck-ca-key.pem",
        "pck-key.pem",
        "root-ca-key.pem",
        "softsgx.json",
        "tcb-signing-key.pem",
    ]
    for p in priv.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


def test_chain_verifies_with_openssl(sdir):
    r = run("openssl", "verify", "-CAfile", "root-ca.pem", "-untrusted", "pck-ca.pem", "pck.pem", cwd=sdir)
    assert r.returncode == 0, r.stderr + r.stdout
    r = run("openssl", "verify", "-CAfile", "root-ca.pem", "tcb-signing.pem", cwd=sdir)
    assert r.returncode == 0, r.stderr + r.stdout
    # the PCK CRL from the collateral is accepted by openssl too
    coll = json.loads((sdir / "collateral.json").read_text())
    (sdir / "pck.crl").write_bytes(bytes.fromhex(coll["pck_crl"]))
    (sdir / "root.crl").write_bytes(bytes.fromhex(coll["root_ca_crl"]))
    r = run("openssl", "crl", "-inform", "DER", "-in", "pck.crl", "-out", "pck-crl.pem", cwd=sdir)
    assert r.returncode == 0
    r = run("openssl", "crl", "-inform", "DER", "-in", "root.crl", "-out", "root-crl.pem", cwd=sdir)
    assert r.returncode == 0
    (sdir / "crls.pem").write_bytes((sdir / "pck-crl.pem").read_bytes() + (sdir / "root-crl.pem").read_bytes())
    r = run("openssl", "verify", "-crl_check_all", "-CRLfile", "crls.pem", "-CAfile", "root-ca.pem",
            "-untrusted", "pck-ca.pem", "pck.pem", cwd=sdir)
    assert r.returncode == 0, r.stderr + r.stdout


def test_root_says_test(sdir):
    r = run("openssl", "x509", "-in", sdir / "root-ca.pem", "-noout", "-subject", "-issuer")
    assert r.returncode == 0
    assert b"TEST" in r.stdout and b"not Intel" in r.stdout


def test_sgx_extension_structure(sdir):
    r = run("openssl", "x509", "-in", sdir / "pck.pem", "-outform", "DER", "-out", sdir / "pck.der")
    assert r.returncode == 0
    r = run("openssl", "asn1parse", "-inform", "DER", "-in", sdir / "pck.der")
    lines = r.stdout.decode().splitlines()
    idx = next(i for i, l in enumerate(lines) if SGX_EXT_OID in l and "OBJECT" in l)
    off = lines[idx + 1].split(":")[0].strip()
    r = run("openssl", "asn1parse", "-inform", "DER", "-in", sdir / "pck.der", "-strparse", off)
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    oids = [l.rsplit(":", 1)[1].strip() for l in text.splitlines() if "OBJECT" in l]
    want = [".1", ".2"] + [f".2.{i}" for i in range(1, 19)] + [".3", ".4", ".5"]
    assert oids == [SGX_EXT_OID + w for w in want]
    # PCESVN 13, SWHardeningNeeded platform: components 01/02 = 13 (0x0D), 07 = 1
    vals = {}
    cur = None
    for l in text.splitlines():
        if "OBJECT" in l:
            cur = l.rsplit(":", 1)[1].strip()
        elif cur and ("INTEGER" in l or "OCTET STRING" in l or "ENUMERATED" in l):
            vals[cur] = l.rsplit(":", 1)[1].strip()
            cur = None
    assert vals[SGX_EXT_OID + ".2.1"] == "0D"
    assert vals[SGX_EXT_OID + ".2.7"] == "01"
    assert vals[SGX_EXT_OID + ".2.17"] == "0D"
    assert vals[SGX_EXT_OID + ".4"] == "5AF75AF70000"  # FMSPC
    assert vals[SGX_EXT_OID + ".3"] == "0000"  # PCE-ID
    assert vals[SGX_EXT_OID + ".5"] == "00"  # SGX type Standard
    assert vals[SGX_EXT_OID + ".2.18"] == "0D0D0303FFFF01000000000000000000"  # CPUSVN


def test_collateral_shape_and_signatures(sdir, testdata_dir):
    need_crypto()
    coll = json.loads((sdir / "collateral.json").read_text())
    vec = testdata_dir / "attestation/sgx-v3-phala/collateral.json"
    assert list(coll.keys()) == list(json.loads(vec.read_text()).keys())
    tcb_cert = load_certs(coll["tcb_info_issuer_chain"].encode())[0]
    assert tcb_cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "Intel SGX TCB Signing"
    pub = tcb_cert.public_key()
    assert raw_sig_ok(pub, bytes.fromhex(coll["tcb_info_signature"]), coll["tcb_info"].encode())
    assert raw_sig_ok(pub, bytes.fromhex(coll["qe_identity_signature"]), coll["qe_identity"].encode())
    assert not raw_sig_ok(pub, bytes.fromhex(coll["tcb_info_signature"]), coll["tcb_info"].encode() + b" ")
    tcb = json.loads(coll["tcb_info"])
    assert tcb["id"] == "SGX" and tcb["version"] == 3 and tcb["fmspc"] == "5AF75AF70000"
    assert [l["tcbStatus"] for l in tcb["tcbLevels"]] == [
        "UpToDate", "ConfigurationNeeded", "SWHardeningNeeded", "ConfigurationAndSWHardeningNeeded",
        "OutOfDate", "OutOfDateConfigurationNeeded", "Revoked"]
    for l in tcb["tcbLevels"]:
        assert ("advisoryIDs" in l) == (l["tcbStatus"] != "UpToDate")
    qe = json.loads(coll["qe_identity"])
    assert qe["id"] == "QE" and qe["version"] == 2 and qe["isvprodid"] == 1


# ---- quote --------------------------------------------------------------------------------


def make_quote(softsgx, d, *extra):
    r = run(softsgx, "quote", d, *extra)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_quote_layout_and_signatures(softsgx, sdir):
    need_crypto()
    rd = hashlib.sha256(b"marble cert").digest()
    mre = bytes(range(32))
    mrs = bytes(range(32, 64))
    oe = make_quote(softsgx, sdir, "--report-data", rd.hex(), "--mrenclave", mre.hex(),
                    "--mrsigner", mrs.hex(), "--isvprodid", "3", "--isvsvn", "2")
    # OE header: version 1, type 2 (SGX remote), size = rest
    ver, typ, size = struct.unpack_from("<IIQ", oe, 0)
    assert (ver, typ, size) == (1, 2, len(oe) - 16)
    q = oe[16:]
    f = parse_quote(q)
    assert (f["version"], f["att_key_type"], f["reserved"]) == (3, 2, 0)
    assert f["vendor"] == INTEL_VENDOR_ID
    assert f["user_data"][16:] == b"\0" * 4
    assert f["pce_svn"] == 13 and f["qe_svn"] == 8
    assert f["mrenclave"] == mre and f["mrsigner"] == mrs
    assert (f["isvprodid"], f["isvsvn"]) == (3, 2)
    assert f["flags"] & 2 == 0 and f["flags"] & 1 == 1
    assert f["report_data"] == rd + b"\0" * 32
    assert f["sig_len"] == len(q) - 436
    assert f["cert_type"] == 5 and f["end"] == len(q)
    assert f["cert_data"].endswith(b"-----\n\0")
    assert f["qe_auth"] == bytes(range(32))
    chain = load_certs(f["cert_data"].rstrip(b"\0"))
    assert [c.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value for c in chain][:2] == [
        "Intel SGX PCK Certificate", "Intel SGX PCK Processor CA"]
    assert chain[2].public_bytes(
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.PEM
    ) == (sdir / "root-ca.pem").read_bytes()
    # quote signature: attestation key over header || body
    att = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + f["att_pub"])
    assert raw_sig_ok(att, f["sig"], q[:432])
    # QE report: signed by the PCK key, bound to the attestation key
    assert raw_sig_ok(chain[0].public_key(), f["qe_sig"], f["qe_report"])
    assert f["qe_report"][320:352] == hashlib.sha256(f["att_pub"] + f["qe_auth"]).digest()
    assert f["qe_report"][352:384] == b"\0" * 32
    # QE identity values from the collateral match the QE report
    qe = json.loads(json.loads((sdir / "collateral.json").read_text())["qe_identity"])
    assert f["qe_report"][128:160].hex().upper() == qe["mrsigner"]
    assert struct.unpack_from("<HH", f["qe_report"], 256) == (1, 8)
    assert f["qe_report"][48] & 0xFB == 0x11  # attributes under the identity's mask
    # tampering breaks the signature
    bad = bytearray(q)
    bad[112] ^= 1
    assert not raw_sig_ok(att, f["sig"], bytes(bad[:432]))


def test_quote_raw_and_debug(softsgx, sdir):
    q = make_quote(softsgx, sdir, "--report-data", "ab" * 64, "--raw", "--debug")
    f = parse_quote(q)
    assert f["version"] == 3
    assert f["flags"] & 2 == 2
    assert f["report_data"] == b"\xab" * 64
    out = sdir / "q.bin"
    make_quote(softsgx, sdir, "--report-data", "ab", "--out", out)
    assert out.read_bytes()[:8] == struct.pack("<II", 1, 2)


def test_quote_rejects_bad_input(softsgx, sdir):
    assert run(softsgx, "quote", sdir, "--report-data", "ab" * 65).returncode == 2
    assert run(softsgx, "quote", sdir, "--report-data", "zz").returncode == 2
    assert run(softsgx, "quote", sdir, "--report-data", "00", "--mrenclave", "00").returncode == 2
    assert run(softsgx, "quote", sdir, "--report-data", "00", "--isvsvn", "65536").returncode == 2
    assert run(softsgx, "quote", sdir, "--report-data", "00", "--tcb-status", "UpToDate").returncode == 2


@pytest.mark.parametrize("status", STATUSES)
def test_tcb_status_is_computable(softsgx, tmp_path, status):
    """A minimal re-implementation of Intel's level walk (spec §2 step 12) finds the status."""
    need_crypto()
    d = tmp_path / status
    assert run(softsgx, "init", d, "--tcb-status", status).returncode == 0
    q = parse_quote(make_quote(softsgx, d, "--report-data", "00", "--raw"))
    pck = load_certs(q["cert_data"].rstrip(b"\0"))[0]
    ext = pck.extensions.get_extension_for_oid(x509.ObjectIdentifier(SGX_EXT_OID))
    assert not ext.critical
    comps, pcesvn = sgx_tcb_from_ext(ext.value.value)
    tcb = json.loads(json.loads((d / "collateral.json").read_text())["tcb_info"])
    found = None
    for level in tcb["tcbLevels"]:
        want = [c["svn"] for c in level["tcb"]["sgxtcbcomponents"]]
        if all(a >= b for a, b in zip(comps, want)) and pcesvn >= level["tcb"]["pcesvn"]:
            found = level
            break
    assert found is not None and found["tcbStatus"] == status
    if status != "UpToDate":
        assert any(a.startswith("INTEL-SA-") for a in found["advisoryIDs"])


def test_tcb_not_supported_matches_no_level(softsgx, tmp_path):
    need_crypto()
    d = tmp_path / "nomatch"
    assert run(softsgx, "init", d, "--tcb-status", "TcbNotSupported").returncode == 0
    q = parse_quote(make_quote(softsgx, d, "--report-data", "00", "--raw"))
    pck = load_certs(q["cert_data"].rstrip(b"\0"))[0]
    comps, _ = sgx_tcb_from_ext(
        pck.extensions.get_extension_for_oid(x509.ObjectIdentifier(SGX_EXT_OID)).value.value)
    tcb = json.loads(json.loads((d / "collateral.json").read_text())["tcb_info"])
    for level in tcb["tcbLevels"]:
        want = [c["svn"] for c in level["tcb"]["sgxtcbcomponents"]]
        assert not all(a >= b for a, b in zip(comps, want))


def sgx_tcb_from_ext(der):
    """Tiny DER walker for the SGX extension: returns (16 component SVNs, PCESVN)."""

    def tlv(b, i):
        tag = b[i]
        ln = b[i + 1]
        i += 2
        if ln & 0x80:
            n = ln & 0x7F
            ln = int.from_bytes(b[i : i + n], "big")
            i += n
        return tag, b[i : i + ln], i + ln

    def items(b):
        i = 0
        while i < len(b):
            tag, val, i = tlv(b, i)
            yield tag, val

    comps = [None] * 16
    pcesvn = None
    _, top, _ = tlv(der, 0)
    for _, pair in items(top):
        (_, oid), (tag, val) = list(items(pair))
        if oid.endswith(b"\x0d\x01\x02"):  # ...13.1.2 = TCB
            for _, sub in items(val):
                (_, soid), (stag, sval) = list(items(sub))
                arc = soid[-1]
                if stag == 0x02 and arc <= 16:
                    comps[arc - 1] = int.from_bytes(sval, "big")
                elif stag == 0x02 and arc == 17:
                    pcesvn = int.from_bytes(sval, "big")
    assert None not in comps and pcesvn is not None
    return comps, pcesvn


def test_revoke_pck_lists_serial(softsgx, tmp_path):
    need_crypto()
    d = tmp_path / "revoked"
    assert run(softsgx, "init", d, "--revoke-pck").returncode == 0
    coll = json.loads((d / "collateral.json").read_text())
    crl = x509.load_der_x509_crl(bytes.fromhex(coll["pck_crl"]))
    pck = x509.load_pem_x509_certificate((d / "pck.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(pck.serial_number) is not None
    ok = tmp_path / "ok"
    assert run(softsgx, "init", ok).returncode == 0
    coll = json.loads((ok / "collateral.json").read_text())
    crl = x509.load_der_x509_crl(bytes.fromhex(coll["pck_crl"]))
    pck = x509.load_pem_x509_certificate((ok / "pck.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(pck.serial_number) is None
    assert len(list(crl)) == 2


# ---- round trip through the real DCAP verifier (`marblerun quote verify`) -----------------


@pytest.fixture(scope="module")
def cli(bin_dir):
    path = bin_dir / "marblerun"
    if not path.exists():
        pytest.skip(f"{path} not built")
    return str(path)


def verify(cli, d, quote, *extra):
    qf = d / "quote.bin"
    qf.write_bytes(quote)
    env = dict(os.environ)
    for k in ("EDG_ATTESTATION_ROOT_CA", "EDG_ATTESTATION_COLLATERAL", "EDG_ATTESTATION_PCCS_URL"):
        env.pop(k, None)
    r = run(cli, "quote", "verify", qf, "--collateral", d / "collateral.json", "-o", "json", *extra, env=env)
    return r, (json.loads(r.stdout) if r.stdout.strip() else None)


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize("status", STATUSES)
def test_verifier_computes_requested_status(softsgx, cli, tmp_path, status, debug):
    d = tmp_path / "s"
    assert run(softsgx, "init", d, "--tcb-status", status).returncode == 0
    rd = hashlib.sha256(b"cert").hexdigest()
    args = ["--report-data", rd, "--mrenclave", "11" * 32, "--mrsigner", "22" * 32,
            "--isvprodid", "3", "--isvsvn", "4"] + (["--debug"] if debug else [])
    r, out = verify(cli, d, make_quote(softsgx, d, *args), "--root-ca", d / "root-ca.pem")
    assert out is not None, r.stderr
    assert out["tcbStatus"] == status
    assert out["debug"] is debug
    assert out["uniqueID"] == "11" * 32 and out["signerID"] == "22" * 32
    assert (out["productID"], out["securityVersion"]) == (3, 4)
    assert out["reportData"] == rd + "00" * 32
    assert out["fmspc"] == "5af75af70000"
    if status == "UpToDate":
        assert r.returncode == 0, r.stderr
        assert out["advisoryIDs"] == []
    else:
        assert out["advisoryIDs"], out


@pytest.mark.parametrize("platform,qe,want", [
    ("UpToDate", "OutOfDate", "OutOfDate"),
    ("ConfigurationNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"),
    ("SWHardeningNeeded", "Revoked", "Revoked"),
])
def test_verifier_converges_qe_status(softsgx, cli, tmp_path, platform, qe, want):
    d = tmp_path / "s"
    assert run(softsgx, "init", d, "--tcb-status", platform, "--qe-tcb-status", qe).returncode == 0
    r, out = verify(cli, d, make_quote(softsgx, d, "--report-data", "00"), "--root-ca", d / "root-ca.pem")
    assert out is not None, r.stderr
    assert out["tcbStatus"] == want


@pytest.mark.parametrize("version", [3, 4, 5])
def test_verifier_accepts_quote_versions(softsgx, cli, sdir, version):
    q = make_quote(softsgx, sdir, "--report-data", "00", "--raw", "--quote-version", str(version))
    assert struct.unpack_from("<H", q, 0)[0] == version
    r, out = verify(cli, sdir, q, "--root-ca", sdir / "root-ca.pem")
    assert out is not None, r.stderr
    assert out["quoteVersion"] == version and out["tcbStatus"] == "SWHardeningNeeded"


def test_platform_ca(softsgx, cli, tmp_path):
    """--pck-ca platform: the leaf has the extension shape of Intel's Platform-CA PCKs."""
    d = tmp_path / "platform"
    assert run(softsgx, "init", d, "--pck-ca", "platform", "--tcb-status", "ConfigurationNeeded").returncode == 0
    r = run("openssl", "verify", "-CAfile", "root-ca.pem", "-untrusted", "pck-ca.pem", "pck.pem", cwd=d)
    assert r.returncode == 0, r.stderr + r.stdout
    subj = run("openssl", "x509", "-in", d / "pck-ca.pem", "-noout", "-subject").stdout
    assert b"CN = Intel SGX PCK Platform CA" in subj
    assert run("openssl", "x509", "-in", d / "pck.pem", "-outform", "DER", "-out", d / "pck.der").returncode == 0
    lines = run("openssl", "asn1parse", "-inform", "DER", "-in", d / "pck.der").stdout.decode().splitlines()
    idx = next(i for i, l in enumerate(lines) if SGX_EXT_OID in l and "OBJECT" in l)
    off = lines[idx + 1].split(":")[0].strip()
    text = run("openssl", "asn1parse", "-inform", "DER", "-in", d / "pck.der", "-strparse", off).stdout.decode()
    oids = [l.rsplit(":", 1)[1].strip() for l in text.splitlines() if "OBJECT" in l]
    tail = [".3", ".4", ".5", ".6", ".7", ".7.1", ".7.2", ".7.3"]
    assert oids[-8:] == [SGX_EXT_OID + t for t in tail]
    assert text.count("BOOLEAN") == 3
    r, out = verify(cli, d, make_quote(softsgx, d, "--report-data", "00"), "--root-ca", d / "root-ca.pem")
    assert out is not None, r.stderr
    assert out["tcbStatus"] == "ConfigurationNeeded"


def test_verifier_rejects(softsgx, cli, tmp_path):
    d = tmp_path / "nomatch"
    assert run(softsgx, "init", d, "--tcb-status", "TcbNotSupported").returncode == 0
    r, _ = verify(cli, d, make_quote(softsgx, d, "--report-data", "00"), "--root-ca", d / "root-ca.pem")
    assert r.returncode != 0 and b"TCB not supported" in r.stderr
    # without the test root (default: Intel's) the quote is refused
    ok = tmp_path / "ok"
    assert run(softsgx, "init", ok).returncode == 0
    quote = make_quote(softsgx, ok, "--report-data", "00")
    r, _ = verify(cli, ok, quote)
    assert r.returncode != 0 and b"PCK chain" in r.stderr
    r, out = verify(cli, ok, quote, "--root-ca", ok / "root-ca.pem")
    assert r.returncode == 0, r.stderr
    # a revoked PCK certificate
    rv = tmp_path / "revoked"
    assert run(softsgx, "init", rv, "--revoke-pck").returncode == 0
    r, _ = verify(cli, rv, make_quote(softsgx, rv, "--report-data", "00"), "--root-ca", rv / "root-ca.pem")
    assert r.returncode != 0 and b"revoked" in r.stderr
    # collateral from the past: expired now, valid at a time inside its window
    old = tmp_path / "old"
    t0 = 1_700_000_000  # 2023-11-14T22:13:20Z
    assert run(softsgx, "init", old, "--time", str(t0), "--valid-days", "2").returncode == 0
    q_old = make_quote(softsgx, old, "--report-data", "00")
    r, _ = verify(cli, old, q_old, "--root-ca", old / "root-ca.pem")
    assert r.returncode != 0 and b"PCK chain" in r.stderr
    r, out = verify(cli, old, q_old, "--root-ca", old / "root-ca.pem", "--at", str(t0 + 86400))
    assert r.returncode == 0, r.stderr
    assert out["collateralIssued"] == "2023-11-14T21:13:20Z"
    # a flipped MRENCLAVE bit
    bad = bytearray(quote)
    bad[16 + 112] ^= 1
    r, _ = verify(cli, ok, bytes(bad), "--root-ca", ok / "root-ca.pem")
    assert r.returncode != 0 and b"quote signature" in r.stderr
