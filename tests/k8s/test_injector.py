"""marblerun-injector behind a real kube-apiserver: the apiserver calls the webhook on pod
creation (Service -> EndpointSlice -> the injector on loopback, TLS verified against the
caBundle for marble-injector.<ns>.svc), and the tests read the mutated pods back."""
import os
import pathlib
import signal
import socket
import ssl
import subprocess
import time
import uuid

import pytest
import requests

import mrk8s

INJECTOR = mrk8s.BUILD_DIR / "bin" / "marblerun-injector"


class Injector:
    def __init__(self, kube, ns, workdir, extra_args=()):
        self.kube, self.ns = kube, ns
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert, self.key = self.issue()
        self.port = mrk8s.free_port()
        self.ip = mrk8s.host_ip()  # what the EndpointSlice may name (not loopback)
        self.log = open(self.dir / "injector.log", "wb")
        # MR_K8S_INJECTOR_PREFIX runs it under a tool (e.g. valgrind --error-exitcode=9)
        prefix = os.environ.get("MR_K8S_INJECTOR_PREFIX", "").split()
        self.proc = subprocess.Popen(
            [*prefix, str(INJECTOR), f"-addr={self.ip}:{self.port}", f"-tlsCertFile={self.cert}",
             f"-tlsKeyFile={self.key}", f"-coordAddr=coordinator-mesh-api.{ns}:2001",
             *extra_args], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while True:
            assert self.proc.poll() is None, self.log_text()
            try:
                with socket.create_connection((self.ip, self.port), timeout=1):
                    break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.url = f"https://{self.ip}:{self.port}"

    def issue(self, name="tls"):
        """A serving certificate from the cluster CA for the Service name the apiserver uses."""
        svc = f"marble-injector.{self.ns}.svc"
        pki = mrk8s.Pki.__new__(mrk8s.Pki)  # the cluster's CA, files in our folder
        pki.dir, pki.ca_key, pki.ca_cert = self.dir, self.kube.pki.ca_key, self.kube.pki.ca_cert
        cf, kf = pki.issue(name, f"system:node:{svc}", orgs=["system:nodes"],
                           dns=[svc, f"{svc}.cluster.local"], ips=[mrk8s.host_ip()])
        return cf, kf

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        return (self.dir / "injector.log").read_text(errors="replace")

    def served_cert(self):
        ctx = ssl.create_default_context(cafile=str(self.kube.ca_file))
        with socket.create_connection((self.ip, self.port), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname=f"marble-injector.{self.ns}.svc") as t:
                return t.getpeercert(binary_form=True)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def webhook_config(ns, port, ca_pem):
    import base64
    return {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": f"marble-injector-{ns}"},
        "webhooks": [{
            "name": f"marble-injector-{ns}.cluster.local",
            "clientConfig": {"caBundle": base64.b64encode(ca_pem).decode(),
                             "service": {"name": "marble-injector", "namespace": ns,
                                         "path": "/mutate", "port": 443}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"], "scope": "Namespaced"}],
            "objectSelector": {"matchExpressions": [
                {"key": "marblerun/marbletype", "operator": "Exists", "values": []}]},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
            "admissionReviewVersions": ["v1", "v1beta1"],
            "sideEffects": "None",
        }],
    }


def route_service(kube, ns, port):
    """Service marble-injector 443 -> the injector's loopback port (what the chart's Service
    and the EndpointSlice controller would give)."""
    kube.apply({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "marble-injector", "namespace": ns},
                "spec": {"ports": [{"port": 443, "targetPort": port, "protocol": "TCP"}]}})
    kube.set_service_endpoint(ns, "marble-injector", port)


def pod(name, labels, containers=None, **spec):
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": {"containers": containers or [{"name": "app", "image": "app:1"}], **spec}}
    return body


def create_pod(kube, ns, body, dry_run=False):
    params = {"dryRun": "All"} if dry_run else None
    return kube.create(f"/api/v1/namespaces/{ns}/pods", body, params=params)


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


@pytest.fixture(scope="module")
def injected(kube, tmp_path_factory):
    """A namespace whose pods go through a running injector."""
    if not INJECTOR.exists():
        pytest.fail(f"{INJECTOR} missing: run make build")
    ns = "inj-" + uuid.uuid4().hex[:8]
    kube.create_namespace(ns)
    inj = Injector(kube, ns, tmp_path_factory.mktemp("injector"))
    route_service(kube, ns, inj.port)
    kube.apply(webhook_config(ns, inj.port, kube.ca_pem))
    # The apiserver picks the configuration up asynchronously: probe with dry-run creates.
    probe = pod("probe", {"marblerun/marbletype": "probe"})
    kube.wait_for(lambda: env_of(create_pod(kube, ns, probe, dry_run=True)["spec"]["containers"][0])
                  .get("EDG_MARBLE_TYPE") == "probe", timeout=60, what="the webhook to be called")
    yield ns, inj
    kube.delete(f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/marble-injector-{ns}")
    assert inj.stop() == 0, inj.log_text()


def test_pod_is_mutated_and_read_back(kube, injected):
    ns, inj = injected
    create_pod(kube, ns, pod("frontend-0", {"marblerun/marbletype": "Frontend"}, containers=[
        {"name": "app", "image": "app:1"},
        {"name": "sidecar", "image": "side:1",
         "env": [{"name": "EDG_MARBLE_COORDINATOR_ADDR", "value": "mine:1"}]}],
        initContainers=[{"name": "init", "image": "init:1"}]))
    p = kube.get(f"/api/v1/namespaces/{ns}/pods/frontend-0")
    uid = p["metadata"]["uid"]
    c0, c1 = p["spec"]["containers"]
    assert env_of(c0) == {
        "EDG_MARBLE_COORDINATOR_ADDR": f"coordinator-mesh-api.{ns}:2001",
        "EDG_MARBLE_TYPE": "Frontend",
        "EDG_MARBLE_DNS_NAMES": f"frontend,frontend.{ns},frontend.{ns}.svc.cluster.local",
        "EDG_MARBLE_UUID_FILE": "/Frontend-uid/uuid-file"}
    assert env_of(c1)["EDG_MARBLE_COORDINATOR_ADDR"] == "mine:1"  # existing values win
    assert env_of(c1)["EDG_MARBLE_TYPE"] == "Frontend"
    for c in (c0, c1):
        assert {"name": f"uuid-file-{_volume_uid(p)}", "mountPath": "/Frontend-uid"} in \
            [{k: m[k] for k in ("name", "mountPath")} for m in c["volumeMounts"]]
        assert c["resources"]["limits"] == {"sgx.intel.com/epc": "10Mi",
                                            "sgx.intel.com/enclave": "1",
                                            "sgx.intel.com/provision": "1"}
        # Requests: Kubernetes defaults them to the limits; the webhook set only limits.
        assert c["resources"]["requests"] == c["resources"]["limits"]
    assert "env" not in p["spec"]["initContainers"][0]
    vol = [v for v in p["spec"]["volumes"] if v["name"].startswith("uuid-file-")]
    assert len(vol) == 1
    assert vol[0]["downwardAPI"]["items"] == [
        {"path": "uuid-file", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.uid"}}]
    assert {"key": "sgx.intel.com/epc", "operator": "Exists", "effect": "NoSchedule"} in \
        p["spec"]["tolerations"]
    assert uid  # the file the volume projects is this pod UID: the marble UUID


def _volume_uid(p):
    names = [v["name"] for v in p["spec"]["volumes"] if v["name"].startswith("uuid-file-")]
    return names[0][len("uuid-file-"):]


def test_selected_container_and_no_resources(kube, injected):
    ns, _ = injected
    create_pod(kube, ns, pod("db-0", {"marblerun/marbletype": "db",
                                      "marblerun/marblecontainer": "db",
                                      "marblerun/resource-injection": "disabled"},
                             containers=[{"name": "metrics", "image": "m:1"},
                                         {"name": "db", "image": "db:1"}]))
    p = kube.get(f"/api/v1/namespaces/{ns}/pods/db-0")
    metrics, db = p["spec"]["containers"]
    assert "env" not in metrics
    # (the ServiceAccount admission's token mount is there; no UUID mount)
    assert all(m["mountPath"] != "/db-uid" for m in metrics.get("volumeMounts", []))
    assert any(m["mountPath"] == "/db-uid" for m in db["volumeMounts"])
    assert env_of(db)["EDG_MARBLE_TYPE"] == "db"
    assert not db.get("resources", {}).get("limits")
    assert all(t.get("key") != "sgx.intel.com/epc" for t in p["spec"].get("tolerations", []))


def test_denied_pod_is_not_created(kube, injected):
    ns, _ = injected
    with pytest.raises(mrk8s.KubeError) as e:
        create_pod(kube, ns, pod("empty-0", {"marblerun/marbletype": ""}))
    assert e.value.status == 400
    assert e.value.message == (f'admission webhook "marble-injector-{ns}.cluster.local" denied '
                               "the request: Empty [marblerun/marbletype] label, request denied")
    assert kube.get_or_none(f"/api/v1/namespaces/{ns}/pods/empty-0") is None


def test_unlabelled_pod_untouched(kube, injected):
    ns, _ = injected
    create_pod(kube, ns, pod("plain-0", {"app": "plain"}))
    c = kube.get(f"/api/v1/namespaces/{ns}/pods/plain-0")["spec"]["containers"][0]
    assert "env" not in c


def test_http_errors_and_healthz(kube, injected):
    _, inj = injected
    s = requests.Session()
    s.trust_env = False
    s.verify = str(kube.ca_file)  # the serving certificate names the host address
    r = s.get(inj.url + "/healthz")
    assert r.status_code == 200
    r = s.get(inj.url + "/mutate")
    assert (r.status_code, r.text) == (400, "unable to handle requests other than POST\n")
    r = s.post(inj.url + "/mutate", data="{}", headers={"Content-Type": "text/plain"})
    assert (r.status_code, r.text) == (400, "wrong application type\n")
    r = s.post(inj.url + "/mutate", data="{", headers={"Content-Type": "application/json"})
    assert r.status_code == 500 and r.text.startswith("unable to mutate request: ")


def test_certificate_pair_reread_on_change(kube, injected):
    ns, inj = injected
    before = inj.served_cert()
    cf, kf = inj.issue("renewed")
    # What a Secret volume does on renewal: new files swapped in by rename.
    os.replace(kf, inj.key.with_suffix(".key.new"))
    os.replace(cf, inj.cert.with_suffix(".crt.new"))
    os.replace(inj.key.with_suffix(".key.new"), inj.key)
    os.replace(inj.cert.with_suffix(".crt.new"), inj.cert)
    after = inj.served_cert()
    assert after != before
    assert after == ssl.PEM_cert_to_DER_cert(inj.cert.read_text())
    # The apiserver still gets through (new pair, same CA).
    create_pod(kube, ns, pod("after-renewal", {"marblerun/marbletype": "late"}))
    c = kube.get(f"/api/v1/namespaces/{ns}/pods/after-renewal")["spec"]["containers"][0]
    assert env_of(c)["EDG_MARBLE_TYPE"] == "late"
    # A broken pair is not taken: the previous one keeps serving.
    inj.cert.write_text("garbage")
    assert inj.served_cert() == after
