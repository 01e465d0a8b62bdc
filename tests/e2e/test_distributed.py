"""Several Coordinator instances sharing one state in a real three-member etcd cluster on
loopback (docs/distributed.md): the same answers on every instance, exactly-once semantics
under concurrency, the key API's release rule, and the faults — an etcd member killed under
load, a majority lost, a Coordinator killed mid-commit, every seal directory lost, and one
instance cut off from etcd by a stalled proxy. Every Coordinator runs in softsgx mode: quotes
are made and verified, including the ones the instances exchange for the state key."""
import base64
import concurrent.futures as cf
import hashlib
import json
import os
import random
import shutil
import signal
import threading
import time
import uuid as uuidlib

import grpc
import pytest
import requests

from mrharness import MRSIGNER, Coordinator, Marble, SoftSGX, free_port
from mretcd import EtcdCluster, TcpProxy
from test_cli import CLI, addr, era
from test_coordinator_secrets import User

NOT_IN_STATE = "server is not in expected state"


def b64(b):
    return base64.b64encode(b).decode()


def listen_port():
    """A free port below the kernel's ephemeral range: the key API ports are fixed before the
    instances start and are written into every peer list, so they must not be handed out to
    some outgoing connection (to etcd, say) in the meantime."""
    import socket
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    for _ in range(200):
        p = random.randrange(max(1024, lo - 12000), lo)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
                return p
            except OSError:
                continue
    return free_port()


@pytest.fixture(scope="module")
def softsgx(tmp_path_factory):
    return SoftSGX(tmp_path_factory.mktemp("softsgx") / "pki")


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    c = EtcdCluster(tmp_path_factory.mktemp("etcd"), n=3).start()
    yield c
    c.stop()


@pytest.fixture()
def healthy(etcd):
    """Every test starts and ends with all three members up."""
    for i in range(etcd.n):
        if etcd.procs[i] is None or etcd.procs[i].poll() is not None:
            etcd.restart(i)
    etcd.wait_healthy()
    yield etcd
    for i in range(etcd.n):
        if etcd.procs[i] is None or etcd.procs[i].poll() is not None:
            etcd.restart(i)
    etcd.wait_healthy()


class Group:
    """n instances on one prefix; instance i's key API on key_ports[i], every key API a peer."""

    def __init__(self, tmp_path, softsgx, etcd, n=3, endpoints=None):
        self.prefix = f"/mr-{uuidlib.uuid4().hex[:8]}/"
        self.etcd = etcd
        self.softsgx = softsgx
        self.tmp = tmp_path
        self.key_ports = [listen_port() for _ in range(n)]
        self.coords = [self.make(i, (endpoints or [None] * n)[i]) for i in range(n)]

    def env(self, i, endpoints=None, key_port=None):
        return {
            "EDG_COORDINATOR_STORE": "etcd",
            "EDG_COORDINATOR_ETCD_ENDPOINTS": endpoints or self.etcd.endpoints,
            "EDG_COORDINATOR_ETCD_PREFIX": self.prefix,
            "EDG_COORDINATOR_KEY_SERVER_ADDR": f"127.0.0.1:{key_port or self.key_ports[i]}",
            "EDG_COORDINATOR_PEERS": ",".join(f"127.0.0.1:{p}" for p in self.key_ports),
        }

    def make(self, i, endpoints=None, name=None, **quote):
        d = self.tmp / (name or f"c{i}")
        d.mkdir(exist_ok=True)
        env = self.env(i, endpoints)
        if quote:
            env.update(self.softsgx.env(**quote))
        return Coordinator(d, self.softsgx, extra_env=env)

    def start(self):
        for c in self.coords:  # the first creates the state, the others ask it for the key
            c.start()
        return self

    def stop(self):
        for c in self.coords:
            c.stop(check=False)

    def __getitem__(self, i):
        return self.coords[i]


@pytest.fixture()
def group(tmp_path, softsgx, healthy):
    g = Group(tmp_path, softsgx, healthy).start()
    yield g
    g.stop()


def root_pem(c):
    return c.get("/api/v2/quote").json()["data"]["cert"].split("-----END CERTIFICATE-----\n")[1]


def post_json(c, path, body, user=None):
    return requests.post(c.url + path, json.dumps(body), verify=False, timeout=60,
                         cert=user.tls if user else None)


