"""Confidential-VM marbles (docs/cvm.md): one manifest with an SGX, a TDX and an SEV-SNP marble.

The SGX marble's premain uses softsgx; the TDX and SNP marbles' premains use their real
configfs-tsm quote source against a fake report directory (faketsm.py) whose quotes come from
the softtdx (marblerun-softsgx tdx-quote) and softsnp (marblerun-softsnp) TEST hierarchies. The
Coordinator verifies all three with the real verifiers (DCAP with TDX collateral; the SNP
chain VCEK -> ASK -> ARK with the TEST ARK as its root). Each marble activates only with its
own identity; wrong measurements, policies and TCBs are refused naming the field; the three
activated marbles then talk mTLS with the certificates the Coordinator issued them."""
import hashlib
import json
import os
import socket
import ssl
import subprocess
import threading

import grpc
import pytest

from faketsm import FakeTSM
from mrharness import BIN, MRENCLAVE, Coordinator, Marble, SoftSGX

PREMAIN = BIN / "marblerun-premain"

MRTD = "11" * 48
RTMR2 = "33" * 48
MEASUREMENT = "44" * 48
HOST_DATA = "55" * 32
TD_ATTRIBUTES = "0000001000000000"  # SEPT_VE_DISABLE, report order (softtdx default)
XFAM = "e71a060000000000"

PACKAGES = {
    "sgx": {"UniqueID": MRENCLAVE, "Debug": False},
    "tdx": {"Debug": False, "AcceptedTCBStatuses": ["UpToDate"],
            "TDX": {"MRTD": MRTD, "RTMR2": RTMR2, "TDAttributes": TD_ATTRIBUTES, "XFAM": XFAM,
                    "MinTEETCBSVN": "04010300000000000000000000000000"}},
    "snp": {"Debug": False,
            "SNP": {"Measurement": MEASUREMENT, "HostData": HOST_DATA,
                    "Policy": {"SMT": True, "MigrationAgent": False}, "VMPL": 0,
                    "MinimumTCB": {"Bootloader": 3, "TEE": 0, "SNP": 20, "Microcode": 209},
                    "AcceptedSigningKeys": ["VCEK"]}},
    # a guest whose reports a VLEK signs (a cloud provider's key), and only those
    "snp-vlek": {"SNP": {"Measurement": MEASUREMENT, "AcceptedSigningKeys": ["VLEK"]}},
}


def files(kind, d):
    return {str(d / f"{kind}-cert.pem"): "{{ pem .MarbleRun.MarbleCert.Cert }}",
            str(d / f"{kind}-key.pem"): "{{ pem .MarbleRun.MarbleCert.Private }}",
            str(d / f"{kind}-root.pem"): "{{ pem .MarbleRun.RootCA.Cert }}"}


def manifest(d):
    marbles = {k: {"Package": k, "Parameters": {"Files": files(k, d)}} for k in PACKAGES
               if k != "snp-vlek"}
    marbles["snp-vlek"] = {"Package": "snp-vlek"}
    return json.dumps({"Packages": PACKAGES, "Marbles": marbles}).encode()


# ---- evidence makers --------------------------------------------------------------------------

def tdx_quote(pki, rd, mrtd=MRTD, rtmr2=RTMR2, tee_tcb_svn=None, debug=False):
    args = [BIN / "marblerun-softsgx", "tdx-quote", pki.dir, "--report-data", rd.hex(),
            "--mrtd", mrtd, "--rtmr2", rtmr2]
    if tee_tcb_svn:
        args += ["--tee-tcb-svn", tee_tcb_svn]
    if debug:
        args.append("--debug")
    return subprocess.run(args, check=True, capture_output=True).stdout


