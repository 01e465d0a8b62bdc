"""charts/marblerun: helm lint and helm template with the value sets users use, and every
rendered object validated by the real apiserver (server-side apply, dry run, strict field
validation: the OpenAPI schema)."""
import json
import uuid

import pytest

from chart import CHART, DATA, NO_SCHEMA, by_kind, env_of, helm, helm_template

VARIANTS = {
    "default": {},
    "injector": {"sets": ["marbleInjector.start=true", "marbleInjector.CABundle=Y2E="]},
    "cert-manager": {"sets": ["marbleInjector.start=true", "marbleInjector.useCertManager=true"]},
    "distributed": {"sets": ["coordinator.distributedDeployment=true", "coordinator.replicas=3",
                             "marbleInjector.start=true", "marbleInjector.CABundle=Y2E="]},
    "simulation": {"sets": ["coordinator.simulation=true", "tolerations=null",
                            "coordinator.resources.limits=null", "dcap=null"]},
    "upstream-values": {"values_files": [DATA / "upstream-values.yaml"]},
}


def render(name, ns="marblerun"):
    v = VARIANTS[name]
    return helm_template(ns, v.get("values_files", ()), v.get("sets", ()))


def test_helm_lint():
    for args in ([], ["--set", "marbleInjector.start=true,marbleInjector.useCertManager=true"],
                 ["--set", "coordinator.distributedDeployment=true"],
                 ["-f", str(DATA / "upstream-values.yaml")]):
        r = helm("lint", "--strict", str(CHART), *args)
        assert "0 chart(s) failed" in r.stdout


