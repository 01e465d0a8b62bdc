"""A real etcd cluster on loopback for the distributed tests: Debian's etcd-server members
started here, killed and restarted by the tests, and read back with etcdctl for dumps."""
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from mrharness import SOURCE_DIR, free_port

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


_etcd_stubs = None


def etcd_stubs():
    """Python modules generated from proto/etcd.proto (our text of etcd's API) with grpc_tools:
    a second, independent client of the same wire format."""
    global _etcd_stubs
    if _etcd_stubs is None:
        out = tempfile.mkdtemp(prefix="mr-etcd-proto-")
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{SOURCE_DIR / 'proto'}",
                        f"--python_out={out}", f"--grpc_python_out={out}",
                        str(SOURCE_DIR / "proto" / "etcd.proto")], check=True)
        sys.path.insert(0, out)
        import etcd_pb2
        import etcd_pb2_grpc
        _etcd_stubs = (etcd_pb2, etcd_pb2_grpc)
    return _etcd_stubs


class EtcdCluster:
    """n members named m0..m(n-1) with data under workdir/etcd-<i>."""

    def __init__(self, workdir, n=3, host="127.0.0.1"):
        self.workdir = pathlib.Path(workdir)
        self.n = n
        self.host = host
        self.client_ports = [free_port() for _ in range(n)]
        self.peer_ports = [free_port() for _ in range(n)]
        self.procs = [None] * n
        self.initial = ",".join(f"m{i}=http://{host}:{self.peer_ports[i]}" for i in range(n))

    @property
    def endpoints(self):
        return ",".join(f"http://{self.host}:{p}" for p in self.client_ports)

    def endpoint(self, i):
        return f"http://{self.host}:{self.client_ports[i]}"

    def _spawn(self, i):
        d = self.workdir / f"etcd-{i}"
        d.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / f"etcd-{i}.log", "ab")
        curl = f"http://{self.host}:{self.client_ports[i]}"
        purl = f"http://{self.host}:{self.peer_ports[i]}"
        self.procs[i] = subprocess.Popen(
            [ETCD, "--name", f"m{i}", "--data-dir", str(d / "data"),
             "--listen-client-urls", curl, "--advertise-client-urls", curl,
             "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
             "--initial-cluster", self.initial, "--initial-cluster-state", "new",
             "--heartbeat-interval", "50", "--election-timeout", "500",
             "--max-txn-ops", "4096", "--max-request-bytes", "33554432",
             "--log-level", "error", "--logger", "zap"],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def start(self):
        for i in range(self.n):
            self._spawn(i)
        self.wait_healthy()
        return self

    def wait_healthy(self, members=None, timeout=30):
        """Each member serves a linearizable read (it is part of a cluster with a leader)."""
        import grpc
        pb, pbg = etcd_stubs()
        members = range(self.n) if members is None else members
        deadline = time.time() + timeout
        for i in members:
            while True:
                try:
                    with grpc.insecure_channel(f"{self.host}:{self.client_ports[i]}") as ch:
                        pbg.KVStub(ch).Range(pb.RangeRequest(key=b"health"), timeout=1)
                    break
                except grpc.RpcError as e:
                    if time.time() > deadline:
                        raise RuntimeError(f"etcd member {i} not healthy: {e}")
                    time.sleep(0.1)

    def kill(self, i):
        p = self.procs[i]
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
        self.procs[i] = None

    def restart(self, i):
        self.kill(i)
        self._spawn(i)

    def stop(self):
        for i in range(self.n):
            self.kill(i)

    def _kv(self):
        import grpc
        pb, pbg = etcd_stubs()
        for i in range(self.n):
            if self.procs[i] is not None and self.procs[i].poll() is None:
                ch = grpc.insecure_channel(f"{self.host}:{self.client_ports[i]}")
                return ch, pb, pbg.KVStub(ch)
        raise RuntimeError("no etcd member is running")

    def dump(self, prefix=b"/"):
        """Every (key, value) under prefix as raw bytes."""
        ch, pb, kv = self._kv()
        with ch:
            end = bytearray(prefix)
            end[-1] += 1
            r = kv.Range(pb.RangeRequest(key=prefix, range_end=bytes(end)), timeout=10)
            return [(x.key, x.value) for x in r.kvs]

    def put(self, key: bytes, value: bytes):
        """A raw write (bypassing the Coordinator), e.g. to tamper with the state."""
        import grpc
        for attempt in range(5):
            ch, pb, kv = self._kv()
            with ch:
                try:
                    kv.Put(pb.PutRequest(key=key, value=value), timeout=10)
                    return
                except grpc.RpcError as e:  # a leader change in flight: etcd says try again
                    if e.code() != grpc.StatusCode.UNAVAILABLE or attempt == 4:
                        raise


def port_open(host, port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class TcpProxy:
    """127.0.0.1:<port> forwarded to 127.0.0.1:<target>. blackhole() keeps every connection
    open but forwards nothing more (a partition as the Coordinator sees it: no answers, no
    resets); heal() forwards again, from fresh connections."""

    def __init__(self, target_port):
        import threading
        self.target = target_port
        self.lock = threading.Lock()
        self.conns = []
        self.holed = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                holed = self.holed
            if holed:  # accepted, never answered
                with self.lock:
                    self.conns.append((c, None))
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.target), timeout=2)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns.append((c, u))
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c), daemon=True).start()

    def _pump(self, a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                while True:
                    with self.lock:
                        holed = self.holed
                    if not holed:
                        break
                    time.sleep(0.05)  # hold the bytes: nothing gets through
                    if self.closed:
                        return
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def blackhole(self):
        with self.lock:
            self.holed = True

    def heal(self):
        with self.lock:
            self.holed = False
            conns, self.conns = self.conns, []
        for c, u in conns:  # stalled connections are dropped; the client reconnects
            for s in (c, u):
                if s is not None:
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    s.close()

    def close(self):
        self.closed = True
        self.heal()
        self.sock.close()