def snp_evidence(snp_dir, rd, tmp, measurement=MEASUREMENT, host_data=HOST_DATA, policy=None,
                 tcb=None, vlek=False, with_aux=True):
    """report || auxblob, as the premain sends them."""
    out, aux = tmp / f"r-{os.getpid()}-{threading.get_ident()}", tmp / f"a-{threading.get_ident()}"
    args = [BIN / "marblerun-softsnp", "report", snp_dir, "--report-data", rd.hex(),
            "--measurement", measurement, "--host-data", host_data, "--out", out, "--aux", aux]
    if policy is not None:
        args += ["--policy", hex(policy)]
    if tcb is not None:
        args += ["--tcb", tcb]
    if vlek:
        args.append("--vlek")
    subprocess.run(args, check=True, capture_output=True)
    return out.read_bytes() + (aux.read_bytes() if with_aux else b"")


def split_snp(blob):
    return blob[:1184], blob[1184:]


# ---- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("cvm")
    pki = SoftSGX(base / "softsgx")
    snp_dir = base / "softsnp"
    subprocess.run([BIN / "marblerun-softsnp", "init", snp_dir], check=True, capture_output=True)
    (base / "coord").mkdir()
    coord = Coordinator(base / "coord", pki, {
        # the directory: collateral.json (SGX) and tdx-collateral.json (TDX)
        "EDG_ATTESTATION_COLLATERAL": str(pki.dir),
        "EDG_ATTESTATION_SNP_ROOT": str(snp_dir / "ark.pem"),
    })
    coord.start()
    marbles = base / "marbles"
    marbles.mkdir()
    coord.set_manifest(manifest(marbles))
    yield {"base": base, "pki": pki, "snp": snp_dir, "coord": coord, "marbles": marbles}
    coord.stop()


def premain_env(coord, tmp, kind):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("EDG_", "MARBLE_"))}
    e.update({"EDG_MARBLE_COORDINATOR_ADDR": coord.mesh, "EDG_MARBLE_TYPE": kind,
              "EDG_MARBLE_UUID_FILE": str(tmp / f"{kind}-uuid"),
              "EDG_MARBLE_DNS_NAMES": f"{kind}.marble,localhost"})
    return e


def run_premain(env, cwd):
    return subprocess.run([str(PREMAIN), "/bin/sh", "-c", 'echo started > "$OUT"'], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=90)


def rpc_error(fn):
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details()


def refused(world, kind, evidence_for, want):
    """Activating `kind` with evidence_for(report_data) fails with `want` in the message."""
    m = Marble(None)
    rd = hashlib.sha256(m.cert_der).digest()
    code, msg = rpc_error(lambda: m.activate(world["coord"], kind, quote=evidence_for(rd)))
    assert code == grpc.StatusCode.PERMISSION_DENIED, (code, msg)
    assert want in msg, msg
    return msg


# ---- the premains: SGX via softsgx, TDX and SNP via configfs-tsm ----------------------------

@pytest.fixture(scope="module")
def activated(world):
    coord, d, pki = world["coord"], world["marbles"], world["pki"]
    results = {}
    # SGX: softsgx in-process quotes
    env = premain_env(coord, d, "sgx")
    env.update({k: v for k, v in pki.env().items() if k.startswith("EDG_SOFTSGX")})
    env.update({"EDG_ATTESTATION": "softsgx", "OUT": str(d / "sgx-started")})
    results["sgx"] = run_premain(env, d)
    # TDX: EDG_MARBLE_ATTESTATION=tsm (wins over EDG_ATTESTATION)
    tdx_tsm = world["base"] / "tsm-tdx"
    with FakeTSM(tdx_tsm, "tdx_guest", lambda rd: (tdx_quote(pki, rd), None)) as t:
        env = premain_env(coord, d, "tdx")
        env.update({"EDG_MARBLE_ATTESTATION": "tsm", "EDG_ATTESTATION": "simulation",
                    "EDG_ATTESTATION_TSM_DIR": str(tdx_tsm), "OUT": str(d / "tdx-started")})
        results["tdx"] = run_premain(env, d)
    results["tdx_tsm"] = t
    # SNP: selected automatically because the configfs-tsm directory exists
    snp_tsm = world["base"] / "tsm-snp"
    with FakeTSM(snp_tsm, "sev_guest",
                 lambda rd: split_snp(snp_evidence(world["snp"], rd, world["base"]))) as s:
        env = premain_env(coord, d, "snp")
        env.update({"EDG_ATTESTATION_TSM_DIR": str(snp_tsm), "OUT": str(d / "snp-started")})
        results["snp"] = run_premain(env, d)
    results["snp_tsm"] = s
    return results


