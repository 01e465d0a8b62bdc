"""Helpers for end-to-end tests that run a real Coordinator and talk to it like marbles and
operators do: free loopback ports, a softsgx test PKI, python grpcio stubs generated from our
proto/, and marble identities (key, self-signed certificate, CSR, softsgx quote binding the
certificate)."""
import datetime
import hashlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib

import requests
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

SOURCE_DIR = pathlib.Path(os.environ.get("MR_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
BUILD_DIR = pathlib.Path(os.environ.get("MR_BUILD_DIR", SOURCE_DIR / "build"))
BIN = BUILD_DIR / "bin"

MRENCLAVE = "ab" * 32
MRSIGNER = "cd" * 32


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_stubs = None


def grpc_stubs():
    """Python modules generated from proto/coordinator.proto with grpc_tools (once)."""
    global _stubs
    if _stubs is None:
        out = tempfile.mkdtemp(prefix="mr-proto-")
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{SOURCE_DIR / 'proto'}",
                        f"--python_out={out}", f"--grpc_python_out={out}",
                        str(SOURCE_DIR / "proto" / "coordinator.proto")], check=True)
        sys.path.insert(0, out)
        import coordinator_pb2
        import coordinator_pb2_grpc
        _stubs = (coordinator_pb2, coordinator_pb2_grpc)
    return _stubs


class SoftSGX:
    """A softsgx test PKI (marblerun-softsgx init) and quotes from it."""

    def __init__(self, directory, tcb_status="UpToDate"):
        self.dir = pathlib.Path(directory)
        subprocess.run([BIN / "marblerun-softsgx", "init", self.dir, "--tcb-status", tcb_status,
                        "--valid-days", "30"], check=True, capture_output=True)

    def quote(self, report_data: bytes, mrenclave=MRENCLAVE, mrsigner=MRSIGNER, isvprodid=3,
              isvsvn=3, debug=False):
        args = [BIN / "marblerun-softsgx", "quote", self.dir, "--report-data", report_data.hex(),
                "--mrenclave", mrenclave, "--mrsigner", mrsigner, "--isvprodid", str(isvprodid),
                "--isvsvn", str(isvsvn)]
        if debug:
            args.append("--debug")
        return subprocess.run(args, check=True, capture_output=True).stdout

    def env(self, mrenclave=MRENCLAVE, mrsigner=MRSIGNER, isvprodid=3, isvsvn=3):
        return {
            "EDG_ATTESTATION": "softsgx",
            "EDG_SOFTSGX_DIR": str(self.dir),
            "EDG_ATTESTATION_ROOT_CA": str(self.dir / "root-ca.pem"),
            "EDG_ATTESTATION_COLLATERAL": str(self.dir / "collateral.json"),
            "EDG_SOFTSGX_MRENCLAVE": mrenclave,
            "EDG_SOFTSGX_MRSIGNER": mrsigner,
            "EDG_SOFTSGX_ISVPRODID": str(isvprodid),
            "EDG_SOFTSGX_ISVSVN": str(isvsvn),
        }


def sanitizer_excerpt(log):
    """The start of a sanitizer report (its first frames name the culprit), then the log's tail."""
    starts = [i for i in (log.find("==ERROR"), log.find("runtime error:"), log.find("Direct leak"))
              if i >= 0]
    head = log[max(0, min(starts) - 2000):min(starts) + 6000] if starts else ""
    return head + "\n[...]\n" + log[-2000:]