def test_default_objects():
    objs = by_kind(render("default"))
    assert set(objs) == {
        ("Deployment", "marblerun-coordinator"), ("Service", "coordinator-client-api"),
        ("Service", "coordinator-mesh-api"), ("Service", "coordinator-metrics"),
        ("PersistentVolumeClaim", "coordinator-pv-claim"),
        ("ServiceAccount", "marblerun-coordinator"), ("Role", "marblerun-coordinator"),
        ("RoleBinding", "marblerun-coordinator"), ("ConfigMap", "coordinator-dcap-config")}
    d = objs[("Deployment", "marblerun-coordinator")]
    assert d["metadata"]["labels"]["app.kubernetes.io/version"] == "v1.9.1"
    assert d["spec"]["replicas"] == 1
    pod = d["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "marblerun-coordinator"
    assert pod["tolerations"] == [{"key": "sgx.intel.com/epc", "operator": "Exists",
                                   "effect": "NoSchedule"}]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    c = pod["containers"][0]
    assert c["image"] == "ghcr.io/edgelesssys/marblerun/coordinator:v1.9.1"
    env = env_of(c)
    assert env["EDG_COORDINATOR_MESH_ADDR"] == "0.0.0.0:2001"
    assert env["EDG_COORDINATOR_CLIENT_ADDR"] == "0.0.0.0:4433"
    assert env["EDG_COORDINATOR_DNS_NAMES"] == (
        "localhost,coordinator-mesh-api,coordinator-client-api,coordinator-mesh-api.marblerun,"
        "coordinator-client-api.marblerun,coordinator-mesh-api.marblerun.svc.cluster.local,"
        "coordinator-client-api.marblerun.svc.cluster.local")
    assert env["OE_SIMULATION"] == "0" and env["EDG_COORDINATOR_SEAL_DIR"] == "/coordinator/data/"
    assert "EDG_COORDINATOR_STORE" not in env
    assert c["resources"]["limits"] == {"sgx.intel.com/epc": "10Mi", "sgx.intel.com/enclave": 1,
                                        "sgx.intel.com/provision": 1}
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == \
        {"http": 4433, "grpc": 2001, "metrics": 9944}
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["coordinator-pv-storage"]["persistentVolumeClaim"]["claimName"] == "coordinator-pv-claim"
    assert vols["dcap-conf"]["configMap"]["name"] == "coordinator-dcap-config"
    ports = lambda s: {(p["name"], p["port"]) for p in objs[("Service", s)]["spec"]["ports"]}
    assert ports("coordinator-client-api") == {("http", 4433)}
    assert ports("coordinator-mesh-api") == {("grpc", 2001)}
    assert ports("coordinator-metrics") == {("metrics", 9944)}
    qcnl = json.loads(objs[("ConfigMap", "coordinator-dcap-config")]["data"]["sgx_default_qcnl.conf"])
    assert qcnl == {"pccs_url": "https://global.acccache.azure.net/sgx/certification/v4/",
                    "use_secure_cert": True}
    pvc = objs[("PersistentVolumeClaim", "coordinator-pv-claim")]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Mi"
    assert "storageClassName" not in pvc["spec"]
    rules = objs[("Role", "marblerun-coordinator")]["rules"]
    assert {"apiGroups": [""], "resources": ["secrets", "configmaps"],
            "verbs": ["get", "list", "watch", "create", "update", "patch"]} in rules
    assert {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
            "verbs": ["list", "watch"]} in rules


def test_injector_objects():
    objs = by_kind(render("injector", ns="mr-x"))
    wh = objs[("MutatingWebhookConfiguration", "marble-injector-mr-x")]
    assert "annotations" not in wh["metadata"]
    (hook,) = wh["webhooks"]
    assert hook["name"] == "marble-injector-mr-x.cluster.local"
    assert hook["clientConfig"] == {"caBundle": "Y2E=", "service": {
        "name": "marble-injector", "namespace": "mr-x", "path": "/mutate"}}
    assert "failurePolicy" not in hook
    assert hook["objectSelector"] == {"matchExpressions": [
        {"key": "marblerun/marbletype", "operator": "Exists", "values": []}]}
    assert hook["sideEffects"] == "None" and hook["admissionReviewVersions"] == ["v1", "v1beta1"]
    d = objs[("Deployment", "marble-injector")]
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == ["-coordAddr=coordinator-mesh-api.mr-x:2001",
                         "-tlsCertFile=/etc/webhook/certs/tls.crt",
                         "-tlsKeyFile=/etc/webhook/certs/tls.key",
                         "-sgxResource=sgx.intel.com/epc"]
    assert d["spec"]["template"]["metadata"]["annotations"] == {
        "openservicemesh.io/sidecar-injection": "disabled"}
    svc = objs[("Service", "marble-injector")]
    assert svc["spec"]["ports"] == [{"port": 443, "targetPort": 8443}]
    cm = by_kind(render("cert-manager", ns="mr-x"))
    wh = cm[("MutatingWebhookConfiguration", "marble-injector-mr-x")]
    assert wh["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": "mr-x/marble-injector-serving-cert"}
    cert = cm[("Certificate", "marble-injector-serving-cert")]
    assert cert["spec"]["dnsNames"] == ["marble-injector.mr-x.svc",
                                        "marble-injector.mr-x.svc.cluster.local"]
    assert cert["spec"]["secretName"] == "marble-injector-webhook-certs"
    assert ("Issuer", "marble-injector-selfsigned-issuer") in cm


def test_auto_injection_off():
    kinds = {k for k, _ in by_kind(render("default"))}
    assert "MutatingWebhookConfiguration" not in kinds
    assert ("Deployment", "marble-injector") not in by_kind(render("default"))


def test_distributed_deployment():
    objs = by_kind(render("distributed", ns="ha"))
    d = objs[("Deployment", "marblerun-coordinator")]
    assert d["spec"]["replicas"] == 3
    c = d["spec"]["template"]["spec"]["containers"][0]
    env = env_of(c)
    assert env["EDG_COORDINATOR_STORE"] == "kubernetes"
    assert env["EDG_K8S_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["EDG_K8S_STATE_NAME"] == "marblerun-state"
    assert env["EDG_K8S_SERVICE_NAME"] == "coordinator-key-api"
    assert env["EDG_COORDINATOR_DNS_NAMES"].endswith(
        ",coordinator-key-api,coordinator-key-api.ha,coordinator-key-api.ha.svc.cluster.local")
    key = objs[("Service", "coordinator-key-api")]
    assert key["spec"]["ports"] == [{"name": "grpc", "port": 5433, "targetPort": 5433,
                                     "appProtocol": "tcp"}]
    assert ("PersistentVolumeClaim", "coordinator-pv-claim") not in objs
    assert all(v["name"] != "coordinator-pv-storage"
               for v in d["spec"]["template"]["spec"]["volumes"])


def test_simulation_values():
    objs = by_kind(render("simulation"))
    pod = objs[("Deployment", "marblerun-coordinator")]["spec"]["template"]["spec"]
    assert "tolerations" not in pod
    c = pod["containers"][0]
    assert env_of(c)["OE_SIMULATION"] == "1"
    assert "limits" not in c.get("resources", {})
    assert ("ConfigMap", "coordinator-dcap-config") not in objs


def test_upstream_values_file():
    objs = by_kind(render("upstream-values"))
    d = objs[("Deployment", "marblerun-coordinator")]
    pod = d["spec"]["template"]
    assert pod["metadata"]["labels"]["team"] == "payments"
    c = pod["spec"]["containers"][0]
    assert c["image"] == ("ghcr.io/edgelesssys/marblerun/coordinator:v1.9.1@sha256:"
                          "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    assert env_of(c)["EDG_COORDINATOR_DNS_NAMES"].startswith("marblerun.example.com,10.0.0.5,localhost,")
    assert c["resources"]["limits"]["kubernetes.azure.com/sgx_epc_mem_in_MiB"] == 10
    assert c["readinessProbe"]["failureThreshold"] == 10
    assert c["readinessProbe"]["timeoutSeconds"] == 30  # the rest of the defaults stay
    sa = objs[("ServiceAccount", "marblerun-coordinator")]
    assert sa["imagePullSecrets"] == [{"name": "regcred"}]
    pvc = objs[("PersistentVolumeClaim", "coordinator-pv-claim")]
    assert pvc["spec"]["storageClassName"] == "managed-csi"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Mi"
    qcnl = json.loads(objs[("ConfigMap", "coordinator-dcap-config")]["data"]["sgx_default_qcnl.conf"])
    assert qcnl == {"pccs_url": "https://pccs.example.com/sgx/certification/v4/",
                    "use_secure_cert": False}
    inj = objs[("Deployment", "marble-injector")]["spec"]["template"]["spec"]["containers"][0]
    assert inj["args"][-1] == "-sgxResource=kubernetes.azure.com/sgx_epc_mem_in_MiB"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_objects_valid_for_the_apiserver(kube, variant):
    ns = f"chart-{variant}-{uuid.uuid4().hex[:6]}"
    kube.create_namespace(ns)
    checked = 0
    for obj in render(variant, ns=ns):
        if (obj["apiVersion"], obj["kind"]) in NO_SCHEMA:
            continue
        kube.apply(obj, field_manager="marblerun", dry_run=True, strict=True)
        checked += 1
    assert checked >= 8
