"""A real Kubernetes control plane on loopback for the tests: Debian's etcd and a kube-apiserver
built from the k8s.io/kubernetes Go module (tests/k8s/tools/apiserver, cached in the build
folder by scripts/k8s-tools), with a generated PKI, a service-account token signing key, an admin
kubeconfig, and helpers for what a cluster's controllers would otherwise do (default service
accounts, Deployment status, signing approved CSRs) and for in-cluster-style clients.

There is no kubelet, scheduler or controller-manager here: objects are stored, validated,
admitted (webhooks included) and served exactly as in a cluster, but nothing runs them unless a
test adds mrnode.Node, which runs pods as local processes in their own network and mount
namespaces.

API (kept stable; new helpers are added, existing ones are not changed):
    kube_apiserver_path(build_dir=None) -> pathlib.Path   where the binary is (built on demand)
    ensure_kube_apiserver(build_dir=None) -> pathlib.Path build it if missing, return the path
    free_port() -> int
    host_ip() -> str                a non-loopback IPv4 of this host (EndpointSlices reject
                                    loopback; $MR_K8S_HOST_IP overrides)
    Pki(dir)                    .ca_pem, .ca_file, .issue(name, cn, orgs=(), dns=(), ips=(),
                                server=True, client=False, key="ec"|"rsa") -> (cert_file, key_file)
    KubeCluster(workdir, build_dir=None)
        .start(timeout=120) / .stop()   also a context manager
        .host, .port, .url, .ca_file, .ca_pem, .kubeconfig (admin, system:masters)
        .request(method, path, body=None, params=None, content_type=None, token=None,
                 expect=(200, 201)) -> decoded JSON (dict) or raises KubeError
        .get(path) / .get_or_none(path) / .create(path, obj) / .delete(path)
        .apply(obj, field_manager="mrk8s", force=True, dry_run=False, strict=False)
                                             server-side apply of one object (dry_run: validated
                                             and admitted, not stored; strict: unknown fields fail)
        .object_path(obj) -> str           the REST path of an object
        .create_namespace(name, labels=None)  (also its "default" ServiceAccount)
        .create_service_account(ns, name)
        .token(ns, sa, seconds=3600, audiences=None) -> str   (TokenRequest API)
        .serviceaccount_dir(ns, sa, dest) -> pathlib.Path     token, ca.crt, namespace files as a
                                             pod sees them in /var/run/secrets/kubernetes.io/serviceaccount
        .in_cluster_env() -> dict           KUBERNETES_SERVICE_HOST/PORT (+ EDG_ copies)
        .write_kubeconfig(path, token=None, namespace=None) -> path   a kubeconfig for a token
                                             user (or the admin certificate when token is None)
        .set_service_endpoint(ns, service, port, ip=None, port_name="", ready=True,
                              slice_name=None)   EndpointSlice that routes a Service to a local
                                             process listening on ip (default host_ip(); the
                                             apiserver calls webhooks this way)
        .set_deployment_status(ns, name, replicas, available)  what the controllers would write
        .sign_approved_csrs(signer="kubernetes.io/kubelet-serving") -> [names]  what the
                                             controller-manager's CSR signer does, once
        .start_csr_signer() / .stop_csr_signer()  the same in a background thread
        .wait_for(fn, timeout=30, interval=0.1, what="condition") -> fn's truthy value
        .log_text() -> str                 the apiserver's log so far (for failure messages)
KubeError(status, reason, message, body)  .status (HTTP), .reason, .message (Status.message)
"""
import base64
import datetime
import ipaddress
import json
import os
import pathlib
import random
import shutil
import signal
import socket
import subprocess
import threading
import time

import requests
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