@pytest.mark.parametrize("kind", ["sgx", "tdx", "snp"])
def test_premain_activates(world, activated, kind):
    r = activated[kind]
    assert r.returncode == 0, r.stderr
    assert "Proceeding in simulation mode" not in r.stderr, r.stderr
    d = world["marbles"]
    assert (d / f"{kind}-started").read_text() == "started\n"
    for f in ("cert", "key", "root"):
        assert (d / f"{kind}-{f}.pem").read_text().startswith("-----BEGIN"), f


@pytest.mark.parametrize("kind", ["tdx", "snp"])
def test_premain_used_the_tsm_entry(world, activated, kind):
    """The quote came from configfs-tsm: one entry served, its inblob = SHA-256(cert) || 0^32."""
    t = activated[f"{kind}_tsm"]
    assert t.errors == [] and t.served == 1 and len(t.inblobs) == 1, t.errors
    rd = t.inblobs[0]
    # SHA-256 of the premain's certificate (the Coordinator checked the binding), zero-padded
    assert len(rd) == 64 and rd[32:] == bytes(32) and rd[:32] != bytes(32)
    entry = next(p for p in t.root.iterdir() if p.is_dir())
    assert (entry / "generation").read_text() == "1\n"
    assert (entry / "auxblob").exists() == (kind == "snp")


def test_tsm_selected_by_mode_even_without_auto(world, tmp_path):
    """EDG_MARBLE_ATTESTATION=tsm with a directory that is not configfs-tsm fails clearly."""
    env = premain_env(world["coord"], tmp_path, "tdx")
    env.update({"EDG_MARBLE_ATTESTATION": "tsm", "EDG_ATTESTATION_TSM_DIR": str(tmp_path / "none"),
                "OUT": str(tmp_path / "started")})
    r = run_premain(env, tmp_path)
    assert r.returncode != 0
    assert "failed to get quote" in r.stderr and str(tmp_path / "none") in r.stderr, r.stderr
    assert not (tmp_path / "started").exists()


def test_bad_marble_attestation_mode_is_named(world, tmp_path):
    env = premain_env(world["coord"], tmp_path, "tdx")
    env.update({"EDG_MARBLE_ATTESTATION": "sev", "OUT": str(tmp_path / "started")})
    r = run_premain(env, tmp_path)
    assert 'EDG_MARBLE_ATTESTATION: unknown quote source "sev"' in r.stderr, r.stderr
    assert not (tmp_path / "started").exists()


# ---- the three talk mTLS with the issued certificates ---------------------------------------

def tls_ctx(d, kind, server):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_cert_chain(d / f"{kind}-cert.pem", d / f"{kind}-key.pem")
    ctx.load_verify_locations(d / f"{kind}-root.pem")
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def mtls_exchange(d, server_kind, client_kind):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(20)
    port = srv.getsockname()[1]
    got = {}

    def serve():
        with srv:
            conn, _ = srv.accept()
            with tls_ctx(d, server_kind, True).wrap_socket(conn, server_side=True) as t:
                got["peer"] = t.getpeercert()
                got["msg"] = t.recv(64)
                t.sendall(b"hello from " + server_kind.encode())

    th = threading.Thread(target=serve)
    th.start()
    ctx = tls_ctx(d, client_kind, False)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        with ctx.wrap_socket(s, server_hostname=f"{server_kind}.marble") as t:
            t.sendall(b"hello from " + client_kind.encode())
            reply = t.recv(64)
    th.join(timeout=20)
    assert reply == b"hello from " + server_kind.encode()
    assert got["msg"] == b"hello from " + client_kind.encode()
    sans = [v for k, v in got["peer"]["subjectAltName"] if k == "DNS"]
    assert f"{client_kind}.marble" in sans, got["peer"]


