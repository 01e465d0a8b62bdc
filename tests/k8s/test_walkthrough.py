"""docs/kubernetes.md from an empty cluster to two marbles talking mTLS, on a cluster whose
pods really run: a cluster of its own (etcd + kube-apiserver, mrk8s) and a node (mrnode) that
plays kubelet, Deployment and EndpointSlice controllers and runs the images built from docker/
(images.py: buildah, no Docker engine here) from their own file systems. `marblerun install
--simulation` creates the objects, the node runs the Coordinator and the injector from the chart's Deployments as they are
rendered (env, args, volumes, probes, users), `marblerun check` waits for them, `marblerun
manifest set` uploads the sample manifest, and the pods of the walk-through's hello.yaml (read
from the document itself) are admitted through the injector webhook, started through
marblerun-premain, activated by the Coordinator and exchange a greeting over mTLS."""
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import pytest
import requests
import yaml

import dockerfiles
import images
import mrk8s
import mrnode

DOC = mrk8s.SOURCE_DIR / "docs" / "kubernetes.md"
CLI = mrk8s.BUILD_DIR / "bin" / "marblerun"

# a substring of the chart's and hello.yaml's image names -> the folder under docker/
IMAGE_NAMES = {"marble-injector": "injector", "marble-base": "marble-base",
               "/coordinator:": "coordinator"}


def _node_images(request):
    """The images built from docker/ (images.py), run from their own file systems; with
    MR_K8S_IMAGES=local, this build's programs on the host's / with the Dockerfiles'
    ENTRYPOINT, WORKDIR, ENV and USER instead (for a sanitizer build: MR_BUILD_DIR=build-asan)."""
    if os.environ.get("MR_K8S_IMAGES") == "local":
        df = dockerfiles.images()
        return {k: dockerfiles.runnable(df[v]) for k, v in IMAGE_NAMES.items()}
    built = request.getfixturevalue("built_images")
    return {k: images.node_entry(built.open(v)) for k, v in IMAGE_NAMES.items()}


def _walkthrough_objects():
    text = DOC.read_text()
    m = re.search(r"```yaml\n# hello\.yaml\n(.*?)```", text, re.S)
    assert m, "docs/kubernetes.md has no hello.yaml block"
    return [o for o in yaml.safe_load_all(m.group(1)) if o]


@pytest.fixture(scope="module")
def cluster(request):
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        pytest.fail("mrnode needs iproute2 and util-linux (scripts/install-deps installs them)")
    work = pathlib.Path(tempfile.mkdtemp(prefix="mr-walk-"))
    kube = mrk8s.KubeCluster(work / "cluster")
    kube.start()
    node = mrnode.Node(kube, work / "node", _node_images(request))
    try:
        node.start()
        kube.start_csr_signer()
        yield kube, node, work
    finally:
        kube.stop_csr_signer()
        node.stop()
        kube.stop()


def _cli(kube, work, *args, timeout=180):
    home = work / "home"
    home.mkdir(exist_ok=True)
    cfg = kube.write_kubeconfig(home / "kubeconfig")
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "KUBECONFIG": str(cfg)}
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=home)


def _hello(kube, ns):
    kube.create_namespace(ns)
    for o in _walkthrough_objects():
        o.setdefault("metadata", {})["namespace"] = ns
        kube.create(kube.object_path(o).rsplit("/", 1)[0], o)


def _ok(p, node, what):
    assert p.returncode == 0, f"{what} exited {p.returncode}:\n{p.stdout}\n{p.stderr}\n" \
                              f"{node.all_logs()}"
    return p.stdout