class Coordinator:
    """marblerun-coordinator on free loopback ports with its own seal dir."""

    def __init__(self, workdir, softsgx, extra_env=None):
        self.workdir = pathlib.Path(workdir)
        self.seal_dir = self.workdir / "seal"
        self.softsgx = softsgx
        self.client_port = free_port()
        self.mesh_port = free_port()
        self.metrics_port = free_port()
        self.extra_env = dict(extra_env or {})
        self.proc = None
        self.log_path = self.workdir / "coordinator.log"

    @property
    def url(self):
        return f"https://127.0.0.1:{self.client_port}"

    @property
    def mesh(self):
        return f"127.0.0.1:{self.mesh_port}"

    def env(self):
        env = dict(os.environ)
        env.update(self.softsgx.env() if self.softsgx is not None else {})
        env.update({
            "EDG_COORDINATOR_CLIENT_ADDR": f"127.0.0.1:{self.client_port}",
            "EDG_COORDINATOR_MESH_ADDR": f"127.0.0.1:{self.mesh_port}",
            "EDG_COORDINATOR_PROMETHEUS_ADDR": f"127.0.0.1:{self.metrics_port}",
            "EDG_COORDINATOR_SEAL_DIR": str(self.seal_dir),
        })
        env.update(self.extra_env)
        return env

    def start(self, expect_ready=True):
        for attempt in range(3):
            self.log = open(self.log_path, "ab")
            self.proc = subprocess.Popen([str(BIN / "marblerun-coordinator")], env=self.env(),
                                         stdout=self.log, stderr=subprocess.STDOUT, cwd=self.workdir)
            if not expect_ready:
                return self
            try:
                self.wait_ready()
                return self
            except RuntimeError:
                # A port picked by free_port() can be taken by another socket before the
                # daemon binds it; then pick new ports and start again.
                if attempt == 2 or self.proc.poll() is None or "cannot listen on" not in self.read_log():
                    raise
                self.log.close()
                self.proc = None
                self.client_port, self.mesh_port, self.metrics_port = free_port(), free_port(), free_port()
        return self

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"coordinator exited with {self.proc.returncode}:\n{self.read_log()}")
            try:
                r = requests.get(self.url + "/api/v2/status", verify=False, timeout=2)
                if r.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("coordinator did not become ready:\n" + self.read_log())

    def read_log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, check=True):
        """Stops the daemon; with check, a non-zero exit or a sanitizer report fails the test."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.log.close()
        rc = None if self.proc is None else self.proc.returncode
        self.proc = None
        if check and rc is not None:
            log = self.read_log()
            assert "Sanitizer" not in log and "runtime error:" not in log, sanitizer_excerpt(log)
            assert rc == 0, f"coordinator exited with {rc}:\n{log[-4000:]}"
        return rc

    def restart(self):
        self.stop()
        return self.start()

    # ---- REST helpers ----
    def get(self, path, **kw):
        return requests.get(self.url + path, verify=False, timeout=30, **kw)

    def post(self, path, data=None, **kw):
        return requests.post(self.url + path, data=data, verify=False, timeout=60, **kw)

    def status(self):
        return self.get("/api/v2/status").json()["data"]["code"]

    def set_manifest(self, manifest: bytes):
        r = self.post("/manifest", manifest)
        assert r.status_code == 200, r.text
        return r.json()["data"]

    def mesh_root_pem(self):
        """The certificate the mesh listener presents (the marble root)."""
        import ssl
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self_signed(key, "probe")
        with tempfile.TemporaryDirectory() as d:
            kp, cp = pathlib.Path(d) / "k.pem", pathlib.Path(d) / "c.pem"
            kp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
            cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            ctx.load_cert_chain(cp, kp)
            with socket.create_connection(("127.0.0.1", self.mesh_port)) as s:
                with ctx.wrap_socket(s) as t:
                    der = t.getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def self_signed(key, cn="MarbleRun Marble"):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))


class Marble:
    """A marble identity as the premain builds it: key, self-signed TLS cert, CSR, quote."""

    def __init__(self, softsgx, **quote_args):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = self_signed(self.key)
        self.cert_der = self.cert.public_bytes(serialization.Encoding.DER)
        self.softsgx = softsgx
        self.quote_args = quote_args

    def csr(self, dns=("localhost",)):
        b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
        if dns:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
        return b.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def quote(self, report_data=None):
        rd = report_data if report_data is not None else hashlib.sha256(self.cert_der).digest()
        return self.softsgx.quote(rd, **self.quote_args)

    def activate(self, coord, marble_type, uuid=None, quote=None, csr=None, timeout=60, root=None):
        import grpc
        pb, pbg = grpc_stubs()
        creds = grpc.ssl_channel_credentials(
            root_certificates=root if root is not None else coord.mesh_root_pem(),
            private_key=self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()),
            certificate_chain=self.cert.public_bytes(serialization.Encoding.PEM))
        with grpc.secure_channel(coord.mesh, creds,
                                 options=[("grpc.ssl_target_name_override", "localhost")]) as ch:
            stub = pbg.MarbleStub(ch)
            req = pb.ActivationReq(Quote=self.quote() if quote is None else quote,
                                   CSR=self.csr() if csr is None else csr,
                                   MarbleType=marble_type, UUID=uuid or str(uuidlib.uuid4()))
            return stub.Activate(req, timeout=timeout)
