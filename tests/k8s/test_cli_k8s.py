"""The CLI's Kubernetes commands against the real apiserver: install (chart rendered by the
CLI, server-side apply, webhook certificate through a self-approved CSR signed by the
harness's CSR signer), the installed webhook called by the apiserver (an injector process
serving the certificate install created), check, version, uninstall, precheck, namespace."""
import base64
import os
import subprocess
import time
import uuid

import pytest

import mrk8s
from test_injector import INJECTOR, Injector, env_of, pod, create_pod

CLI = mrk8s.BUILD_DIR / "bin" / "marblerun"


class Cli:
    def __init__(self, kube, home):
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = kube.write_kubeconfig(home / "kubeconfig")

    def popen(self, *args):
        e = {"HOME": str(self.home), "PATH": "/usr/bin:/bin", "KUBECONFIG": str(self.kubeconfig)}
        prefix = os.environ.get("MR_K8S_CLI_PREFIX", "").split()
        return subprocess.Popen([*prefix, str(CLI), *args], stdout=subprocess.PIPE, text=True,
                                env=e, cwd=self.home)

    def __call__(self, *args, check=True, timeout=180, env=None):
        e = {"HOME": str(self.home), "PATH": "/usr/bin:/bin", "KUBECONFIG": str(self.kubeconfig)}
        e.update(env or {})
        # MR_K8S_CLI_PREFIX runs the CLI under a tool, e.g. "valgrind -q --error-exitcode=9
        # --leak-check=full"
        prefix = os.environ.get("MR_K8S_CLI_PREFIX", "").split()
        p = subprocess.run([*prefix, str(CLI), *args], capture_output=True, text=True, env=e,
                           timeout=timeout * (10 if prefix else 1), cwd=self.home)
        if check and p.returncode != 0:
            pytest.fail(f"marblerun {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
        return p


@pytest.fixture
def cli(kube, tmp_path):
    return Cli(kube, tmp_path / "home")


def fresh_ns(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def deployment(kube, ns, name):
    return kube.get_or_none(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")


@pytest.fixture(scope="module")
def installed(kube, tmp_path_factory):
    """`marblerun install --simulation` into a fresh namespace, the CSR signer standing in for
    the controller-manager."""
    home = tmp_path_factory.mktemp("install")
    c = Cli(kube, home / "home")
    ns = fresh_ns("mr-inst")
    kube.start_csr_signer()
    t0 = time.time()
    try:
        p = c("install", "--simulation", "-n", ns)
    finally:
        kube.stop_csr_signer()
    print(f"install took {time.time() - t0:.1f} s")
    return c, ns, p


def test_install_simulation_objects(kube, installed):
    _, ns, p = installed
    lines = p.stdout.splitlines()
    assert lines[0].startswith("Setting up MarbleRun Webhook") and lines[0].endswith(" Done")
    assert set(lines[0][len("Setting up MarbleRun Webhook"):-len(" Done")]) <= {"."}
    assert lines[-1] == "MarbleRun installed successfully"
    d = deployment(kube, ns, "marblerun-coordinator")
    assert d["metadata"]["labels"]["app.kubernetes.io/version"] == "v1.9.1"
    pod_spec = d["spec"]["template"]["spec"]
    assert "tolerations" not in pod_spec
    c = pod_spec["containers"][0]
    env = env_of(c)
    assert env["OE_SIMULATION"] == "1"
    assert "limits" not in c.get("resources", {})
    assert kube.get_or_none(f"/api/v1/namespaces/{ns}/configmaps/coordinator-dcap-config") is None
    assert kube.get_or_none(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/coordinator-pv-claim")
    for svc in ("coordinator-client-api", "coordinator-mesh-api", "coordinator-metrics",
                "marble-injector"):
        assert kube.get_or_none(f"/api/v1/namespaces/{ns}/services/{svc}"), svc
    inj = deployment(kube, ns, "marble-injector")
    assert inj["spec"]["template"]["spec"]["containers"][0]["args"][-1] == \
        "-sgxResource=sgx.intel.com/epc"
    wh = kube.get(f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/"
                  f"marble-injector-{ns}")
    assert base64.b64decode(wh["webhooks"][0]["clientConfig"]["caBundle"]) == kube.ca_pem
    csr = kube.get(f"/apis/certificates.k8s.io/v1/certificatesigningrequests/marble-injector.{ns}")
    cond = csr["status"]["conditions"][0]
    assert (cond["type"], cond["reason"]) == ("Approved", "MarbleRunInstall")
    assert cond["message"] == "This CSR was automatically approved after creation with marblerun install."
    assert csr["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
    sec = kube.get(f"/api/v1/namespaces/{ns}/secrets/marble-injector-webhook-certs")
    assert base64.b64decode(sec["data"]["tls.key"]).startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    # the objects are owned by the CLI's field manager (server-side apply)
    managers = {m["manager"] for m in d["metadata"]["managedFields"]}
    assert "marblerun" in managers


def test_installed_webhook_injects(kube, installed, tmp_path):
    """The apiserver calls the webhook install configured; an injector process serves the
    certificate from the Secret install wrote (what the injector pod would mount)."""
    _, ns, _ = installed
    sec = kube.get(f"/api/v1/namespaces/{ns}/secrets/marble-injector-webhook-certs")
    (tmp_path / "tls.crt").write_bytes(base64.b64decode(sec["data"]["tls.crt"]))
    (tmp_path / "tls.key").write_bytes(base64.b64decode(sec["data"]["tls.key"]))
    inj = Injector.__new__(Injector)
    inj.kube, inj.ns, inj.dir = kube, ns, tmp_path
    inj.cert, inj.key = tmp_path / "tls.crt", tmp_path / "tls.key"
    port, ip = mrk8s.free_port(), mrk8s.host_ip()
    log = open(tmp_path / "injector.log", "wb")
    proc = subprocess.Popen([str(INJECTOR), f"-addr={ip}:{port}", f"-tlsCertFile={inj.cert}",
                             f"-tlsKeyFile={inj.key}", f"-coordAddr=coordinator-mesh-api.{ns}:2001"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        kube.create_service_account(ns, "default")  # the controller-manager's job
        kube.set_service_endpoint(ns, "marble-injector", port)
        probe = pod("probe", {"marblerun/marbletype": "probe"})
        last = []
        try:
            kube.wait_for(lambda: _mutated(kube, ns, probe, last), timeout=60, what="the webhook")
        except TimeoutError:
            pytest.fail(f"webhook not called: {last[-1:]}")
        create_pod(kube, ns, pod("web-0", {"marblerun/marbletype": "web"}))
        c = kube.get(f"/api/v1/namespaces/{ns}/pods/web-0")["spec"]["containers"][0]
        assert env_of(c)["EDG_MARBLE_COORDINATOR_ADDR"] == f"coordinator-mesh-api.{ns}:2001"
        assert c["resources"]["limits"]["sgx.intel.com/epc"] == "10Mi"  # also in simulation
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _mutated(kube, ns, body, errors):
    try:
        got = create_pod(kube, ns, body, dry_run=True)
    except mrk8s.KubeError as e:
        errors.append(e.message)
        return False  # webhook not reachable yet (failurePolicy Fail)
    return env_of(got["spec"]["containers"][0]).get("EDG_MARBLE_TYPE") == "probe"


def test_check_and_version(kube, installed):
    c, ns, _ = installed
    # not looked at by a Deployment controller yet (empty status): not ready, where upstream
    # would print 0/0 and pass
    p = c("check", "-n", ns, "--timeout", "1", check=False)
    assert p.returncode == 1, p.stdout
    assert p.stdout == "marble-injector pods ready: 0/0\n"
    assert "marble-injector was not ready after 1 seconds (0/0 pods available)" in p.stderr
    kube.set_deployment_status(ns, "marble-injector", 1, 0)
    t0 = time.time()
    p = c("check", "-n", ns, "--timeout", "2", check=False)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines()[-1] == \
        "Error: deployment marble-injector was not ready after 2 seconds (0/1 pods available)"
    assert "Error: deployment marble-injector was not ready after 2 seconds (0/1 pods available) \n" in p.stderr
    assert p.stdout == "marble-injector pods ready: 0/1\n"
    assert 0.9 < time.time() - t0 < 10
    kube.set_deployment_status(ns, "marble-injector", 1, 1)
    kube.set_deployment_status(ns, "marblerun-coordinator", 1, 1)
    t0 = time.time()
    p = c("check", "-n", ns, "--timeout", "1")  # no off-by-one: ready passes with 1
    assert p.stdout == "marble-injector pods ready: 1/1\nmarblerun-coordinator pods ready: 1/1\n"
    assert time.time() - t0 < 5
    # becomes ready while check waits
    kube.set_deployment_status(ns, "marblerun-coordinator", 2, 1)
    proc = c.popen("check", "-n", ns, "--timeout", "60")
    assert proc.stdout.readline() == "marble-injector pods ready: 1/1\n"
    assert proc.stdout.readline() == "marblerun-coordinator pods ready: 1/2\n"
    kube.set_deployment_status(ns, "marblerun-coordinator", 2, 2)  # while check polls
    assert proc.stdout.readline() == "marblerun-coordinator pods ready: 2/2\n"
    assert proc.wait(timeout=120) == 0
    p = c("version", "-n", ns)
    assert p.stdout.endswith("Coordinator Version: v1.9.1\n")
    p = c("check", "-n", "nothing-here")
    assert p.stdout == ("marble-injector is not installed on this cluster\n"
                        "marblerun-coordinator is not installed on this cluster\n")
    p = c("version", "-n", "nothing-here")
    assert p.stdout.endswith("Unable to find MarbleRun Coordinator\n")


def test_uninstall_keeps_runtime_state(kube, installed):
    c, ns, _ = installed
    kube.create(f"/api/v1/namespaces/{ns}/secrets",
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "marblerun-state"}})
    p = c("uninstall", "-n", ns)
    assert p.stdout == "MarbleRun successfully removed from your cluster\n"
    for path in (f"/apis/apps/v1/namespaces/{ns}/deployments/marblerun-coordinator",
                 f"/apis/apps/v1/namespaces/{ns}/deployments/marble-injector",
                 f"/api/v1/namespaces/{ns}/services/coordinator-client-api",
                 f"/api/v1/namespaces/{ns}/secrets/marble-injector-webhook-certs",
                 f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/marble-injector-{ns}",
                 f"/apis/certificates.k8s.io/v1/certificatesigningrequests/marble-injector.{ns}"):
        assert kube.get_or_none(path) is None, path
    assert kube.get_or_none(f"/api/v1/namespaces/{ns}/secrets/marblerun-state") is not None
    assert c("uninstall", "-n", ns).returncode == 0  # nothing left: still fine


def test_install_distributed_rbac(kube, cli):
    ns = fresh_ns("mr-ha")
    p = cli("install", "--distributed-deployment", "--disable-auto-injection",
            "--resource-key", "sgx.intel.com/epc", "--domain", "mr.example.com,10.1.2.3",
            "-n", ns)
    assert "Setting up MarbleRun Webhook" not in p.stdout
    assert p.stdout == "MarbleRun installed successfully\n"
    d = deployment(kube, ns, "marblerun-coordinator")
    assert d["spec"]["replicas"] == 1  # the flag does not scale
    c = d["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in c["env"]}
    assert env["EDG_COORDINATOR_STORE"]["value"] == "kubernetes"
    assert env["EDG_K8S_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["EDG_COORDINATOR_DNS_NAMES"]["value"].startswith("mr.example.com,10.1.2.3,localhost,")
    assert c["resources"]["limits"] == {"sgx.intel.com/epc": "10Mi", "sgx.intel.com/enclave": "1",
                                        "sgx.intel.com/provision": "1"}
    assert deployment(kube, ns, "marble-injector") is None
    assert kube.get_or_none(f"/api/v1/namespaces/{ns}/services/coordinator-key-api")
    # The Coordinator's account may do exactly what the Kubernetes store needs.
    token = kube.token(ns, "marblerun-coordinator")
    allowed = lambda verb, res, group="": _can(kube, token, ns, verb, res, group)
    for verb in ("get", "list", "watch", "create", "update", "patch"):
        assert allowed(verb, "secrets") and allowed(verb, "configmaps")
    assert allowed("list", "endpointslices", "discovery.k8s.io")
    assert allowed("watch", "endpointslices", "discovery.k8s.io")
    assert not allowed("delete", "secrets")
    assert not allowed("create", "endpointslices", "discovery.k8s.io")
    assert not allowed("get", "pods")


def _can(kube, token, ns, verb, resource, group):
    r = kube.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                     {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                      "spec": {"resourceAttributes": {"namespace": ns, "verb": verb,
                                                      "resource": resource, "group": group}}},
                     token=token)
    return r["status"]["allowed"]


def test_install_flag_errors(kube, cli, tmp_path):
    q = tmp_path / "qcnl.json"
    q.write_text("{}")
    p = cli("install", "--dcap-qcnl-config-file", str(q), "--dcap-pccs-url", "https://x/",
            check=False)
    assert p.returncode == 1
    assert p.stderr == ("Error: if any flags in the group [dcap-pccs-url dcap-qcnl-config-file] "
                        "are set none of the others can be; [dcap-pccs-url dcap-qcnl-config-file] "
                        "were all set\n")
    p = cli("install", "--wait", check=False)  # removed in v1.9.0
    assert p.returncode == 1 and "unknown flag: --wait" in p.stderr
    p = cli("install", env={"KUBECONFIG": str(tmp_path / "missing")}, check=False)
    assert p.returncode == 1
    assert p.stderr == f"Error: stat {tmp_path / 'missing'}: no such file or directory\n"


def test_install_sgx_values_and_qcnl_file(kube, cli, tmp_path):
    """Without --simulation: DCAP from the QCNL file, resource key Azure (detected from the
    node), tolerations and limits rewritten for it (spec §5.4 step 7)."""
    node = _sgx_node(kube, "azure-node", {"kubernetes.azure.com/sgx_epc_mem_in_MiB": "64"})
    try:
        ns = fresh_ns("mr-sgx")
        q = tmp_path / "qcnl.json"
        q.write_text('{"pccs_url": "https://pccs.local/", "use_secure_cert": false}\n')
        cli("install", "--disable-auto-injection", "--dcap-qcnl-config-file", str(q), "-n", ns)
        d = deployment(kube, ns, "marblerun-coordinator")
        spec = d["spec"]["template"]["spec"]
        keys = [t["key"] for t in spec["tolerations"]]
        assert keys == ["sgx.intel.com/epc", "kubernetes.azure.com/sgx_epc_mem_in_MiB"]
        assert spec["containers"][0]["resources"]["limits"] == {
            "kubernetes.azure.com/sgx_epc_mem_in_MiB": "10"}
        cm = kube.get(f"/api/v1/namespaces/{ns}/configmaps/coordinator-dcap-config")
        assert cm["data"]["sgx_default_qcnl.conf"] == q.read_text()
    finally:
        kube.delete(f"/api/v1/nodes/{node}")


def _sgx_node(kube, name, capacity):
    kube.create("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    kube.request("PATCH", f"/api/v1/nodes/{name}/status", {"status": {"capacity": capacity}},
                 content_type="application/merge-patch+json")
    return name


def test_precheck(kube, cli):
    p = cli("precheck")
    assert p.stdout == ("Cluster does not support SGX, you may still run MarbleRun in simulation mode\n"
                        "To install MarbleRun run [marblerun install --simulation]\n"
                        "If your nodes have SGX support you might be missing an SGX device plugin\n"
                        "Check https://edglss.cc/doc-mr-k8s-prereq for more information\n")
    n1 = _sgx_node(kube, "intel-node", {"sgx.intel.com/epc": "128Mi", "sgx.intel.com/enclave": "20",
                                        "sgx.intel.com/provision": "20"})
    n2 = _sgx_node(kube, "intel-partial", {"sgx.intel.com/epc": "128Mi", "sgx.intel.com/enclave": "0"})
    n3 = _sgx_node(kube, "alibaba-node", {"alibabacloud.com/sgx_epc_MiB": "32"})
    try:
        p = cli("precheck")
        assert p.stdout == "Cluster supports SGX on 2 node(s)\nTo install MarbleRun run [marblerun install]\n"
    finally:
        for n in (n1, n2, n3):
            kube.delete(f"/api/v1/nodes/{n}")


def test_namespace_commands(kube, cli):
    a, b = fresh_ns("mr-nsa"), fresh_ns("mr-nsb")
    kube.create_namespace(a)
    kube.create_namespace(b)
    p = cli("namespace", "add", a)
    assert p.stdout == f"Added namespace [{a}] to the MarbleRun mesh\n"
    cli("namespace", "add", b, "--no-sgx-injection")
    labels = kube.get(f"/api/v1/namespaces/{b}")["metadata"]["labels"]
    assert labels["marblerun/inject"] == "enabled" and labels["marblerun/inject-sgx"] == "disabled"
    out = cli("namespace", "list").stdout.splitlines()
    assert a in out and f"{b} (no SGX injection)" in out
    p = cli("namespace", "remove", a, b)
    assert p.stdout == (f"Namespace [{a}] successfully removed from the MarbleRun mesh\n"
                        f"Namespace [{b}] successfully removed from the MarbleRun mesh\n")
    assert "marblerun/inject" not in kube.get(f"/api/v1/namespaces/{a}")["metadata"].get("labels", {})
    assert cli("namespace", "list").stdout == "No namespaces have been added to the MarbleRun mesh\n"
    p = cli("namespace", "add", "does-not-exist", check=False)
    assert p.returncode == 1 and p.stderr == 'Error: namespaces "does-not-exist" not found\n'


def test_token_kubeconfig_and_rbac_errors(kube, tmp_path):
    """A kubeconfig with a bearer token (a service account): allowed calls work, the others
    fail with the apiserver's message."""
    ns = fresh_ns("mr-tok")
    kube.create_namespace(ns)
    kube.create_service_account(ns, "viewer")
    kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "viewer", "namespace": ns},
                "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}]})
    kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "viewer", "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "viewer"},
                "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": ns}]})
    c = Cli(kube, tmp_path / "home")
    c.kubeconfig = kube.write_kubeconfig(tmp_path / "token-kubeconfig", token=kube.token(ns, "viewer"))
    p = kube.wait_for(lambda: (lambda r: r if r.returncode == 0 else None)(
        c("check", "-n", ns, check=False)), what="RBAC to apply")
    assert p.stdout == ("marble-injector is not installed on this cluster\n"
                        "marblerun-coordinator is not installed on this cluster\n")
    p = c("precheck", check=False)
    assert p.returncode == 1
    assert p.stderr == (f'Error: nodes is forbidden: User "system:serviceaccount:{ns}:viewer" '
                        'cannot list resource "nodes" in API group "" at the cluster scope\n')


CRD = """{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
 "metadata": {"name": "%(plural)s.cert-manager.io"},
 "spec": {"group": "cert-manager.io", "scope": "Namespaced",
          "names": {"kind": "%(kind)s", "plural": "%(plural)s", "singular": "%(singular)s"},
          "versions": [{"name": "v1", "served": true, "storage": true,
                        "schema": {"openAPIV3Schema": {"type": "object",
                                   "x-kubernetes-preserve-unknown-fields": true}}}]}}"""


def test_install_with_cert_manager(kube, cli):
    """With cert-manager's API served, install leaves the webhook certificate to it (an
    Issuer and a Certificate of the chart, the CA injected by cert-manager's cainjector):
    no CSR, no Secret. The CRDs are cluster-wide: removed again at the end."""
    import json as _json
    crds = [("Issuer", "issuers", "issuer"), ("Certificate", "certificates", "certificate")]
    for kind, plural, singular in crds:
        kube.apply(_json.loads(CRD % {"kind": kind, "plural": plural, "singular": singular}))
    try:
        kube.wait_for(lambda: _served(kube, "/apis/cert-manager.io/v1", {"issuers", "certificates"}),
                      timeout=60, what="cert-manager CRDs")
        ns = fresh_ns("mr-cm")
        p = cli("install", "--simulation", "-n", ns)
        assert p.stdout == "Setting up MarbleRun Webhook... Done\nMarbleRun installed successfully\n"
        cert = kube.get(f"/apis/cert-manager.io/v1/namespaces/{ns}/certificates/marble-injector-serving-cert")
        assert cert["spec"]["secretName"] == "marble-injector-webhook-certs"
        assert kube.get_or_none(f"/apis/cert-manager.io/v1/namespaces/{ns}/issuers/"
                                "marble-injector-selfsigned-issuer")
        wh = kube.get(f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/"
                      f"marble-injector-{ns}")
        assert wh["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == \
            f"{ns}/marble-injector-serving-cert"
        assert "caBundle" not in wh["webhooks"][0]["clientConfig"]
        assert kube.get_or_none(f"/apis/certificates.k8s.io/v1/certificatesigningrequests/"
                                f"marble-injector.{ns}") is None
        cli("uninstall", "-n", ns)
        assert kube.get_or_none(f"/apis/cert-manager.io/v1/namespaces/{ns}/certificates/"
                                "marble-injector-serving-cert") is None
    finally:
        for _, plural, _ in crds:
            kube.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{plural}.cert-manager.io")
        kube.wait_for(lambda: kube.get_or_none("/apis/cert-manager.io/v1") is None, timeout=60,
                      what="cert-manager CRDs to go")


def _served(kube, path, names):
    doc = kube.get_or_none(path)
    return doc is not None and names <= {r["name"] for r in doc.get("resources", [])}


def test_kubeconfig_with_files_yaml_and_context(kube, tmp_path):
    """A YAML kubeconfig naming its CA and client pair as files relative to itself, with
    several contexts: the current one is used."""
    d = tmp_path / "kc"
    d.mkdir()
    (d / "ca.pem").write_bytes(kube.ca_pem)
    (d / "admin.crt").write_bytes(kube.admin_cert.read_bytes())
    (d / "admin.key").write_bytes(kube.admin_key.read_bytes())
    (d / "config").write_text(f"""\
apiVersion: v1
kind: Config
current-context: good
clusters:
- name: wrong
  cluster: {{server: "https://127.0.0.1:1"}}
- name: real
  cluster:
    server: {kube.url}
    certificate-authority: ca.pem
users:
- name: admin
  user:
    client-certificate: admin.crt
    client-key: admin.key
contexts:
- name: bad
  context: {{cluster: wrong, user: admin}}
- name: good
  context: {{cluster: real, user: admin}}
""")
    c = Cli(kube, tmp_path / "home")
    c.kubeconfig = d / "config"
    p = c("check", "-n", "nothing-here-either")
    assert p.stdout.endswith("marblerun-coordinator is not installed on this cluster\n")