@pytest.mark.parametrize("server,client", [("sgx", "tdx"), ("tdx", "snp"), ("snp", "sgx")])
def test_marbles_talk_mtls(world, activated, server, client):
    for k in (server, client):
        assert activated[k].returncode == 0, activated[k].stderr
    mtls_exchange(world["marbles"], server, client)


# ---- each marble activates only with its own identity ---------------------------------------

def test_tee_mismatch_refused(world):
    pki, snp, base = world["pki"], world["snp"], world["base"]
    refused(world, "tdx", lambda rd: snp_evidence(snp, rd, base),
            "the package describes a TDX workload, the evidence is SEV-SNP")
    refused(world, "snp", lambda rd: tdx_quote(pki, rd),
            "the package describes a SEV-SNP workload, the evidence is TDX")
    refused(world, "tdx", lambda rd: pki.quote(rd),
            "the package describes a TDX workload, the evidence is SGX")
    refused(world, "snp", lambda rd: pki.quote(rd),
            "the package describes a SEV-SNP workload, the evidence is SGX")


@pytest.mark.parametrize("evidence", ["tdx", "snp"])
def test_sgx_package_refuses_cvm_evidence(world, evidence):
    pki, snp, base = world["pki"], world["snp"], world["base"]
    make = (lambda rd: tdx_quote(pki, rd)) if evidence == "tdx" else (
        lambda rd: snp_evidence(snp, rd, base))
    m = Marble(None)
    rd = hashlib.sha256(m.cert_der).digest()
    code, msg = rpc_error(lambda: m.activate(world["coord"], "sgx", quote=make(rd)))
    assert code == grpc.StatusCode.PERMISSION_DENIED, (code, msg)
    assert msg == "marble verification failed: invalid quote: package properties apply to SGX enclaves only"


def test_tdx_wrong_identity_refused(world):
    pki = world["pki"]
    refused(world, "tdx", lambda rd: tdx_quote(pki, rd, mrtd="12" * 48), "TDX.MRTD")
    refused(world, "tdx", lambda rd: tdx_quote(pki, rd, rtmr2="00" * 48), "TDX.RTMR2")
    refused(world, "tdx", lambda rd: tdx_quote(pki, rd, debug=True), "Debug")
    # module SVN 3: TCB status OutOfDate, not in AcceptedTCBStatuses
    refused(world, "tdx", lambda rd: tdx_quote(pki, rd, tee_tcb_svn="03010300000000000000000000000000"),
            "OutOfDate")
    # a quote binding another certificate
    other = hashlib.sha256(b"other").digest()
    refused(world, "tdx", lambda rd: tdx_quote(pki, other), "hash(cert) != report.Data")


def test_tdx_tampered_quote_refused(world):
    pki = world["pki"]

    def tampered(rd):
        q = bytearray(tdx_quote(pki, rd))
        q[48 + 136] ^= 1  # MRTD, under the signature
        return bytes(q)
    refused(world, "tdx", tampered, "verifying quote")


def test_snp_wrong_identity_refused(world):
    snp, base = world["snp"], world["base"]
    refused(world, "snp", lambda rd: snp_evidence(snp, rd, base, measurement="45" * 48),
            "SNP.Measurement")
    refused(world, "snp", lambda rd: snp_evidence(snp, rd, base, host_data="00" * 32), "SNP.HostData")
    refused(world, "snp", lambda rd: snp_evidence(snp, rd, base, policy=0x30000 | (1 << 18)),
            "SNP.Policy.MigrationAgent")
    refused(world, "snp", lambda rd: snp_evidence(snp, rd, base, policy=0x20000), "SNP.Policy.SMT")
    refused(world, "snp", lambda rd: snp_evidence(snp, rd, base, policy=0x30000 | (1 << 19)), "Debug")
    refused(world, "snp", lambda rd: snp_evidence(snp, rd, base, tcb="3,0,20,208"),
            "SNP.MinimumTCB.Microcode")
    refused(world, "snp", lambda rd: snp_evidence(snp, rd, base, tcb="2,0,20,209"),
            "SNP.MinimumTCB.Bootloader")
    refused(world, "snp", lambda rd: snp_evidence(snp, rd, base, vlek=True), "SNP.AcceptedSigningKeys")
    other = hashlib.sha256(b"other").digest()
    refused(world, "snp", lambda rd: snp_evidence(snp, other, base), "hash(cert) != report.Data")


