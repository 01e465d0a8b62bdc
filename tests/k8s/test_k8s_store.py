"""The Coordinator's kubernetes store (EDG_COORDINATOR_STORE=kubernetes) against a real
kube-apiserver with etcd (mrk8s): two Coordinator processes share one state in Secrets of their
namespace, written through the in-cluster API as their service account (RBAC enforced), with
peers found through the EndpointSlices of the key-api Service. The distributed semantics of the
etcd backend hold: one manifest set wins, MaxActivations is global, a write on one instance is
read on the other at once; every value is sealed; the state is split over shard Secrets that
stay under the 1 MiB limit; an unreachable API server is a clear 503, not a hang."""
import base64
import concurrent.futures as cf
import hashlib
import json
import os
import pathlib
import shutil
import sys
import threading
import time
import uuid as uuidlib

import grpc
import pytest
import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "e2e"))
from mrharness import MRSIGNER, Coordinator, Marble, SoftSGX  # noqa: E402
from mretcd import TcpProxy  # noqa: E402
from test_coordinator_secrets import User  # noqa: E402
from test_distributed import listen_port  # noqa: E402

NOT_IN_STATE = "server is not in expected state"
SA = "marblerun-coordinator"
KEY_API = "coordinator-key-api"


def node_ip():
    """An address of this machine outside 127/8 (the API server refuses loopback endpoints):
    the first global IPv4 address, else one added to lo (root)."""
    import subprocess
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True,
                         text=True, check=False).stdout
    for line in out.splitlines():
        return line.split()[3].split("/")[0]
    subprocess.run(["ip", "addr", "add", "10.255.255.1/32", "dev", "lo"], check=False)
    return "10.255.255.1"


NODE_IP = node_ip()


def b64(b):
    return base64.b64encode(b).decode()


@pytest.fixture(scope="module")
def softsgx(tmp_path_factory):
    return SoftSGX(tmp_path_factory.mktemp("softsgx") / "pki")


def coordinator_role(kube, ns, verbs_secrets=("get", "list", "watch", "create", "update", "patch", "delete")):
    """What charts/marblerun grants the Coordinator: its namespace's Secrets and ConfigMaps,
    and reading EndpointSlices."""
    kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "marblerun-coordinator", "namespace": ns},
                "rules": [{"apiGroups": [""], "resources": ["secrets", "configmaps"],
                           "verbs": list(verbs_secrets)},
                          {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                           "verbs": ["get", "list", "watch"]}]})
    kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "marblerun-coordinator", "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                            "name": "marblerun-coordinator"},
                "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": ns}]})


class Deployment:
    """n Coordinator instances of one namespace, each with its own seal directory and key API
    port, published as one EndpointSlice each (what the EndpointSlice controller would do for
    the pods behind the key-api Service)."""

    def __init__(self, kube, tmp_path, softsgx, n=2, role=True, api_port=None, host_keys=False):
        self.kube = kube
        self.ns = f"mr-{uuidlib.uuid4().hex[:8]}"
        kube.create_namespace(self.ns)
        kube.create_service_account(self.ns, SA)
        if role:
            coordinator_role(kube, self.ns)
        self.sa_dir = kube.serviceaccount_dir(self.ns, SA, tmp_path / "sa")
        self.key_ports = [listen_port() for _ in range(n)]
        self.api_port = api_port or kube.port
        self.coords = []
        for i in range(n):
            d = tmp_path / f"c{i}"
            d.mkdir(exist_ok=True)
            env = {"EDG_COORDINATOR_STORE": "kubernetes",
                   "EDG_K8S_SERVICE_ACCOUNT_DIR": str(self.sa_dir),
                   "EDG_COORDINATOR_KEY_SERVER_ADDR": f"{NODE_IP}:{self.key_ports[i]}"}
            if host_keys:  # the host's sealing key outlives the pod's seal directory
                env["EDG_COORDINATOR_KEK"] = f"file:{tmp_path}/host-{i}.kek"
            env.update(kube.in_cluster_env())
            env["KUBERNETES_SERVICE_PORT"] = env["EDG_KUBERNETES_SERVICE_PORT"] = str(self.api_port)
            self.coords.append(Coordinator(d, softsgx, extra_env=env))
            kube.set_service_endpoint(self.ns, KEY_API, self.key_ports[i], ip=NODE_IP, port_name="grpc",
                                      slice_name=f"{KEY_API}-{i}")

    def start(self):
        for c in self.coords:  # the first creates the state, the others fetch the key
            c.start()
        return self

    def stop(self):
        for c in self.coords:
            c.stop(check=False)

    def secrets(self):
        """Every Secret of the namespace: name -> {entry: decoded bytes}."""
        items = self.kube.get(f"/api/v1/namespaces/{self.ns}/secrets")["items"]
        return {s["metadata"]["name"]: {k: base64.b64decode(v) for k, v in (s.get("data") or {}).items()}
                for s in items}

    def __getitem__(self, i):
        return self.coords[i]