def get_as(c, path, user):
    return requests.get(c.url + path, verify=False, timeout=60, cert=user.tls)


def manifest(users, max_activations=0, recovery_key=None, gates=()):
    m = {
        "Packages": {"pkg": {"SignerID": MRSIGNER, "ProductID": 3, "SecurityVersion": 3}},
        "Marbles": {
            "app": {"Package": "pkg", "Parameters": {"Files": {
                "/shared": "{{ hex .Secrets.shared }}", "/user": "{{ hex .Secrets.userKey }}"}}},
            "limited": {"Package": "pkg", "MaxActivations": max_activations},
        },
        "Secrets": {
            "shared": {"Type": "symmetric-key", "Size": 256, "Shared": True},
            "userKey": {"Type": "symmetric-key", "Size": 128, "UserDefined": True},
        },
        "Users": {u.name: {"Certificate": u.pem, "Roles": ["r", "w", "upd"]} for u in users},
        "Roles": {"r": {"ResourceType": "Secrets", "ResourceNames": ["userKey", "shared"],
                        "Actions": ["ReadSecret"]},
                  "w": {"ResourceType": "Secrets", "ResourceNames": ["userKey"],
                        "Actions": ["WriteSecret"]},
                  "upd": {"ResourceType": "Manifest", "Actions": ["UpdateManifest"]}},
        "Config": {"FeatureGates": list(gates)},
    }
    if max_activations == 0:
        del m["Marbles"]["limited"]["MaxActivations"]
    if recovery_key is not None:
        m["RecoveryKeys"] = {"rk": recovery_key}
    return m


def set_manifest(c, m):
    r = c.post("/api/v2/manifest", json.dumps({"manifest": b64(json.dumps(m).encode())}))
    assert r.status_code == 200, r.text
    return r.json()["data"]


def set_user_key(c, user, key):
    return post_json(c, "/api/v2/secrets", {"secrets": {"userKey": {"Key": b64(key)}}}, user)


def user_key(c, user):
    r = get_as(c, "/api/v2/secrets?s=userKey", user)
    assert r.status_code == 200, r.text
    return base64.b64decode(r.json()["data"]["secrets"]["userKey"]["Private"])


def activate(softsgx, c, marble_type="app"):
    return Marble(softsgx).activate(c, marble_type, timeout=30)


def wait_for(pred, timeout=30, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            if pred():
                return
        except (requests.RequestException, AssertionError, KeyError, ValueError) as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout}s (last: {last})")


def status_or_none(c):
    try:
        r = c.get("/api/v2/status")
        return r.json()["data"]["code"] if r.status_code == 200 else None
    except requests.RequestException:
        return None


# ---------------------------------------------------------------------------------------------
# one state, every instance