def test_snp_signing_key_choice(world):
    """VCEK or VLEK: each package accepts the signer it names."""
    snp, base = world["snp"], world["base"]
    m = Marble(None)
    rd = hashlib.sha256(m.cert_der).digest()
    assert m.activate(world["coord"], "snp-vlek", quote=snp_evidence(snp, rd, base, vlek=True)).Parameters
    refused(world, "snp-vlek", lambda rd: snp_evidence(snp, rd, base),
            "SNP.AcceptedSigningKeys: expected [VLEK], got VCEK")
    # a VLEK report whose auxblob lacks the VLEK cannot be completed from anywhere
    refused(world, "snp-vlek", lambda rd: snp_evidence(snp, rd, base, vlek=True, with_aux=False),
            "signed by a VLEK, but the evidence carries none")


def test_snp_chain_and_signature_refused(world):
    snp, base = world["snp"], world["base"]
    # no auxblob: no VCEK for the report, and the Coordinator has no VCEK source
    refused(world, "snp", lambda rd: snp_evidence(snp, rd, base, with_aux=False), "VCEK")

    def flip(offset):
        def make(rd):
            b = bytearray(snp_evidence(snp, rd, base))
            b[offset] ^= 1
            return bytes(b)
        return make
    refused(world, "snp", flip(0x090), "verifying quote")  # MEASUREMENT, signed
    refused(world, "snp", flip(0x2A0 + 5), "verifying quote")  # signature R
    # another softsnp hierarchy: its ARK is not the Coordinator's test root
    other = base / "softsnp-other"
    if not other.exists():
        subprocess.run([BIN / "marblerun-softsnp", "init", other], check=True, capture_output=True)
    refused(world, "snp", lambda rd: snp_evidence(other, rd, base), "verifying quote")


def test_identities_still_activate(world):
    """After the refusals the right evidence still activates (the refusals changed nothing)."""
    pki, snp, base = world["pki"], world["snp"], world["base"]
    for kind, make in (("tdx", lambda rd: tdx_quote(pki, rd)),
                       ("snp", lambda rd: snp_evidence(snp, rd, base)),
                       ("sgx", lambda rd: pki.quote(rd))):
        m = Marble(None)
        rd = hashlib.sha256(m.cert_der).digest()
        resp = m.activate(world["coord"], kind, quote=make(rd))
        assert resp.Parameters.Files, kind


# ---- the CLI accepts the new formats ------------------------------------------------------

def cli(world, *args, attestation_env=False):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDG_")}
    env["XDG_CONFIG_HOME"] = str(world["base"] / "xdg")
    if attestation_env:  # to verify the (softsgx) Coordinator's own quote
        env.update({k: v for k, v in world["pki"].env().items() if k.startswith("EDG_ATTESTATION_")})
    return subprocess.run([str(BIN / "marblerun"), *map(str, args)], env=env, cwd=world["base"],
                          capture_output=True, text=True, timeout=120)


def test_cli_manifest_verify_with_cvm_packages(world):
    base = world["base"]
    (base / "m.json").write_bytes(manifest(world["marbles"]))
    (base / "era.json").write_text(json.dumps({"SecurityVersion": 3, "ProductID": 3,
                                               "UniqueID": MRENCLAVE, "SignerID": "cd" * 32,
                                               "Debug": False}))
    coord = f"127.0.0.1:{world['coord'].client_port}"
    p = cli(world, "manifest", "verify", "m.json", coord, "--era-config", "era.json",
            attestation_env=True)
    assert p.returncode == 0 and p.stdout.endswith("OK\n"), p.stderr
    # a manifest that differs in one TDX field is not the one the Coordinator runs
    other = json.loads((base / "m.json").read_text())
    other["Packages"]["tdx"]["TDX"]["RTMR2"] = "00" * 48
    (base / "m2.json").write_text(json.dumps(other))
    p = cli(world, "manifest", "verify", "m2.json", coord, "--era-config", "era.json",
            attestation_env=True)
    assert p.returncode == 1
    assert "MarbleRun deployment is using a different manifest than expected" in p.stderr
    p = cli(world, "manifest", "signature", "m.json")
    assert p.returncode == 0
    assert p.stdout.strip() == hashlib.sha256((base / "m.json").read_bytes()).hexdigest()