def test_walkthrough_two_marbles_talk_mtls(cluster):
    kube, node, work = cluster
    ns = "marblerun"
    # 2. Install (simulation) and check
    _ok(_cli(kube, work, "install", "--simulation"), node, "marblerun install --simulation")
    # the walk-through's next step; check waits until the Deployment controller has looked at
    # both Deployments and their pods are ready
    out = _ok(_cli(kube, work, "check", "--timeout", "120"), node, "marblerun check")
    assert "marble-injector pods ready: 1/1" in out, out
    assert "marblerun-coordinator pods ready: 1/1" in out, out
    coord = [p for p in kube.get(f"/api/v1/namespaces/{ns}/pods")["items"]
             if p["metadata"]["name"].startswith("marblerun-coordinator-")]
    assert len(coord) == 1
    cip = coord[0]["status"]["podIP"]
    # the Coordinator runs as the chart says: as uid 10001, sealing into the PVC
    assert "Running" == coord[0]["status"]["phase"]

    # 3. Set the manifest (the walk-through port-forwards; the node's pod network is routed)
    manifest = mrk8s.SOURCE_DIR / "samples" / "hello-mtls" / "manifest.json"
    _ok(_cli(kube, work, "manifest", "set", str(manifest), f"{cip}:4433", "--insecure"),
        node, "marblerun manifest set")
    pvc = work / "node" / "pvc" / ns / "coordinator-pv-claim"
    assert any(pvc.iterdir()), "the Coordinator sealed nothing into its volume"

    # 4. Run labelled marbles: hello.yaml of the document, unchanged but for the namespace
    _hello(kube, "hello")
    server = kube.get("/api/v1/namespaces/hello/pods/hello-server")
    env = {e["name"]: e.get("value") for e in server["spec"]["containers"][0]["env"]}
    assert env["EDG_MARBLE_COORDINATOR_ADDR"] == f"coordinator-mesh-api.{ns}:2001"
    assert env["EDG_MARBLE_TYPE"] == "hello-server"
    assert env["EDG_MARBLE_UUID_FILE"] == "/hello-server-uid/uuid-file"

    done = node.wait_pod_phase("hello", "hello-client", ("Succeeded", "Failed"), timeout=120)
    log = node.logs("hello", "hello-client")
    assert done["status"]["phase"] == "Succeeded", f"{log}\n{node.all_logs()}"
    assert "Hello from the hello-mtls server marble" in log, log
    assert "shared key matches: yes" in log, log
    slog = node.logs("hello", "hello-server")
    assert "listening on" in slog, slog

    # the Coordinator certified both under their pods' UIDs (the UUID file the injector's
    # downward-API volume provides): the server's CN and the client's CN are in the exchange
    client_uid = kube.get("/api/v1/namespaces/hello/pods/hello-client")["metadata"]["uid"]
    assert f"server marble {server['metadata']['uid']} answered".lower() in log.lower(), log
    assert f"marble {client_uid}!".lower() in log.lower(), log

    # 5. Uninstall: the node stops the Coordinator and the injector
    _ok(_cli(kube, work, "uninstall"), node, "marblerun uninstall")
    kube.wait_for(lambda: not [p for p in kube.get(f"/api/v1/namespaces/{ns}/pods")["items"]
                               if not p["metadata"].get("deletionTimestamp")],
                  timeout=60, what="the chart's pods to go")


def test_walkthrough_distributed_two_coordinators(cluster):
    """The HA variant of docs/kubernetes.md: `install --distributed-deployment`, the Deployment
    scaled to two Coordinators that share their state in the release namespace's Secrets
    (service-account token from the pod's projected volume, the API through the `kubernetes`
    Service), the second one getting the state key from the first through the key API found in
    the EndpointSlices of coordinator-key-api; then the same marbles."""
    kube, node, work = cluster
    ns = "mr-ha"
    _ok(_cli(kube, work, "install", "--simulation", "--distributed-deployment", "-n", ns), node,
        "marblerun install --distributed-deployment")
    kube.request("PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/marblerun-coordinator",
                 {"spec": {"replicas": 2}}, content_type="application/merge-patch+json")
    out = _ok(_cli(kube, work, "check", "-n", ns, "--timeout", "120"), node, "marblerun check")
    assert "marblerun-coordinator pods ready: 2/2" in out, out
    pods = sorted((p for p in kube.get(f"/api/v1/namespaces/{ns}/pods")["items"]
                   if p["metadata"]["name"].startswith("marblerun-coordinator-")),
                  key=lambda p: p["metadata"]["creationTimestamp"])
    ips = [p["status"]["podIP"] for p in pods]
    assert len(set(ips)) == 2
    manifest = mrk8s.SOURCE_DIR / "samples" / "hello-mtls" / "manifest.json"
    _ok(_cli(kube, work, "manifest", "set", str(manifest), f"{ips[0]}:4433", "--insecure"),
        node, "marblerun manifest set")
    # the other instance serves the same manifest at once (one state, in the Secrets)
    got = _ok(_cli(kube, work, "manifest", "get", f"{ips[1]}:4433", "--insecure", "-s"), node,
              "marblerun manifest get on the second Coordinator")
    assert '"ManifestSignature"' in got and "hello-server" in got, got
    # the second instance's replica follows through its watch of the state Secrets (the
    # chart's Role allows it; the counters are on the metrics port)
    def watched():
        text = requests.get(f"http://{ips[1]}:9944/metrics", timeout=5).text
        m = re.search(r"^marblerun_store_watch_events_total (\d+)", text, re.M)
        return m and int(m.group(1)) > 0
    kube.wait_for(watched, timeout=30, what="watch events on the second Coordinator")
    state = kube.get(f"/api/v1/namespaces/{ns}/secrets/marblerun-state")
    assert "head" in state["data"]
    assert kube.get_or_none(f"/api/v1/namespaces/{ns}/configmaps/marblerun-sealed-kek")

    _hello(kube, "hello-ha")
    done = node.wait_pod_phase("hello-ha", "hello-client", ("Succeeded", "Failed"), timeout=120)
    log = node.logs("hello-ha", "hello-client")
    assert done["status"]["phase"] == "Succeeded", f"{log}\n{node.all_logs()}"
    assert "shared key matches: yes" in log, log
    _ok(_cli(kube, work, "uninstall", "-n", ns), node, "marblerun uninstall")
