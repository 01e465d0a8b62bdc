"""A node for the test cluster of mrk8s: what the kubelet, the Deployment and EndpointSlice
controllers, the service-account and root-CA publishers and kube-proxy (for the `kubernetes`
Service only) would do, so that the objects `marblerun install` and a user create actually run.

There is no container runtime here (no Docker engine on this kind of machine). `images` maps a
substring of a container's image name to what runs: its ENTRYPOINT, CMD, WORKDIR, ENV and user,
and `rootfs`, the image's file system (tests/k8s/images.py builds the images of docker/ with
buildah and mounts them), which becomes the lower layer of the container's root. An entry
without `rootfs` runs on a copy-on-write view of the host's / instead (this build's binaries,
tests/k8s/dockerfiles.py). Everything else is done as a kubelet does it, from the objects in
the apiserver:

- Pods are bound to this node, each gets its own network namespace with an address on a bridge
  (pod IPs are real, distinct and reachable from the host, so the apiserver calls the injector
  webhook and the CLI talks to the Coordinator like in a cluster), its own mount namespace with
  a copy-on-write view of the image (overlayfs on a tmpfs) and its volumes bind-mounted at their
  mountPaths: emptyDir, persistentVolumeClaim (a directory per claim, kept across pods),
  secret, configMap, downwardAPI and projected (service-account token by the TokenRequest API,
  kube-root-ca.crt, namespace). /etc/hosts of a pod resolves every Service name to the address
  of a ready pod behind it (kept up to date while the pod runs).
- Containers run as the pod's or container's runAsUser/runAsGroup, with the image's and the
  container's environment (value, fieldRef, secretKeyRef, configMapKeyRef) and the
  KUBERNETES_SERVICE_* variables; readiness probes (httpGet, HTTP or HTTPS) decide the Ready
  condition; restartPolicy is honoured (bounded restarts).
- Pod status, Deployment status and EndpointSlices are written back through the API.

Not done (not needed by these tests): init containers, exec/tcp probes, liveness restarts,
resource limits, ports mapped by Services to different target ports inside the pod network
(clients connect to pod addresses, so the Service port must equal the container port, as in
MarbleRun's chart; the apiserver itself uses the EndpointSlice port, so webhooks work with
any Service port).

    Node(kube, workdir, images).start() / .stop()   also a context manager
    .logs(ns, pod, container=None) -> str
    .pod_ip(ns, pod) -> str or None
    .host_ip -> str                  the host's address on the pod bridge
    .wait_pod_phase(ns, pod, phases, timeout=60) -> pod
"""
import base64
import json
import os
import pathlib
import shlex
import signal
import socket
import subprocess
import threading
import time
import warnings

import requests

import mrk8s

KUBE_SERVICE_IP = mrk8s.KUBERNETES_SERVICE_IP
MAX_RESTARTS = 8


