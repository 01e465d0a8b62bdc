"""Helpers for the Transparent TLS end-to-end tests (docs/ttls.md): a Coordinator with a manifest
whose TLS section names the test ports, marbles started through marblerun-premain (which
preloads libmarble-ttls.so), a loopback capture, and passive readiness checks (connecting to a
TTLS port only to see whether it listens would itself be a refused client)."""
import json
import os
import pathlib
import socket
import struct
import subprocess
import threading
import time

from mrharness import BIN, MRENCLAVE, Coordinator

PREMAIN = BIN / "marblerun-premain"
TTLS_LIB = BIN.parent / "lib" / "libmarble-ttls.so"
PY = "/usr/bin/python3"
APPS = pathlib.Path(__file__).resolve().parent / "ttls_apps"


def base_env():
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("EDG_", "MARBLE_", "LD_PRELOAD", "PYTHON"))}


class Deployment:
    """A Coordinator (softsgx, or simulation mode) with one manifest."""

    def __init__(self, workdir, softsgx, manifest, simulation=False):
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.softsgx = None if simulation else softsgx
        extra = {"EDG_COORDINATOR_SIMULATION": "1"} if simulation else {}
        self.coord = Coordinator(self.dir / "coord", self.softsgx, extra)
        self.coord.workdir.mkdir(parents=True, exist_ok=True)
        self.coord.start()
        self.coord.set_manifest(json.dumps(manifest).encode())
        self.procs = []

    def env(self, marble_type, workdir, extra=None):
        e = base_env()
        e.update({"EDG_MARBLE_TYPE": marble_type, "EDG_MARBLE_COORDINATOR_ADDR": self.coord.mesh,
                  "EDG_MARBLE_DNS_NAMES": "localhost", "EDG_MARBLE_UUID_FILE": str(workdir / "uuid"),
                  "EDG_LOG_FORMAT": "console"})
        if self.softsgx is not None:
            e.update({k: v for k, v in self.softsgx.env().items() if k.startswith("EDG_SOFTSGX")})
            e["EDG_ATTESTATION"] = "softsgx"
        else:
            e["EDG_ATTESTATION"] = "simulation"
        e.update(extra or {})
        return e

    def workdir(self, name):
        d = self.dir / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def start(self, marble_type, argv, name, extra_env=None):
        """A long-running marble; its output goes to <name>.log."""
        d = self.workdir(name)
        p = MarbleProc(d, marble_type, argv, self.env(marble_type, d, extra_env))
        self.procs.append(p)
        return p

    def run(self, marble_type, argv, name, timeout=120, extra_env=None, input=None):
        d = self.workdir(name)
        return subprocess.run([str(PREMAIN), "--", *argv], env=self.env(marble_type, d, extra_env),
                              cwd=d, capture_output=True, timeout=timeout, input=input)

    def stop(self):
        for p in self.procs:
            p.stop()
        self.coord.stop()


class MarbleProc:
    def __init__(self, workdir, marble_type, argv, env):
        self.dir = workdir
        self.log_path = workdir / "out.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(PREMAIN), "--", *argv], env=env, cwd=workdir,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @property
    def pid(self):
        return self.proc.pid

    def text(self):
        return self.log_path.read_text(errors="replace")

    def wait_log(self, needle, timeout=30):
        deadline = time.time() + timeout
        while needle not in self.text():
            assert self.proc.poll() is None, f"marble exited with {self.proc.returncode}:\n{self.text()}"
            assert time.time() < deadline, f"no {needle!r} in:\n{self.text()}"
            time.sleep(0.02)

    def wait_listening(self, port, timeout=30):
        deadline = time.time() + timeout
        while not listening(port):
            assert self.proc.poll() is None, f"marble exited with {self.proc.returncode}:\n{self.text()}"
            assert time.time() < deadline, f"port {port} not listening:\n{self.text()}"
            time.sleep(0.02)

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 15)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        self.log.close()


def listening(port):
    """Whether something listens on the TCP port (from /proc/net/tcp{,6}, without connecting)."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = pathlib.Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def environ_of(pid):
    return pathlib.Path(f"/proc/{pid}/environ").read_bytes()


def descendants(pid):
    """pid and every process below it."""
    kids = {}
    for p in pathlib.Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(p.name))
    out, todo = [], [pid]
    while todo:
        x = todo.pop()
        out.append(x)
        todo.extend(kids.get(x, []))
    return out


class Capture:
    """TCP payloads on the loopback interface for some ports, read with an AF_PACKET socket
    (needs CAP_NET_RAW; `available` says whether it could be opened)."""

    def __init__(self, ports):
        self.ports = set(ports)
        self.segments = []  # (src port, dst port, payload)
        self.available = True
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
            self.sock.bind(("lo", 0))
            self.sock.settimeout(0.1)
        except (PermissionError, OSError):
            self.available = False
            return
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            try:
                frame, addr = self.sock.recvfrom(65600)
            except socket.timeout:
                continue
            except OSError:
                return
            if addr[2] == socket.PACKET_OUTGOING:  # loopback: every packet also comes in
                continue
            seg = self._tcp(frame)
            if seg and (seg[0] in self.ports or seg[1] in self.ports):
                self.segments.append(seg)

    @staticmethod
    def _tcp(frame):
        etype = struct.unpack("!H", frame[12:14])[0]
        p = frame[14:]
        if etype == 0x0800 and len(p) >= 20 and p[9] == 6:
            ihl = (p[0] & 0x0F) * 4
            total = struct.unpack("!H", p[2:4])[0]
            tcp = p[ihl:total]
        elif etype == 0x86DD and len(p) >= 40 and p[6] == 6:
            plen = struct.unpack("!H", p[4:6])[0]
            tcp = p[40:40 + plen]
        else:
            return None
        if len(tcp) < 20:
            return None
        sport, dport = struct.unpack("!HH", tcp[:4])
        off = (tcp[12] >> 4) * 4
        return sport, dport, bytes(tcp[off:])

    def stop(self):
        if self.available:
            self.running = False
            self.thread.join(timeout=5)
            self.sock.close()

    def stream_to(self, port):
        """Payload bytes sent to the port (all connections concatenated, in capture order)."""
        return b"".join(s[2] for s in self.segments if s[1] == port)

    def stream_from(self, port):
        return b"".join(s[2] for s in self.segments if s[0] == port)

    def first_payloads_to(self, port):
        """The first payload of every client -> port connection."""
        seen, out = set(), []
        for sport, dport, data in self.segments:
            if dport == port and data and sport not in seen:
                seen.add(sport)
                out.append(data)
        return out


def manifest(marbles, tls, package=None):
    pkg = package or {"UniqueID": MRENCLAVE, "Debug": False}
    return {"Packages": {"pkg": pkg},
            "Marbles": {name: {"Package": "pkg", "TLS": tags, "Parameters": {}}
                        for name, tags in marbles.items()},
            "TLS": tls}