def test_cli_quote_verify_tdx(world):
    base, pki = world["base"], world["pki"]
    (base / "td.bin").write_bytes(tdx_quote(pki, b"\x01" * 32))
    p = cli(world, "quote", "verify", "td.bin", "--collateral", pki.dir, "--root-ca",
            pki.dir / "root-ca.pem", "-o", "json")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j["tee"] == "TDX" and j["mrtd"] == MRTD and j["rtmr2"] == RTMR2
    assert j["tcbStatus"] == "UpToDate" and j["verdict"] == "accepted"
    assert j["reportData"] == "01" * 32 + "00" * 32
    q = bytearray((base / "td.bin").read_bytes())
    q[48 + 136] ^= 1
    (base / "td-bad.bin").write_bytes(bytes(q))
    p = cli(world, "quote", "verify", "td-bad.bin", "--collateral", pki.dir, "--root-ca",
            pki.dir / "root-ca.pem")
    assert p.returncode != 0 and "Error: quote signature" in p.stderr, p.stderr


def test_cli_quote_verify_snp(world):
    base, snp = world["base"], world["snp"]
    (base / "snp.bin").write_bytes(snp_evidence(snp, b"\x02" * 32, base, vlek=True))
    p = cli(world, "quote", "verify", "snp.bin", "--snp-root", snp / "ark.pem", "-o", "json")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j["tee"] == "SEV-SNP" and j["measurement"] == MEASUREMENT and j["hostData"] == HOST_DATA
    assert j["signingKey"] == "VLEK" and j["reportedTCB"] == "d114000000000003"
    assert j["policy"] == 0x30000 and j["verdict"] == "accepted"
    p = cli(world, "quote", "verify", "snp.bin", "--snp-root", snp / "ark.pem")
    assert p.returncode == 0 and "Quote verified: SEV-SNP report version 3" in p.stdout, p.stderr
    assert f"Measurement               : {MEASUREMENT}" in p.stdout
    # AMD's roots do not accept the TEST hierarchy
    p = cli(world, "quote", "verify", "snp.bin")
    assert p.returncode != 0
    assert "SNP VCEK chain: the ARK in the chain does not match the pinned AMD root key" in p.stderr
    # the report alone: a VLEK must travel with it, a VCEK can come from a directory
    (base / "snp-report.bin").write_bytes((base / "snp.bin").read_bytes()[:1184])
    p = cli(world, "quote", "verify", "snp-report.bin", "--snp-root", snp / "ark.pem")
    assert p.returncode != 0
    assert "the report is signed by a VLEK, but the evidence carries none" in p.stderr, p.stderr
    vcek_dir = base / "vceks"
    vcek_dir.mkdir(exist_ok=True)
    r, aux, vek = base / "v-r.bin", base / "v-a.bin", base / "v-vek.der"
    subprocess.run([BIN / "marblerun-softsnp", "report", snp, "--report-data", "03", "--out", r,
                    "--aux", aux, "--vek", vek], check=True, capture_output=True)
    p = cli(world, "quote", "verify", r, "--snp-root", snp / "ark.pem", "--snp-vcek", vcek_dir)
    assert p.returncode != 0 and "SNP VCEK lookup" in p.stderr, p.stderr
    chip = subprocess.run([BIN / "marblerun-softsnp", "chip-id", snp], check=True,
                          capture_output=True, text=True).stdout.strip()
    (vcek_dir / f"{chip}-d114000000000003.der").write_bytes(vek.read_bytes())
    (vcek_dir / "cert_chain.pem").write_bytes((snp / "cert_chain.pem").read_bytes())
    p = cli(world, "quote", "verify", r, "--snp-root", snp / "ark.pem", "--snp-vcek", vcek_dir)
    assert p.returncode == 0 and "Signing key               : VCEK" in p.stdout, p.stderr