SOURCE_DIR = pathlib.Path(os.environ.get("MR_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
BUILD_DIR = pathlib.Path(os.environ.get("MR_BUILD_DIR", SOURCE_DIR / "build"))
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
SERVICE_CIDR = "10.96.0.0/24"
KUBERNETES_SERVICE_IP = "10.96.0.1"


def free_port():
    """A free loopback port below the kernel's ephemeral range: a port handed out by bind(0)
    is in that range, and an outgoing connection of another process (a load test on the same
    machine) may take it as its local port before our server binds it."""
    try:
        low = int(pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(10000, max(low, 10001))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host_ip():
    """A non-loopback IPv4 address of this host. EndpointSlices may not hold loopback
    addresses (the apiserver rejects them), so a process that a Service routes to
    (set_service_endpoint) listens on this address. $MR_K8S_HOST_IP overrides."""
    env = os.environ.get("MR_K8S_HOST_IP")
    if env:
        return env
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent; picks the source address
            ip = s.getsockname()[0]
        except OSError:
            ip = ""
    if ip and not ipaddress.ip_address(ip).is_loopback:
        return ip
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    for ip in out:
        a = ipaddress.ip_address(ip)
        if a.version == 4 and not a.is_loopback and not a.is_link_local:
            return ip
    raise RuntimeError("no non-loopback IPv4 address for EndpointSlices (set MR_K8S_HOST_IP)")


def kube_apiserver_path(build_dir=None):
    """The cached binary: $MR_KUBE_APISERVER, else <build>/k8s-tools/bin/kube-apiserver."""
    env = os.environ.get("MR_KUBE_APISERVER")
    if env:
        return pathlib.Path(env)
    return pathlib.Path(build_dir or BUILD_DIR) / "k8s-tools" / "bin" / "kube-apiserver"


def ensure_kube_apiserver(build_dir=None):
    """Build kube-apiserver with scripts/k8s-tools if it is not cached yet."""
    path = kube_apiserver_path(build_dir)
    if not path.exists():
        subprocess.run([str(SOURCE_DIR / "scripts" / "k8s-tools"), str(build_dir or BUILD_DIR),
                        "kube-apiserver"], check=True)
    return path


class KubeError(Exception):
    def __init__(self, status, reason, message, body):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body


class Pki:
    """A cluster CA (ECDSA P-256) and certificates issued by it."""

    def __init__(self, directory, cn="mrk8s-ca"):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.ca_cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                        .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
                        .not_valid_before(now - datetime.timedelta(minutes=5))
                        .not_valid_after(now + datetime.timedelta(days=30))
                        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                                     crl_sign=True, content_commitment=False,
                                                     key_encipherment=False, data_encipherment=False,
                                                     key_agreement=False, encipher_only=False,
                                                     decipher_only=False), critical=True)
                        .sign(self.ca_key, hashes.SHA256()))
        self.ca_pem = self.ca_cert.public_bytes(serialization.Encoding.PEM)
        self.ca_file = self.dir / "ca.crt"
        self.ca_file.write_bytes(self.ca_pem)
        self.ca_key_file = self.dir / "ca.key"
        self.ca_key_file.write_bytes(self.ca_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    def sign(self, public_key, subject, dns=(), ips=(), server=True, client=False, days=30):
        now = datetime.datetime.now(datetime.timezone.utc)
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(self.ca_cert.subject)
             .public_key(public_key).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=days))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + \
                 ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
        if usages:
            b = b.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return b.sign(self.ca_key, hashes.SHA256())

    def issue(self, name, cn, orgs=(), dns=(), ips=(), server=True, client=False, key="ec"):
        """Write <name>.crt and <name>.key (PKCS#8 for EC, PKCS#1 for RSA); return both paths."""
        k = ec.generate_private_key(ec.SECP256R1()) if key == "ec" else \
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
        cert = self.sign(k.public_key(), x509.Name(attrs), dns, ips, server, client)
        cf, kf = self.dir / f"{name}.crt", self.dir / f"{name}.key"
        cf.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        fmt = serialization.PrivateFormat.PKCS8 if key == "ec" else \
            serialization.PrivateFormat.TraditionalOpenSSL
        kf.write_bytes(k.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()))
        os.chmod(kf, 0o600)
        return cf, kf


def _kubeconfig(server, ca_pem, user, namespace=None):
    ctx = {"cluster": "mrk8s", "user": "mrk8s-user"}
    if namespace:
        ctx["namespace"] = namespace
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "mrk8s",
        "clusters": [{"name": "mrk8s", "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": "mrk8s-user", "user": user}],
        "contexts": [{"name": "mrk8s", "context": ctx}],
    }