@pytest.fixture()
def deployment(kube, tmp_path, softsgx):
    d = Deployment(kube, tmp_path, softsgx).start()
    yield d
    d.stop()


def manifest(users, max_activations=0):
    m = {
        "Packages": {"pkg": {"SignerID": MRSIGNER, "ProductID": 3, "SecurityVersion": 3}},
        "Marbles": {
            "app": {"Package": "pkg", "Parameters": {"Files": {
                "/shared": "{{ hex .Secrets.shared }}", "/user": "{{ hex .Secrets.userKey }}"}}},
            "limited": {"Package": "pkg", "MaxActivations": max_activations or 1},
            "plain": {"Package": "pkg"},
        },
        "Secrets": {
            "shared": {"Type": "symmetric-key", "Size": 256, "Shared": True},
            "userKey": {"Type": "symmetric-key", "Size": 128, "UserDefined": True},
        },
        "Users": {u.name: {"Certificate": u.pem, "Roles": ["r", "w"]} for u in users},
        "Roles": {"r": {"ResourceType": "Secrets", "ResourceNames": ["userKey", "shared"],
                        "Actions": ["ReadSecret"]},
                  "w": {"ResourceType": "Secrets", "ResourceNames": ["userKey"],
                        "Actions": ["WriteSecret"]}},
        "Config": {"FeatureGates": ["MonotonicCounter"]},
    }
    return m


def post_as(c, path, body, user):
    return requests.post(c.url + path, json.dumps(body), verify=False, timeout=60, cert=user.tls)


def user_key(c, user):
    r = requests.get(c.url + "/api/v2/secrets?s=userKey", verify=False, timeout=60, cert=user.tls)
    assert r.status_code == 200, r.text
    return base64.b64decode(r.json()["data"]["secrets"]["userKey"]["Private"])


def marble_tls(tmp_path, softsgx, c, name="m"):
    env = Marble(softsgx).activate(c, "plain", timeout=30).Parameters.Env
    (tmp_path / f"{name}.crt").write_bytes(env["MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN"])
    (tmp_path / f"{name}.key").write_bytes(env["MARBLE_PREDEFINED_PRIVATE_KEY"])
    return (str(tmp_path / f"{name}.crt"), str(tmp_path / f"{name}.key"))