def _sh(*args, check=True):
    p = subprocess.run(list(args), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {p.stderr.strip()}")
    return p


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class _Relay:
    """kube-proxy for the `kubernetes` Service: KUBE_SERVICE_IP:443 -> the apiserver."""

    def __init__(self, listen_ip, target_port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((listen_ip, 443))
        self.sock.listen(64)
        self.target = ("127.0.0.1", target_port)
        self.stop_ev = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.target, timeout=5)
            except OSError:
                c.close()
                continue
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.stop_ev.set()
        self.sock.close()


class _Container:
    def __init__(self, spec, log):
        self.spec = spec
        self.name = spec["name"]
        self.log = log
        self.proc = None
        self.restarts = 0
        self.exit_code = None
        self.started_at = None
        self.next_start = 0.0
        self.ready = False
        self.done = False


class _Pod:
    def __init__(self, obj, index, subnet, base):
        self.ns = obj["metadata"]["namespace"]
        self.name = obj["metadata"]["name"]
        self.uid = obj["metadata"]["uid"]
        self.obj = obj
        self.ip = f"{subnet}.{index + 10}"
        self.index = index
        self.dir = base / f"{self.ns}_{self.name}_{self.uid[:8]}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.netns = f"mrp{os.getpid() % 10000}x{index}"
        self.hosts = self.dir / "hosts"
        self.containers = [_Container(c, self.dir / f"{c['name']}.log")
                           for c in obj["spec"]["containers"]]
        self.phase = "Pending"
        self.message = ""
        self.reported = None

    @property
    def key(self):
        return (self.ns, self.name)


class Node:
    def __init__(self, kube, workdir, images, name="mrnode-0", interval=0.2):
        self.kube = kube
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.images = images
        self.name = name
        self.interval = interval
        r = 100 + os.getpid() % 100
        self.subnet = f"10.244.{r}"
        self.host_ip = f"{self.subnet}.1"
        self.bridge = f"mrbr{r}"
        self.pods = {}
        self.next_index = 0
        self.known_ns = set()
        self.slices = {}
        self.errors = []
        self.stop_ev = threading.Event()
        self.thread = None
        self.relay = None
        self.lock = threading.Lock()

    # ---- lifecycle ----------------------------------------------------------------------

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        _sh("ip", "link", "add", self.bridge, "type", "bridge")
        _sh("ip", "addr", "add", f"{self.host_ip}/24", "dev", self.bridge)
        _sh("ip", "addr", "add", f"{KUBE_SERVICE_IP}/32", "dev", self.bridge)
        _sh("ip", "link", "set", self.bridge, "up")
        self.relay = _Relay(KUBE_SERVICE_IP, self.kube.port)
        self.kube.apply({"apiVersion": "v1", "kind": "Node",
                         "metadata": {"name": self.name,
                                      "labels": {"kubernetes.io/hostname": self.name}}})
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.stop_ev.set()
        if self.thread is not None:
            self.thread.join(timeout=30)
        for p in list(self.pods.values()):
            self._kill_pod(p)
        if self.relay is not None:
            self.relay.close()
        _sh("ip", "link", "del", self.bridge, check=False)

    # ---- queries ------------------------------------------------------------------------

    def logs(self, ns, pod, container=None):
        with self.lock:
            p = self.pods.get((ns, pod))
        if p is None:
            return ""
        c = next((c for c in p.containers if container in (None, c.name)), None)
        try:
            return c.log.read_text(errors="replace") if c else ""
        except OSError:
            return ""

    def all_logs(self):
        out = []
        with self.lock:
            pods = list(self.pods.values())
        for p in pods:
            for c in p.containers:
                try:
                    text = c.log.read_text(errors="replace")[-3000:]
                except OSError:
                    text = ""
                out.append(f"--- {p.ns}/{p.name}/{c.name} ({p.phase}):\n{text}")
        return "\n".join(out + [f"node errors: {e}" for e in self.errors[-10:]])

    def pod_ip(self, ns, pod):
        with self.lock:
            p = self.pods.get((ns, pod))
        return p.ip if p else None

    def wait_pod_phase(self, ns, pod, phases, timeout=60):
        def check():
            o = self.kube.get_or_none(f"/api/v1/namespaces/{ns}/pods/{pod}")
            return o if o and o.get("status", {}).get("phase") in phases else None
        try:
            return self.kube.wait_for(check, timeout=timeout, interval=0.2,
                                      what=f"pod {ns}/{pod} in {phases}")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\n{self.all_logs()}") from None

    # ---- the loop -----------------------------------------------------------------------

    def _run(self):
        while not self.stop_ev.wait(self.interval):
            try:
                self._namespaces()
                # one list of the pods per round for every controller (what they create or
                # change is seen in the next round)
                pods = self.kube.get("/api/v1/pods")["items"]
            except Exception as e:  # noqa: BLE001 - a controller keeps going
                self.errors.append(f"list: {e!r}")
                continue
            for step in (self._deployments, self._pods, self._services):
                try:
                    step(pods)
                except Exception as e:  # noqa: BLE001 - a controller keeps going
                    self.errors.append(f"{step.__name__}: {e!r}")

    def _namespaces(self):
        for ns in self.kube.get("/api/v1/namespaces")["items"]:
            n = ns["metadata"]["name"]
            if n in self.known_ns:
                continue
            self.kube.create_service_account(n, "default")
            self.kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "kube-root-ca.crt", "namespace": n},
                             "data": {"ca.crt": self.kube.ca_pem.decode()}},
                            field_manager="mrnode")
            self.known_ns.add(n)

    def _deployments(self, pods):
        deps = self.kube.get("/apis/apps/v1/deployments")["items"]
        uids = {d["metadata"]["uid"] for d in deps}
        for p in pods:  # the garbage collector: pods of a deleted Deployment go with it
            refs = [o for o in p["metadata"].get("ownerReferences", [])
                    if o.get("kind") == "Deployment"]
            if refs and not any(o["uid"] in uids for o in refs) and \
                    not p["metadata"].get("deletionTimestamp"):
                self.kube.request("DELETE", f"/api/v1/namespaces/{p['metadata']['namespace']}"
                                  f"/pods/{p['metadata']['name']}", expect=(200, 202, 404))
        for d in deps:
            meta = d["metadata"]
            ns, uid = meta["namespace"], meta["uid"]
            owned = [p for p in pods
                     if any(o.get("uid") == uid for o in p["metadata"].get("ownerReferences", []))
                     and not p["metadata"].get("deletionTimestamp")]
            want = d["spec"].get("replicas", 1)
            for _ in range(want - len(owned)):
                tpl = d["spec"]["template"]
                pod = {"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"generateName": meta["name"] + "-", "namespace": ns,
                                    "labels": dict(tpl["metadata"].get("labels", {})),
                                    "annotations": dict(tpl["metadata"].get("annotations", {})),
                                    "ownerReferences": [{"apiVersion": "apps/v1",
                                                         "kind": "Deployment",
                                                         "name": meta["name"], "uid": uid,
                                                         "controller": True}]},
                       "spec": tpl["spec"]}
                owned.append(self.kube.create(f"/api/v1/namespaces/{ns}/pods", pod))
            for extra in owned[want:]:
                self.kube.delete(f"/api/v1/namespaces/{ns}/pods/{extra['metadata']['name']}")
            owned = owned[:want]
            ready = sum(1 for p in owned if _is_ready(p))
            st = d.get("status", {})
            new = {"replicas": len(owned), "readyReplicas": ready, "availableReplicas": ready,
                   "updatedReplicas": len(owned), "observedGeneration": meta.get("generation", 1)}
            if any(st.get(k, 0) != v for k, v in new.items()):
                self.kube.request("PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/"
                                  f"{meta['name']}/status", {"status": new},
                                  content_type="application/merge-patch+json")

    def _pods(self, pods):
        seen = set()
        for o in pods:
            key = (o["metadata"]["namespace"], o["metadata"]["name"])
            with self.lock:
                p = self.pods.get(key)
            if p is not None and p.uid != o["metadata"]["uid"]:
                self._kill_pod(p)  # same name, new pod
                p = None
            if o["metadata"].get("deletionTimestamp"):
                if p is not None:
                    self._kill_pod(p)
                self.kube.request("DELETE", f"/api/v1/namespaces/{key[0]}/pods/{key[1]}",
                                  {"gracePeriodSeconds": 0}, expect=(200, 202, 404))
                continue
            seen.add(key)
            if p is None:
                if o.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                    continue
                p = self._admit(o)
            p.obj = o
            self._tick(p)
        with self.lock:
            gone = [p for k, p in self.pods.items() if k not in seen]
        for p in gone:
            self._kill_pod(p)

    def _services(self, pods):
        pods = [p for p in pods if _is_ready(p)]
        for s in self.kube.get("/api/v1/services")["items"]:
            sel = s["spec"].get("selector")
            ns, name = s["metadata"]["namespace"], s["metadata"]["name"]
            if not sel:
                continue
            match = [p for p in pods if p["metadata"]["namespace"] == ns and
                     all(p["metadata"].get("labels", {}).get(k) == v for k, v in sel.items())]
            ports = []
            for sp in s["spec"].get("ports", []):
                tp = sp.get("targetPort", sp["port"])
                if isinstance(tp, str):
                    tp = next((cp["containerPort"] for p in match
                               for c in p["spec"]["containers"] for cp in c.get("ports", [])
                               if cp.get("name") == tp), None)
                    if tp is None:
                        continue
                ports.append({"name": sp.get("name", ""), "port": int(tp),
                              "protocol": sp.get("protocol", "TCP")})
            ips = sorted(p["status"]["podIP"] for p in match)
            obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                   "metadata": {"name": f"{name}-mrnode", "namespace": ns,
                                "labels": {"kubernetes.io/service-name": name,
                                           "endpointslice.kubernetes.io/managed-by": "mrnode"}},
                   "addressType": "IPv4",
                   "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips],
                   "ports": ports}
            if self.slices.get((ns, name)) != obj:
                self.kube.apply(obj, field_manager="mrnode")
                self.slices[(ns, name)] = obj
        self._write_hosts()

    # ---- pods ---------------------------------------------------------------------------

    def _admit(self, o):
        ns, name = o["metadata"]["namespace"], o["metadata"]["name"]
        with self.lock:
            p = _Pod(o, self.next_index, self.subnet, self.dir / "pods")
            self.next_index += 1
            self.pods[p.key] = p
        if not o["spec"].get("nodeName"):
            self.kube.create(f"/api/v1/namespaces/{ns}/pods/{name}/binding",
                             {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                              "target": {"apiVersion": "v1", "kind": "Node", "name": self.name}})
        if o["spec"].get("initContainers"):
            p.phase, p.message = "Failed", "mrnode: init containers are not supported"
            return p
        veth = f"mrv{os.getpid() % 10000}x{p.index}"
        _sh("ip", "netns", "add", p.netns)
        _sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", p.netns)
        _sh("ip", "link", "set", veth, "master", self.bridge)
        _sh("ip", "link", "set", veth, "up")
        for cmd in (["ip", "addr", "add", f"{p.ip}/24", "dev", "eth0"],
                    ["ip", "link", "set", "eth0", "up"], ["ip", "link", "set", "lo", "up"],
                    ["ip", "route", "add", "default", "via", self.host_ip]):
            _sh("ip", "netns", "exec", p.netns, *cmd)
        self._write_hosts()
        return p

    def _tick(self, p):
        if p.phase in ("Succeeded", "Failed"):
            self._report(p)
            return
        policy = p.obj["spec"].get("restartPolicy", "Always")
        now = time.time()
        for c in p.containers:
            if c.proc is not None and c.proc.poll() is not None:
                c.exit_code, c.proc, c.ready = c.proc.returncode, None, False
                again = policy == "Always" or (policy == "OnFailure" and c.exit_code != 0)
                if again and c.restarts < MAX_RESTARTS:
                    c.restarts += 1
                    c.next_start = now + min(0.25 * 2 ** c.restarts, 5.0)
                else:
                    c.done = True
            if c.proc is None and not c.done and now >= c.next_start:
                try:
                    self._start_container(p, c)
                except _NotYet as e:
                    p.message = str(e)
                    c.next_start = now + 0.5
            if c.proc is not None and not c.ready:
                c.ready = self._probe(p, c)
        if all(c.done for c in p.containers):
            p.phase = "Succeeded" if all(c.exit_code == 0 for c in p.containers) else "Failed"
        elif any(c.started_at for c in p.containers):
            p.phase = "Running"
        self._report(p)

    def _report(self, p):
        ready = p.phase == "Running" and all(c.ready for c in p.containers)
        statuses = []
        for c in p.containers:
            if c.proc is not None:
                state = {"running": {"startedAt": c.started_at}}
            elif c.exit_code is not None:
                state = {"terminated": {"exitCode": c.exit_code, "reason":
                                        "Completed" if c.exit_code == 0 else "Error"}}
            else:
                state = {"waiting": {"reason": "ContainerCreating", "message": p.message}}
            statuses.append({"name": c.name, "ready": c.ready, "restartCount": c.restarts,
                             "image": c.spec.get("image", ""), "imageID": "", "state": state,
                             "started": c.proc is not None})
        cond = "True" if ready else "False"
        status = {"phase": p.phase, "hostIP": self.host_ip, "podIP": p.ip,
                  "podIPs": [{"ip": p.ip}], "message": p.message,
                  "conditions": [{"type": t, "status": cond if t in ("Ready", "ContainersReady")
                                  else "True"} for t in
                                 ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
                  "containerStatuses": statuses}
        if p.reported == status:
            return
        self.kube.request("PATCH", f"/api/v1/namespaces/{p.ns}/pods/{p.name}/status",
                          {"status": status}, content_type="application/merge-patch+json",
                          expect=(200, 404))
        p.reported = status

    def _probe(self, p, c):
        pr = c.spec.get("readinessProbe")
        if not pr:
            return True
        g = pr.get("httpGet")
        if g is None:
            return True  # exec/tcp probes are not run here
        port = g["port"]
        if isinstance(port, str):
            port = next(cp["containerPort"] for cp in c.spec.get("ports", [])
                        if cp.get("name") == port)
        url = f"{g.get('scheme', 'HTTP').lower()}://{p.ip}:{port}{g.get('path', '/')}"
        try:
            with warnings.catch_warnings():  # the kubelet does not verify probe certificates
                warnings.simplefilter("ignore")
                return requests.get(url, timeout=1, verify=False).status_code < 400
        except requests.RequestException:
            return False

    def _kill_pod(self, p):
        for c in p.containers:
            if c.proc is not None and c.proc.poll() is None:
                try:
                    os.killpg(c.proc.pid, signal.SIGTERM)
                    c.proc.wait(timeout=10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(c.proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    c.proc.wait()
            c.proc = None
        _sh("ip", "netns", "del", p.netns, check=False)
        with self.lock:
            if self.pods.get(p.key) is p:
                del self.pods[p.key]

    # ---- what runs in a pod -------------------------------------------------------------

    def _image(self, image):
        for k, v in self.images.items():
            if k in image:
                return v
        raise _NotYet(f"mrnode: no local binary for image {image}")

    def _start_container(self, p, c):
        img = self._image(c.spec.get("image", ""))
        mounts = self._volumes(p, c)
        env = self._env(p, c, img)
        cmd = list(c.spec.get("command") or img.get("entrypoint", []))
        args = c.spec.get("args")
        cmd += list(args if args is not None else ([] if c.spec.get("command") else
                                                    img.get("cmd", [])))
        uid, gid = self._user(p, c, img)
        root = p.dir / f"root-{c.name}"
        layer = p.dir / f"layer-{c.name}"
        for d in (root, layer):
            d.mkdir(exist_ok=True)
        lower = img.get("rootfs", "/")
        lines = ["set -eu", f"mount -t tmpfs tmpfs {shlex.quote(str(layer))}",
                 f"mkdir {shlex.quote(str(layer))}/up {shlex.quote(str(layer))}/wk",
                 f"mount -t overlay overlay -o lowerdir={lower},upperdir={layer}/up,"
                 f"workdir={layer}/wk {shlex.quote(str(root))}"]
        for d in ("/proc", "/sys", "/dev"):
            lines.append(f"mkdir -p {shlex.quote(str(root) + d)}")
            lines.append(f"mount --rbind {d} {shlex.quote(str(root) + d)}")
        lines.append(f"touch {shlex.quote(str(root))}/etc/hosts")
        lines.append(f"mount --bind {shlex.quote(str(p.hosts))} {shlex.quote(str(root))}/etc/hosts")
        for src, dst, ro, is_file in mounts:
            # a mount point is created below root with the lower layer's symlinks resolved
            # (/var/run -> /run), never through a symlink to outside root
            t = shlex.quote(str(root) + _resolve_in(lower, dst))
            lines.append(f"mkdir -p $(dirname {t}) && touch {t}" if is_file else f"mkdir -p {t}")
            lines.append(f"mount --bind {shlex.quote(str(src))} {t}")
            if ro:
                lines.append(f"mount -o remount,bind,ro {t}")
        workdir = c.spec.get("workingDir") or img.get("workdir", "/")
        wd = shlex.quote(str(root) + _resolve_in(lower, workdir))
        lines.append(f"mkdir -p {wd}")
        if uid is not None:
            lines.append(f"chown {uid}:{gid} {wd}")
        user = [f"--userspec={uid}:{gid}", "--groups="] if uid is not None else []
        envargs = [f"{k}={v}" for k, v in env.items()]
        lines.append("exec " + " ".join(shlex.quote(a) for a in [
            "chroot", *user, str(root), "/usr/bin/env", "-i", "-C", workdir, *envargs, *cmd]))
        script = p.dir / f"run-{c.name}.sh"
        script.write_text("\n".join(lines) + "\n")
        log = open(c.log, "ab")
        log.write(f"--- mrnode: start {c.name} (restart {c.restarts}): {json.dumps(cmd)}\n".encode())
        log.flush()
        c.proc = subprocess.Popen(["ip", "netns", "exec", p.netns, "unshare", "-m",
                                   "--propagation", "private", "sh", str(script)],
                                  stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True)
        log.close()
        c.started_at = _now()
        c.exit_code = None
        c.ready = False
        p.message = ""

    def _user(self, p, c, img):
        psc = p.obj["spec"].get("securityContext", {}) or {}
        csc = c.spec.get("securityContext", {}) or {}
        uid = csc.get("runAsUser", psc.get("runAsUser", img.get("uid")))
        gid = csc.get("runAsGroup", psc.get("runAsGroup", uid))
        return uid, gid

    def _owner(self, p, c, path, img):
        uid, gid = self._user(p, c, img)
        fs_group = (p.obj["spec"].get("securityContext", {}) or {}).get("fsGroup")
        if uid is not None:
            for d, _, files in os.walk(path):
                for f in [d] + [os.path.join(d, x) for x in files]:
                    os.chown(f, uid, fs_group if fs_group is not None else gid)

    def _volumes(self, p, c):
        vols = {v["name"]: v for v in p.obj["spec"].get("volumes", [])}
        img = self._image(c.spec.get("image", ""))
        out = []
        for m in c.spec.get("volumeMounts", []):
            v = vols.get(m["name"])
            if v is None:
                raise _NotYet(f"mrnode: volume {m['name']} is not defined")
            src = self._volume(p, v)
            self._owner(p, c, src, img)
            is_file = False
            if m.get("subPath"):
                src = src / m["subPath"]
                is_file = src.is_file()
            out.append((src, m["mountPath"], bool(m.get("readOnly")), is_file))
        return out

    def _volume(self, p, v):
        d = p.dir / "volumes" / v["name"]
        if "persistentVolumeClaim" in v:
            d = self.dir / "pvc" / p.ns / v["persistentVolumeClaim"]["claimName"]
            d.mkdir(parents=True, exist_ok=True)
            return d
        if d.exists() and "emptyDir" in v:
            return d
        d.mkdir(parents=True, exist_ok=True)
        if "emptyDir" in v:
            return d
        files = {}
        if "secret" in v:
            files = self._keys(p.ns, "secrets", v["secret"]["secretName"], v["secret"])
        elif "configMap" in v:
            files = self._keys(p.ns, "configmaps", v["configMap"]["name"], v["configMap"])
        elif "downwardAPI" in v:
            files = {i["path"]: self._field(p, i["fieldRef"]["fieldPath"]).encode()
                     for i in v["downwardAPI"]["items"]}
        elif "projected" in v:
            for s in v["projected"]["sources"]:
                if "serviceAccountToken" in s:
                    t = s["serviceAccountToken"]
                    sa = p.obj["spec"].get("serviceAccountName", "default")
                    files[t["path"]] = self.kube.token(
                        p.ns, sa, seconds=t.get("expirationSeconds", 3607),
                        audiences=[t["audience"]] if t.get("audience") else None).encode()
                elif "configMap" in s:
                    files.update(self._keys(p.ns, "configmaps", s["configMap"]["name"],
                                            s["configMap"]))
                elif "secret" in s:
                    files.update(self._keys(p.ns, "secrets", s["secret"]["name"], s["secret"]))
                elif "downwardAPI" in s:
                    files.update({i["path"]: self._field(p, i["fieldRef"]["fieldPath"]).encode()
                                  for i in s["downwardAPI"]["items"]})
        else:
            raise _NotYet(f"mrnode: volume type of {v['name']} is not supported")
        for name, data in files.items():
            f = d / name
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(data)
            f.chmod(0o644)
        return d

    def _keys(self, ns, kind, name, ref):
        o = self.kube.get_or_none(f"/api/v1/namespaces/{ns}/{kind}/{name}")
        if o is None:
            if ref.get("optional"):
                return {}
            raise _NotYet(f"mrnode: {kind[:-1]} {ns}/{name} not found")
        data = {k: base64.b64decode(x) for k, x in o.get("data", {}).items()} \
            if kind == "secrets" else {k: x.encode() for k, x in o.get("data", {}).items()}
        data.update({k: base64.b64decode(x) for k, x in o.get("binaryData", {}).items()})
        if ref.get("items"):
            return {i["path"]: data[i["key"]] for i in ref["items"] if i["key"] in data}
        return data

    def _field(self, p, path):
        meta = p.obj["metadata"]
        simple = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"],
                  "metadata.uid": meta["uid"], "spec.nodeName": self.name,
                  "spec.serviceAccountName": p.obj["spec"].get("serviceAccountName", "default"),
                  "status.podIP": p.ip, "status.hostIP": self.host_ip}
        if path in simple:
            return simple[path]
        for kind in ("labels", "annotations"):
            if path == f"metadata.{kind}":
                return "\n".join(f'{k}="{v}"' for k, v in sorted(meta.get(kind, {}).items()))
            if path.startswith(f"metadata.{kind}['"):
                return meta.get(kind, {}).get(path[len(kind) + 11:-2], "")
        raise _NotYet(f"mrnode: fieldRef {path} is not supported")

    def _env(self, p, c, img):
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOSTNAME": p.name}
        env.update(img.get("env", {}))
        env.update({"KUBERNETES_SERVICE_HOST": KUBE_SERVICE_IP, "KUBERNETES_SERVICE_PORT": "443",
                    "KUBERNETES_SERVICE_PORT_HTTPS": "443"})
        for e in c.spec.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
                continue
            vf = e.get("valueFrom", {})
            if "fieldRef" in vf:
                env[e["name"]] = self._field(p, vf["fieldRef"]["fieldPath"])
            elif "secretKeyRef" in vf or "configMapKeyRef" in vf:
                kind = "secrets" if "secretKeyRef" in vf else "configmaps"
                ref = vf.get("secretKeyRef") or vf.get("configMapKeyRef")
                data = self._keys(p.ns, kind, ref["name"], ref)
                if ref["key"] in data:
                    env[e["name"]] = data[ref["key"]].decode()
                elif not ref.get("optional"):
                    raise _NotYet(f"mrnode: key {ref['key']} not in {ref['name']}")
            else:
                env[e["name"]] = ""
        return env

    def _write_hosts(self):
        """Every Service name -> the address of a ready pod behind it."""
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost"]
        for (ns, name), obj in sorted(self.slices.items()):
            if not obj["endpoints"]:
                continue
            ip = obj["endpoints"][0]["addresses"][0]
            lines.append(f"{ip}\t{name}.{ns}.svc.cluster.local {name}.{ns}.svc {name}.{ns}")
        with self.lock:
            pods = list(self.pods.values())
        for p in pods:
            own = [f"{p.ip}\t{p.name}"]
            same = [f"{obj['endpoints'][0]['addresses'][0]}\t{name}"
                    for (ns, name), obj in sorted(self.slices.items())
                    if ns == p.ns and obj["endpoints"]]
            text = "\n".join(lines + own + same) + "\n"
            try:
                if p.hosts.exists() and p.hosts.read_text() == text:
                    continue
                with open(p.hosts, "r+" if p.hosts.exists() else "w") as f:
                    f.seek(0)
                    f.write(text)
                    f.truncate()  # in place: the file is bind-mounted into the pod
            except OSError:
                pass


class _NotYet(Exception):
    """A pod cannot start yet (a Secret it mounts is missing, ...): the kubelet retries."""


def _resolve_in(lower, path, depth=0):
    """path with the symlinks of the file system at lower resolved inside it (as the kernel
    would after chroot to it): an absolute path below lower's root."""
    if lower == "/":
        return os.path.realpath(path)
    out = []
    parts = [x for x in path.split("/") if x not in ("", ".")]
    while parts:
        name = parts.pop(0)
        if name == "..":
            if out:
                out.pop()
            continue
        full = os.path.join(lower, *out, name)
        if os.path.islink(full) and depth < 40:
            target = os.readlink(full)
            rest = _resolve_in(lower, target if target.startswith("/") else
                               "/" + "/".join(out + [target]), depth + 1)
            out = [x for x in rest.split("/") if x]
            continue
        out.append(name)
    return "/" + "/".join(out)


def _is_ready(p):
    return p.get("status", {}).get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in p.get("status", {}).get("conditions", []))