def test_manifest_doc_example_is_accepted(tmp_path):
    """The example of docs/manifest.md is a valid manifest (simulation-mode Coordinator)."""
    from mrharness import SOURCE_DIR
    text = (SOURCE_DIR / "docs" / "manifest.md").read_text()
    example = text.split("### Example", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    m = json.loads(example)
    assert {"TDX", "SNP"} <= {k for p in m["Packages"].values() for k in p}
    (tmp_path / "c").mkdir()
    c = Coordinator(tmp_path / "c", None, {"EDG_COORDINATOR_SIMULATION": "1"})
    c.start()
    try:
        # one changed field of it is refused with the field's name
        bad = json.loads(example)
        bad["Packages"]["db-snp"]["SNP"]["HostData"] = "55"
        r = c.post("/manifest", json.dumps(bad).encode())
        assert r.status_code == 400, r.text
        assert "invalid SNP.HostData in package db-snp: want 64 hex digits" in r.text
        c.set_manifest(example.encode())
    finally:
        c.stop()


def test_snp_vcek_from_kds(world, tmp_path):
    """A report without its auxblob: the Coordinator fetches the VCEK (and, with a test root,
    the ASK/ARK chain) from a KDS-like HTTP server, and caches the VCEK."""
    import http.server
    snp, base = world["snp"], world["base"]
    chip = subprocess.run([BIN / "marblerun-softsnp", "chip-id", snp], check=True,
                          capture_output=True, text=True).stdout.strip()
    vek = tmp_path / "vcek.der"
    subprocess.run([BIN / "marblerun-softsnp", "report", snp, "--report-data", "00", "--out",
                    tmp_path / "r.bin", "--vek", vek], check=True, capture_output=True)
    seen = []

    class KDS(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            if self.path == f"/vcek/v1/Milan/{chip}?blSPL=3&teeSPL=0&snpSPL=20&ucodeSPL=209":
                body = vek.read_bytes()
            elif self.path == "/vcek/v1/Milan/cert_chain":
                body = (snp / "cert_chain.pem").read_bytes()
            else:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KDS)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    (tmp_path / "c").mkdir()
    c = Coordinator(tmp_path / "c", world["pki"], {
        "EDG_ATTESTATION_COLLATERAL": str(world["pki"].dir),
        "EDG_ATTESTATION_SNP_ROOT": str(snp / "ark.pem"),
        "EDG_ATTESTATION_SNP_VCEK": f"http://127.0.0.1:{srv.server_address[1]}"})
    c.start()
    try:
        c.set_manifest(manifest(tmp_path))
        report_only = lambda rd: snp_evidence(snp, rd, base, with_aux=False)  # noqa: E731
        m = Marble(None)
        rd = hashlib.sha256(m.cert_der).digest()
        assert m.activate(c, "snp", quote=report_only(rd)).Parameters.Files
        assert any(p.startswith(f"/vcek/v1/Milan/{chip}?") for p in seen), seen
        # cached: the KDS is gone, the same chip and TCB still verify
        srv.shutdown()
        srv.server_close()
        m2 = Marble(None)
        rd2 = hashlib.sha256(m2.cert_der).digest()
        assert m2.activate(c, "snp", quote=report_only(rd2)).Parameters.Files
        # a TCB the cache does not hold needs the (unreachable) KDS: refused
        m3 = Marble(None)
        rd3 = hashlib.sha256(m3.cert_der).digest()
        code, msg = rpc_error(lambda: m3.activate(
            c, "snp", quote=snp_evidence(snp, rd3, base, tcb="3,0,21,209", with_aux=False)))
        assert code == grpc.StatusCode.PERMISSION_DENIED and "SNP VCEK lookup" in msg, msg
    finally:
        c.stop()