def bump(c, cert, name, value):
    r = requests.post(c.url + "/api/v2/monotonic-counter", json={"name": name, "value": value},
                      cert=cert, verify=False, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["data"]["value"]


def wait_for(pred, timeout=30, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if pred():
                return
        except (requests.RequestException, AssertionError, KeyError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout}s")


def test_two_instances_share_one_state(tmp_path, softsgx, deployment):
    d = deployment
    assert [c.status() for c in d.coords] == [2, 2]
    roots = {c.get("/api/v2/quote").json()["data"]["cert"] for c in d.coords}
    assert len(roots) == 1  # one CA: the second instance got the key from the first
    assert "got the state key from a peer" in d[1].read_log()

    # one SetManifest wins among concurrent ones on both instances
    alice = User(tmp_path, "alice")
    raw = json.dumps(manifest([alice], max_activations=3)).encode()
    body = json.dumps({"manifest": b64(raw)})
    barrier = threading.Barrier(6)

    def race(c):
        barrier.wait()
        return c.post("/api/v2/manifest", body)
    with cf.ThreadPoolExecutor(6) as ex:
        answers = list(ex.map(race, d.coords * 3))
    assert sum(r.status_code == 200 for r in answers) == 1, [r.text for r in answers]
    assert all(NOT_IN_STATE in r.json()["message"] for r in answers if r.status_code != 200)
    fp = hashlib.sha256(raw).hexdigest()
    assert {c.get("/api/v2/manifest").json()["data"]["manifestFingerprint"] for c in d.coords} == {fp}

    # no stale reads: written through one instance, read through the other right away
    for i in range(3):
        k = os.urandom(16)
        assert post_as(d[i % 2], "/api/v2/secrets", {"secrets": {"userKey": {"Key": b64(k)}}},
                       alice).status_code == 200
        assert user_key(d[(i + 1) % 2], alice) == k
    files = [dict(Marble(softsgx).activate(c, "app", timeout=30).Parameters.Files) for c in d.coords]
    assert files[0]["/user"] == files[1]["/user"] == k.hex().encode()
    assert files[0]["/shared"] == files[1]["/shared"]

    # MaxActivations counts over both instances
    def one(i):
        try:
            Marble(softsgx).activate(d[i % 2], "limited", timeout=30)
            return "ok"
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e
            assert "reached max activations count (3)" in e.details()
            return "denied"
    with cf.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(one, range(10)))
    assert results.count("ok") == 3, results

    # the Secrets hold sealed values only
    shared = bytes.fromhex(files[0]["/shared"].decode())
    state = d.secrets()
    assert "marblerun-state" in state
    assert state["marblerun-state"]["format"] == b"marblerun-c k8s v1"
    blob = b"".join(v for s in state.values() for v in s.values())
    for s in (k, shared):
        for form in (s, s.hex().encode(), b64(s).encode()):
            assert form not in blob
    assert b"Packages" not in blob and b"BEGIN" not in blob


def test_state_is_split_over_shards_under_the_size_limit(tmp_path, softsgx, deployment):
    """Enough monotonic counters to flush the head's pending entries into the shards several
    times; every value stays readable through both instances, every Secret under 1 MiB."""
    d = deployment
    r = d[0].post("/api/v2/manifest", json.dumps({"manifest": b64(json.dumps(manifest([User(tmp_path, "u")])).encode())}))
    assert r.status_code == 200, r.text
    cert = marble_tls(tmp_path, softsgx, d[0])
    names = [f"counter-{i:04d}-" + "x" * 40 for i in range(900)]

    def set_one(i):
        return bump(d[i % 2], cert, names[i], i + 1)
    with cf.ThreadPoolExecutor(4) as ex:
        assert list(ex.map(set_one, range(len(names)))) == [0] * len(names)
    state = d.secrets()
    shards = [n for n in state if n.startswith("marblerun-state-")]
    assert len(shards) >= 8, sorted(state)
    for name in state:
        obj = d.kube.get(f"/api/v1/namespaces/{d.ns}/secrets/{name}")
        assert len(json.dumps(obj)) < 1 << 20, name
    # every counter reads back on both instances (raising to 0 returns the current value)
    for i in range(0, len(names), 37):
        assert bump(d[(i + 1) % 2], cert, names[i], 0) == i + 1
    # and a restarted instance loads the whole state from the shards
    d[1].stop()
    d[1].start()
    assert d[1].status() == 3
    assert bump(d[1], cert, names[-1], 0) == len(names)


def test_rbac_refusal_is_a_clear_error(kube, tmp_path, softsgx):
    """A service account without write access to Secrets: the Coordinator says what the API
    refused instead of starting with a state it cannot keep."""
    d = Deployment(kube, tmp_path, softsgx, n=1, role=False)
    c = d[0]
    try:
        c.start(expect_ready=False)
        wait_for(lambda: c.proc.poll() is not None or "kubernetes refused the request" in c.read_log(),
                 30, "refusal")
        log = c.read_log()
        assert "kubernetes refused the request: 403" in log, log
        assert "forbidden" in log.lower(), log
    finally:
        c.stop(check=False)


def test_api_server_unreachable(kube, tmp_path, softsgx):
    """The API server cut off (no answers, no resets): requests fail within the client's
    timeout with 503 and the store's reason; once it is back, the same instance serves again."""
    proxy = TcpProxy(kube.port)
    d = Deployment(kube, tmp_path, softsgx, n=1, api_port=proxy.port)
    try:
        d.start()
        c = d[0]
        assert c.status() == 2
        proxy.blackhole()
        t0 = time.time()
        r = c.get("/api/v2/status")
        assert r.status_code == 503, r.text
        assert "kubernetes API unavailable" in r.json()["message"], r.text
        assert time.time() - t0 < 30
        proxy.heal()
        wait_for(lambda: c.get("/api/v2/status").status_code == 200, 30, "API back")
        r = c.post("/api/v2/manifest", json.dumps({"manifest": b64(json.dumps(manifest([User(tmp_path, "v")])).encode())}))
        assert r.status_code == 200, r.text
    finally:
        d.stop()
        proxy.close()


def test_sealed_key_map_brings_pods_back_without_their_seal_directory(kube, tmp_path, softsgx):
    """Every instance keeps its sealed copy of the state key in the ConfigMap
    marblerun-sealed-kek (entry = its sealing host's id). All pods stop and come back on the
    same hosts with empty seal directories (emptyDir): they open the state from the map, with
    no peer to ask. Without the map they come up in recovery mode, as MarbleRun's do."""
    d = Deployment(kube, tmp_path, softsgx, host_keys=True).start()
    try:
        r = d[0].post("/api/v2/manifest", json.dumps({"manifest": b64(json.dumps(manifest([User(tmp_path, "w")])).encode())}))
        assert r.status_code == 200, r.text
        fp = d[1].get("/api/v2/manifest").json()["data"]["manifestFingerprint"]
        cm = kube.get(f"/api/v1/namespaces/{d.ns}/configmaps/marblerun-sealed-kek")
        entries = cm["binaryData"]
        assert len(entries) == 2 and all(len(k) == 32 for k in entries), entries
        assert cm["metadata"]["labels"]["app.kubernetes.io/part-of"] == "marblerun"
        sealed = {base64.b64decode(v) for v in entries.values()}
        assert {(c.seal_dir / "sealed_key").read_bytes() for c in d.coords} == sealed

        def cold_restart():
            for c in d.coords:
                c.stop(check=False)
            for c in d.coords:
                shutil.rmtree(c.seal_dir, ignore_errors=True)
        cold_restart()
        d[0].start()
        assert d[0].status() == 3
        assert "restored the sealed state key of this host from the shared map" in d[0].read_log()
        assert d[0].get("/api/v2/manifest").json()["data"]["manifestFingerprint"] == fp
        d[1].start()
        assert d[1].status() == 3

        cold_restart()
        kube.delete(f"/api/v1/namespaces/{d.ns}/configmaps/marblerun-sealed-kek")
        d[0].start()
        assert d[0].status() == 1  # recovery: neither a sealed copy nor a peer
    finally:
        d.stop()


def store_metrics(c):
    """The marblerun_store_* samples of an instance's /metrics (no request to its client API:
    the metrics listener does not read the state)."""
    r = requests.get(f"http://127.0.0.1:{c.metrics_port}/metrics", timeout=10)
    assert r.status_code == 200, r.text
    out = {}
    for line in r.text.splitlines():
        if line.startswith("marblerun_store_") and "{" not in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_watch_keeps_the_other_instance_warm(kube, tmp_path, softsgx):
    """Instance A commits; instance B, which gets no request, has the commit in its replica
    through its watch of the state Secrets. Broken connections (all of them, the watch's
    too) make B reconnect its watch, and both the watch and the requests work again."""
    proxy = TcpProxy(kube.port)
    d = Deployment(kube, tmp_path, softsgx, api_port=proxy.port)
    try:
        d.start()
        a, b = d[0], d[1]
        head = kube.get(f"/api/v1/namespaces/{d.ns}/secrets/marblerun-state")
        labels = head["metadata"]["labels"]
        assert labels["marblerun.edgeless.systems/state"] == "marblerun-state"
        assert labels["app.kubernetes.io/part-of"] == "marblerun"
        before = store_metrics(b)

        alice = User(tmp_path, "alice")
        raw = json.dumps(manifest([alice])).encode()
        r = a.post("/api/v2/manifest", json.dumps({"manifest": b64(raw)}))
        assert r.status_code == 200, r.text
        rev = store_metrics(a)["marblerun_store_revision"]
        assert rev > before["marblerun_store_revision"]
        wait_for(lambda: store_metrics(b)["marblerun_store_revision"] == rev, 30,
                 "B's replica at A's revision through the watch")
        after = store_metrics(b)
        assert after["marblerun_store_watch_applied_total"] > before["marblerun_store_watch_applied_total"]
        assert after["marblerun_store_watch_events_total"] > before["marblerun_store_watch_events_total"]
        assert after["marblerun_store_commits_total"] == before["marblerun_store_commits_total"]
        # the replica B got through the watch serves: same manifest, read right away
        fp = hashlib.sha256(raw).hexdigest()
        assert b.get("/api/v2/manifest").json()["data"]["manifestFingerprint"] == fp

        # every connection to the API server dropped: B's watch reconnects by itself
        reconnects = store_metrics(b)["marblerun_store_watch_reconnects_total"]
        proxy.heal()
        wait_for(lambda: store_metrics(b)["marblerun_store_watch_reconnects_total"] > reconnects,
                 30, "B's watch reconnected")
        applied = store_metrics(b)["marblerun_store_watch_applied_total"]
        k = os.urandom(16)
        wait_for(lambda: post_as(a, "/api/v2/secrets", {"secrets": {"userKey": {"Key": b64(k)}}},
                                 alice).status_code == 200, 30, "A writes again")
        rev = store_metrics(a)["marblerun_store_revision"]
        wait_for(lambda: store_metrics(b)["marblerun_store_revision"] == rev, 30,
                 "B's replica at A's revision through the reconnected watch")
        assert store_metrics(b)["marblerun_store_watch_applied_total"] > applied
        # and requests on B work (their quorum read of the head is unchanged)
        assert user_key(b, alice) == k
        assert b.status() == 3
    finally:
        d.stop()
        proxy.close()