def test_one_state_on_every_instance(tmp_path, softsgx, group):
    g = group
    assert [c.status() for c in g.coords] == [2, 2, 2]
    roots = {root_pem(c) for c in g.coords}
    assert len(roots) == 1  # one CA: the later instances got the state key from the first
    assert "got the state key from a peer" in g[1].read_log()

    alice, bob = User(tmp_path, "alice"), User(tmp_path, "bob")
    raw = json.dumps(manifest([alice, bob], gates=["MonotonicCounter"])).encode()
    body = json.dumps({"manifest": b64(raw)})
    barrier = threading.Barrier(6)

    def race(c):
        barrier.wait()
        return c.post("/api/v2/manifest", body)
    with cf.ThreadPoolExecutor(6) as ex:
        answers = list(ex.map(race, g.coords * 2))
    assert sum(r.status_code == 200 for r in answers) == 1, [r.text for r in answers]
    for r in answers:
        if r.status_code != 200:
            assert NOT_IN_STATE in r.json()["message"], r.text
    assert [c.status() for c in g.coords] == [3, 3, 3]
    fp = hashlib.sha256(raw).hexdigest()
    assert {c.get("/api/v2/manifest").json()["data"]["manifestFingerprint"] for c in g.coords} == {fp}

    # a secret written through one instance is read through the others right away
    k = os.urandom(16)
    assert set_user_key(g[0], alice, k).status_code == 200
    assert user_key(g[1], alice) == k and user_key(g[2], alice) == k
    files = [dict(activate(softsgx, c).Parameters.Files) for c in g.coords]
    assert all(f["/user"] == k.hex().encode() for f in files)
    assert len({f["/shared"] for f in files}) == 1

    # monotonic counters: one register for all instances
    env = activate(softsgx, g[0]).Parameters.Env
    (tmp_path / "m.crt").write_bytes(env["MARBLE_PREDEFINED_MARBLE_CERTIFICATE_CHAIN"])
    (tmp_path / "m.key").write_bytes(env["MARBLE_PREDEFINED_PRIVATE_KEY"])
    mcert = (str(tmp_path / "m.crt"), str(tmp_path / "m.key"))

    def bump(c, v):
        r = requests.post(c.url + "/api/v2/monotonic-counter", json={"name": "n", "value": v},
                          cert=mcert, verify=False, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()["data"]["value"]
    assert bump(g[0], 5) == 0 and bump(g[1], 3) == 5 and bump(g[2], 7) == 5
    values = list(range(10, 40))
    random.shuffle(values)
    with cf.ThreadPoolExecutor(6) as ex:
        prev = list(ex.map(lambda iv: (iv[1], bump(g[iv[0] % 3], iv[1])), enumerate(values)))
    advanced = [p for v, p in prev if p < v]
    assert len(advanced) == len(set(advanced)), prev  # no two raises saw the same previous value
    assert all(p != v for v, p in prev)
    assert bump(g[1], 0) == 39

    # a multi-party update started on one instance, acknowledged on another
    new = manifest([alice, bob], gates=["MonotonicCounter"])
    new["Marbles"]["worker"] = {"Package": "pkg"}
    nraw = json.dumps(new).encode()
    r = post_json(g[0], "/api/v2/update", {"manifest": b64(nraw)}, alice)
    assert r.status_code == 200 and r.json()["data"]["missingUsers"] == ["bob"], r.text
    assert base64.b64decode(g[2].get("/api/v2/update-manifest").json()["data"]["manifest"]) == nraw
    r = post_json(g[1], "/api/v2/update-manifest", {"manifest": b64(nraw)}, bob)
    assert r.status_code == 200, r.text
    nfp = hashlib.sha256(nraw).hexdigest()
    assert {c.get("/api/v2/manifest").json()["data"]["manifestFingerprint"] for c in g.coords} == {nfp}
    activate(softsgx, g[2], "worker")
    log = get_as(g[2], "/api/v2/update", alice).json()["data"]["updateLog"]
    assert [json.loads(l)["update"] for l in log][-3:] == [
        "Complete Manifest update initiated by user. Waiting for acknowledgments to apply the update",
        "Complete Manifest update acknowledged by user", "Complete Manifest updated"]

    # an etcd dump shows no secret: every value is sealed on its own
    shared = bytes.fromhex(files[0]["/shared"].decode())
    dump = g.etcd.dump(g.prefix.encode())
    assert len(dump) > 10
    for key, value in dump:
        for s in (k, shared):
            for form in (s, s.hex().encode(), b64(s).encode()):
                assert form not in value, key
        assert b"Packages" not in value and b"BEGIN" not in value, key

    # a value copied to another key does not open there: the state is refused, not misread
    vals = dict(dump)
    src, dst = (g.prefix + "secret:userKey").encode(), (g.prefix + "secret:shared").encode()
    g.etcd.put(dst, vals[src])
    wait_for(lambda: g[1].get("/api/v2/status").status_code == 503, 10, "corrupt value refused")
    r = g[1].get("/api/v2/status")
    assert "sealed state is corrupted: value of secret:shared does not open" in r.json()["message"], r.text
    g.etcd.put(dst, vals[dst])  # the original sealed value opens again
    wait_for(lambda: g[1].status() == 3, 10, "state readable again")
    assert user_key(g[2], alice) == k


def test_max_activations_is_global(tmp_path, softsgx, group):
    g = group
    set_manifest(g[1], manifest([User(tmp_path, "a")], max_activations=4))

    def one(i):
        try:
            activate(softsgx, g[i % 3], "limited")
            return "ok"
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e
            assert "reached max activations count (4)" in e.details()
            return "denied"
    with cf.ThreadPoolExecutor(12) as ex:
        results = list(ex.map(one, range(12)))
    assert results.count("ok") == 4, results


# ---------------------------------------------------------------------------------------------
# the key API's rule


def test_key_goes_only_to_the_same_product(tmp_path, softsgx, group):
    g = group
    root = root_pem(g[0])
    for name, quote, reason in [
            ("other-signer", {"mrsigner": "ef" * 32}, "SignerID"),
            ("older", {"isvsvn": 2}, "SecurityVersion 2 is below ours (3)"),
            ("other-product", {"isvprodid": 4}, "ProductID 4 is not ours (3)")]:
        c = g.make(0, name=name, **quote)
        c.extra_env["EDG_COORDINATOR_KEY_SERVER_ADDR"] = f"127.0.0.1:{listen_port()}"
        c.start()
        try:
            assert c.status() == 1, name  # recovery mode: no peer released the key
            assert root_pem(c) != root
        finally:
            c.stop(check=False)
        assert reason in c.read_log(), (name, c.read_log()[-3000:])
    # a newer build of the same product joins (a rolling upgrade)
    c = g.make(0, name="newer", isvsvn=4)
    c.extra_env["EDG_COORDINATOR_KEY_SERVER_ADDR"] = f"127.0.0.1:{listen_port()}"
    c.start()
    try:
        assert c.status() == 2 and root_pem(c) == root
    finally:
        c.stop()


# ---------------------------------------------------------------------------------------------
# faults


def test_etcd_member_killed_under_load(tmp_path, softsgx, group):
    g = group
    m = 30
    set_manifest(g[0], manifest([User(tmp_path, "a")], max_activations=m))
    counts = {"ok": 0, "denied": 0, "unavailable": 0, "ok_after_kill": 0}
    lock = threading.Lock()
    killed = threading.Event()

    def worker(i):
        for _ in range(15):
            try:
                activate(softsgx, g[i], "limited")
                kind = "ok"
            except grpc.RpcError as e:
                kind = "denied" if e.code() == grpc.StatusCode.PERMISSION_DENIED else "unavailable"
                assert kind == "denied" or e.code() in (grpc.StatusCode.UNAVAILABLE,
                                                        grpc.StatusCode.INTERNAL), e
            with lock:
                counts[kind] += 1
                if kind == "ok" and killed.is_set():
                    counts["ok_after_kill"] += 1
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    wait_for(lambda: counts["ok"] >= 6, 60, "activations under way")
    g.etcd.kill(0)
    killed.set()
    for t in threads:
        t.join(timeout=300)
    assert counts["ok_after_kill"] > 0, counts  # activations go on with two members
    # the rest of the budget, after the fault: never more than m in all
    extra = 0
    while True:
        try:
            activate(softsgx, g[extra % 3], "limited")
            extra += 1
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e
            break
        assert counts["ok"] + extra <= m, (counts, extra)
    total = counts["ok"] + extra
    assert m - counts["unavailable"] <= total <= m, (counts, extra)


def test_majority_lost_then_back(tmp_path, softsgx, group):
    g = group
    admin = User(tmp_path, "admin")
    set_manifest(g[0], manifest([admin]))
    k = os.urandom(16)
    assert set_user_key(g[0], admin, k).status_code == 200
    g.etcd.kill(1)
    g.etcd.kill(2)
    for c in g.coords:
        t0 = time.time()
        r = c.get("/api/v2/status")
        assert r.status_code == 503 and "etcd unavailable" in r.json()["message"], r.text
        assert time.time() - t0 < 15
    t0 = time.time()
    r = set_user_key(g[1], admin, os.urandom(16))
    assert r.status_code == 503 and "etcd unavailable" in r.json()["message"], r.text
    with pytest.raises(grpc.RpcError) as e:
        activate(softsgx, g[2])
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert time.time() - t0 < 30
    g.etcd.restart(1)
    g.etcd.restart(2)
    g.etcd.wait_healthy()
    for c in g.coords:  # back by themselves, with nothing changed
        wait_for(lambda: status_or_none(c) == 3, 30, "service after quorum returned")
        assert user_key(c, admin) == k


def test_coordinator_killed_mid_commit_and_restarted(tmp_path, softsgx, group):
    g = group
    admin = User(tmp_path, "admin")
    set_manifest(g[0], manifest([admin], max_activations=1000))
    root = root_pem(g[0])
    stop = threading.Event()
    done = []

    def load():
        while not stop.is_set():
            try:
                activate(softsgx, g[1], "limited")
                done.append(1)
            except (grpc.RpcError, requests.RequestException, OSError):
                pass
    t = threading.Thread(target=load)
    t.start()
    wait_for(lambda: len(done) >= 5, 60, "activations under way")
    g[1].proc.send_signal(signal.SIGKILL)
    g[1].proc.wait()
    stop.set()
    t.join(timeout=120)
    g[1].stop(check=False)
    # restarted on the same host: its own sealed key
    g[1].start()
    assert g[1].status() == 3 and root_pem(g[1]) == root
    assert "opened the shared state with the sealed key" in g[1].read_log()
    activate(softsgx, g[1], "limited")
    # a host whose seal directory is gone: the key comes from a peer
    g[2].proc.send_signal(signal.SIGKILL)
    g[2].stop(check=False)
    shutil.rmtree(g[2].seal_dir)
    g[2].start()
    assert g[2].status() == 3 and root_pem(g[2]) == root
    assert g[2].read_log().count("got the state key from a peer") == 2
    assert set_user_key(g[2], admin, b"\x07" * 16).status_code == 200
    assert user_key(g[0], admin) == b"\x07" * 16


def test_all_seal_dirs_lost_one_recover_restores_the_group(tmp_path, softsgx, healthy):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    g = Group(tmp_path, softsgx, healthy).start()
    try:
        cli = CLI(tmp_path / "cli-home", softsgx)
        cli.dir.mkdir()
        rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (cli.dir / "rk.pem").write_bytes(rk.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        pub = rk.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        admin = User(tmp_path, "admin")
        data = set_manifest(g[0], manifest([admin], recovery_key=pub))
        (cli.dir / "secret.enc").write_bytes(base64.b64decode(data["RecoverySecrets"]["rk"]))
        k = os.urandom(16)
        assert set_user_key(g[1], admin, k).status_code == 200
        root = root_pem(g[0])
        for c in g.coords:
            c.stop()
            shutil.rmtree(c.seal_dir)
        for c in g.coords:
            c.start(expect_ready=False)
        for c in g.coords:
            c.wait_ready(timeout=60)
        assert [c.status() for c in g.coords] == [1, 1, 1]
        era(cli.dir / "era.json")
        p = cli("recover", "secret.enc", addr(g[2]), "--era-config", "era.json", "-k", "rk.pem", check=True)
        assert p.stdout.endswith("Recovery successful.\n")
        for c in g.coords:  # the others take the key from the recovered one
            wait_for(lambda: status_or_none(c) == 3, 30, "the group recovered")
            assert root_pem(c) == root
            assert user_key(c, admin) == k
    finally:
        g.stop()


def test_instance_cut_off_from_etcd(tmp_path, softsgx, healthy):
    proxies = [TcpProxy(p) for p in healthy.client_ports]
    via = ",".join(f"http://127.0.0.1:{p.port}" for p in proxies)
    g = Group(tmp_path, softsgx, healthy, endpoints=[None, None, via]).start()
    try:
        admin = User(tmp_path, "admin")
        set_manifest(g[0], manifest([admin]))
        k1 = os.urandom(16)
        assert set_user_key(g[0], admin, k1).status_code == 200
        assert user_key(g[2], admin) == k1
        for p in proxies:
            p.blackhole()
        k2 = os.urandom(16)
        assert set_user_key(g[0], admin, k2).status_code == 200  # the others go on
        t0 = time.time()
        r = get_as(g[2], "/api/v2/secrets?s=userKey", admin)
        assert r.status_code == 503 and "etcd unavailable" in r.json()["message"], r.text
        assert time.time() - t0 < 15
        r = g[2].get("/api/v2/status")
        assert r.status_code == 503, r.text
        with pytest.raises(grpc.RpcError) as e:
            activate(softsgx, g[2])
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        r = set_user_key(g[2], admin, os.urandom(16))
        assert r.status_code == 503, r.text
        for p in proxies:
            p.heal()
        wait_for(lambda: status_or_none(g[2]) == 3, 30, "service after the partition healed")
        assert user_key(g[2], admin) == k2  # never the stale value
    finally:
        g.stop()
        for p in proxies:
            p.close()