class KubeCluster:
    """etcd + kube-apiserver on free loopback ports, all state under workdir."""

    def __init__(self, workdir, build_dir=None):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.build_dir = pathlib.Path(build_dir or BUILD_DIR)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.etcd_port = free_port()
        self.etcd_peer_port = free_port()
        self.url = f"https://{self.host}:{self.port}"
        self.etcd_proc = None
        self.proc = None
        self._signer = None
        self._signer_stop = threading.Event()
        pki = self.workdir / "pki"
        self.pki = Pki(pki)
        self.ca_file = self.pki.ca_file
        self.ca_pem = self.pki.ca_pem
        self.serving_cert, self.serving_key = self.pki.issue(
            "apiserver", "kube-apiserver",
            dns=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local"],
            ips=["127.0.0.1", KUBERNETES_SERVICE_IP])
        self.admin_cert, self.admin_key = self.pki.issue(
            "admin", "mrk8s-admin", orgs=["system:masters"], server=False, client=True)
        self.sa_key_file = pki / "sa.key"
        self.sa_pub_file = pki / "sa.pub"
        sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.sa_key_file.write_bytes(sa.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()))
        self.sa_pub_file.write_bytes(sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        self.kubeconfig = self.workdir / "kubeconfig"
        self._write_json(self.kubeconfig, _kubeconfig(self.url, self.ca_pem, {
            "client-certificate-data": base64.b64encode(self.admin_cert.read_bytes()).decode(),
            "client-key-data": base64.b64encode(self.admin_key.read_bytes()).decode()}))
        self.session = requests.Session()
        # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the environment would override verify (a
        # requests quirk), and no proxy applies on loopback.
        self.session.trust_env = False
        self.session.verify = str(self.ca_file)
        self.session.cert = (str(self.admin_cert), str(self.admin_key))
        # Token requests go without the admin certificate (a request-level cert=None would
        # fall back to the session's).
        self.token_session = requests.Session()
        self.token_session.trust_env = False
        self.token_session.verify = str(self.ca_file)

    @staticmethod
    def _write_json(path, obj):
        # JSON is YAML: client-go, our CLI and kubectl all read it as a kubeconfig.
        pathlib.Path(path).write_text(json.dumps(obj, indent=2) + "\n")
        os.chmod(path, 0o600)

    # ---- lifecycle ----------------------------------------------------------------------

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _start_etcd(self):
        log = open(self.workdir / "etcd.log", "ab")
        c = f"http://{self.host}:{self.etcd_port}"
        p = f"http://{self.host}:{self.etcd_peer_port}"
        self.etcd_proc = subprocess.Popen(
            [ETCD, "--name", "mrk8s", "--data-dir", str(self.workdir / "etcd-data"),
             "--listen-client-urls", c, "--advertise-client-urls", c,
             "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
             "--initial-cluster", f"mrk8s={p}", "--initial-cluster-state", "new",
             "--max-request-bytes", "33554432", "--quota-backend-bytes", str(2 << 30),
             "--log-level", "error", "--logger", "zap"],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def _apiserver_args(self, binary):
        return [str(binary),
                f"--etcd-servers=http://{self.host}:{self.etcd_port}",
                f"--bind-address={self.host}", f"--advertise-address={self.host}",
                f"--secure-port={self.port}",
                f"--tls-cert-file={self.serving_cert}", f"--tls-private-key-file={self.serving_key}",
                f"--client-ca-file={self.ca_file}",
                f"--service-account-key-file={self.sa_pub_file}",
                f"--service-account-signing-key-file={self.sa_key_file}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=RBAC",
                # Webhooks and other service references resolve through EndpointSlices, so a
                # Service can point at a process on loopback (set_service_endpoint).
                "--enable-aggregator-routing=true",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                "--allow-privileged=true", "--profiling=false", "--v=1"]

    def start(self, timeout=120):
        binary = ensure_kube_apiserver(self.build_dir)
        self._start_etcd()
        log = open(self.workdir / "kube-apiserver.log", "ab")
        self.proc = subprocess.Popen(self._apiserver_args(binary), stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("kube-apiserver exited:\n" + self.log_text()[-4000:])
            try:
                r = self.session.get(self.url + "/readyz", timeout=2)
                if r.status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.time() > deadline:
                raise RuntimeError("kube-apiserver not ready:\n" + self.log_text()[-4000:])
            time.sleep(0.25)
        # The service-account controller is not running: give "default" its account.
        self.wait_for(lambda: self.get_or_none("/api/v1/namespaces/default"), what="namespace default")
        self.create_service_account("default", "default")
        return self

    def stop(self):
        self.stop_csr_signer()
        for p in (self.proc, self.etcd_proc):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.proc = self.etcd_proc = None

    def log_text(self):
        try:
            return (self.workdir / "kube-apiserver.log").read_text(errors="replace")
        except OSError:
            return ""

    # ---- REST ---------------------------------------------------------------------------

    def request(self, method, path, body=None, params=None, content_type=None, token=None,
                expect=(200, 201)):
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            headers["Content-Type"] = content_type or "application/json"
        session = self.session
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
            session = self.token_session
        r = session.request(method, self.url + path, data=data, params=params,
                            headers=headers, timeout=30)
        if r.status_code not in expect:
            try:
                st = r.json()
            except ValueError:
                st = {"message": r.text}
            raise KubeError(r.status_code, st.get("reason", ""), st.get("message", r.text), st)
        return r.json() if r.content else {}

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def get_or_none(self, path):
        try:
            return self.get(path)
        except KubeError as e:
            if e.status == 404:
                return None
            raise

    def create(self, path, obj, **kw):
        return self.request("POST", path, obj, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, expect=(200, 202), **kw)

    def object_path(self, obj):
        """The REST path of one object from its apiVersion, kind, name and namespace (the
        kinds the tests use; others through the discovery documents)."""
        api = obj["apiVersion"]
        kind = obj["kind"]
        meta = obj.get("metadata", {})
        plural = self._plural(api, kind)
        base = "/api/v1" if api == "v1" else f"/apis/{api}"
        ns = meta.get("namespace")
        if ns and self._namespaced(api, kind):
            base += f"/namespaces/{ns}"
        return f"{base}/{plural}/{meta['name']}"

    def _resources(self, api):
        if not hasattr(self, "_discovery"):
            self._discovery = {}
        if api not in self._discovery:
            doc = self.get("/api/v1" if api == "v1" else f"/apis/{api}")
            self._discovery[api] = {r["kind"]: r for r in doc["resources"] if "/" not in r["name"]}
        return self._discovery[api]

    def _plural(self, api, kind):
        return self._resources(api)[kind]["name"]

    def _namespaced(self, api, kind):
        return self._resources(api)[kind]["namespaced"]

    def apply(self, obj, field_manager="mrk8s", force=True, dry_run=False, strict=False):
        params = {"fieldManager": field_manager}
        if force:
            params["force"] = "true"
        if dry_run:
            params["dryRun"] = "All"
        if strict:
            params["fieldValidation"] = "Strict"
        return self.request("PATCH", self.object_path(obj), obj, params=params,
                            content_type="application/apply-patch+yaml")

    # ---- namespaces, accounts, tokens ---------------------------------------------------

    def create_namespace(self, name, labels=None):
        obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        if labels:
            obj["metadata"]["labels"] = dict(labels)
        try:
            self.create("/api/v1/namespaces", obj)
        except KubeError as e:
            if e.status != 409:
                raise
        self.create_service_account(name, "default")

    def create_service_account(self, ns, name):
        try:
            self.create(f"/api/v1/namespaces/{ns}/serviceaccounts",
                        {"apiVersion": "v1", "kind": "ServiceAccount",
                         "metadata": {"name": name, "namespace": ns}})
        except KubeError as e:
            if e.status != 409:
                raise

    def token(self, ns, sa, seconds=3600, audiences=None):
        spec = {"expirationSeconds": seconds}
        if audiences:
            spec["audiences"] = list(audiences)
        r = self.create(f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
                        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                         "spec": spec})
        return r["status"]["token"]

    def serviceaccount_dir(self, ns, sa, dest):
        """What a pod of that service account sees in /var/run/secrets/kubernetes.io/
        serviceaccount: token, ca.crt and namespace."""
        d = pathlib.Path(dest)
        d.mkdir(parents=True, exist_ok=True)
        (d / "token").write_text(self.token(ns, sa))
        (d / "ca.crt").write_bytes(self.ca_pem)
        (d / "namespace").write_text(ns)
        return d

    def in_cluster_env(self):
        """The variables the kubelet sets in every container (and the EDG_ copies that
        MarbleRun's Coordinator image's start script makes)."""
        h, p = self.host, str(self.port)
        return {"KUBERNETES_SERVICE_HOST": h, "KUBERNETES_SERVICE_PORT": p,
                "EDG_KUBERNETES_SERVICE_HOST": h, "EDG_KUBERNETES_SERVICE_PORT": p}

    def write_kubeconfig(self, path, token=None, namespace=None):
        if token is None:
            user = {"client-certificate-data": base64.b64encode(self.admin_cert.read_bytes()).decode(),
                    "client-key-data": base64.b64encode(self.admin_key.read_bytes()).decode()}
        else:
            user = {"token": token}
        self._write_json(path, _kubeconfig(self.url, self.ca_pem, user, namespace))
        return pathlib.Path(path)

    # ---- what controllers and kubelets would do -----------------------------------------

    def set_service_endpoint(self, ns, service, port, ip=None, port_name="", ready=True,
                             slice_name=None):
        """ip defaults to host_ip(): the apiserver rejects loopback addresses in EndpointSlices,
        so the process behind the Service must listen on that address (or on all)."""
        name = slice_name or f"{service}-mrk8s"
        ip = ip or host_ip()
        self.apply({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}}],
            "ports": [{"name": port_name, "port": int(port), "protocol": "TCP"}],
        })

    def set_deployment_status(self, ns, name, replicas, available):
        path = f"/apis/apps/v1/namespaces/{ns}/deployments/{name}/status"
        body = {"status": {"replicas": replicas, "availableReplicas": available,
                           "readyReplicas": available, "updatedReplicas": replicas,
                           "observedGeneration": 1}}
        return self.request("PATCH", path, body, content_type="application/merge-patch+json")

    def sign_approved_csrs(self, signer="kubernetes.io/kubelet-serving", days=365):
        signed = []
        for csr in self.get("/apis/certificates.k8s.io/v1/certificatesigningrequests")["items"]:
            st = csr.get("status", {})
            approved = any(c.get("type") == "Approved" for c in st.get("conditions", []))
            if not approved or st.get("certificate") or csr["spec"].get("signerName") != signer:
                continue
            req = x509.load_pem_x509_csr(base64.b64decode(csr["spec"]["request"]))
            try:
                san = req.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                dns = san.get_values_for_type(x509.DNSName)
                ips = [str(i) for i in san.get_values_for_type(x509.IPAddress)]
            except x509.ExtensionNotFound:
                dns, ips = [], []
            cert = self.pki.sign(req.public_key(), req.subject, dns, ips, server=True, days=days)
            csr["status"]["certificate"] = base64.b64encode(
                cert.public_bytes(serialization.Encoding.PEM)).decode()
            name = csr["metadata"]["name"]
            self.request("PUT", f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}/status", csr)
            signed.append(name)
        return signed

    def start_csr_signer(self, interval=0.2):
        if self._signer is not None:
            return
        self._signer_stop.clear()

        def run():
            while not self._signer_stop.wait(interval):
                try:
                    self.sign_approved_csrs()
                except (KubeError, requests.RequestException, ValueError):
                    pass

        self._signer = threading.Thread(target=run, daemon=True)
        self._signer.start()

    def stop_csr_signer(self):
        if self._signer is not None:
            self._signer_stop.set()
            self._signer.join(timeout=5)
            self._signer = None

    def wait_for(self, fn, timeout=30, interval=0.1, what="condition"):
        deadline = time.time() + timeout
        while True:
            v = fn()
            if v:
                return v
            if time.time() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(interval)
