"""End-to-end tests of the hello-mtls sample marbles: started through marblerun-premain
against a real softsgx Coordinator with the sample manifest, they complete an mTLS exchange;
a client whose certificate comes from another Coordinator is refused; the demo script runs."""
import json
import os
import pathlib
import socket
import subprocess
import time

import pytest

from mrharness import BIN, SOURCE_DIR, Coordinator, SoftSGX, free_port

MANIFEST = SOURCE_DIR / "samples" / "hello-mtls" / "manifest.json"
SIGNER = json.loads(MANIFEST.read_text())["Packages"]["hello"]["SignerID"]


@pytest.fixture(scope="module")
def softsgx(tmp_path_factory):
    return SoftSGX(tmp_path_factory.mktemp("softsgx") / "pki")


def start_coordinator(workdir, softsgx):
    workdir.mkdir(parents=True)
    c = Coordinator(workdir, softsgx).start()
    c.set_manifest(MANIFEST.read_bytes())
    return c


def marble_env(coord, softsgx, marble_type, workdir, **extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("EDG_", "MARBLE_", "HELLO_"))}
    e.update(softsgx.env(mrsigner=SIGNER, isvprodid=1, isvsvn=1))
    e.update({"EDG_MARBLE_TYPE": marble_type, "EDG_MARBLE_COORDINATOR_ADDR": coord.mesh,
              "EDG_MARBLE_DNS_NAMES": "localhost", "EDG_MARBLE_UUID_FILE": str(workdir / "uuid")})
    e.update(extra)
    return e


class Server:
    def __init__(self, coord, softsgx, workdir):
        self.dir = workdir
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.log = self.dir / "server.log"
        env = marble_env(coord, softsgx, "hello-server", self.dir, HELLO_LISTEN=f"127.0.0.1:{self.port}")
        with open(self.log, "wb") as f:
            self.proc = subprocess.Popen([str(BIN / "marblerun-premain"), "--", str(BIN / "hello-mtls-server")],
                                         env=env, cwd=self.dir, stdout=f, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while "listening on" not in self.log.read_text(errors="replace"):
            assert self.proc.poll() is None, self.log.read_text()
            assert time.time() < deadline, self.log.read_text()
            time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def run_client(coord, softsgx, workdir, server_port):
    workdir.mkdir(parents=True, exist_ok=True)
    env = marble_env(coord, softsgx, "hello-client", workdir, HELLO_SERVER=f"localhost:{server_port}")
    return subprocess.run([str(BIN / "marblerun-premain"), "--", str(BIN / "hello-mtls-client")], env=env,
                          cwd=workdir, capture_output=True, text=True, timeout=60)


@pytest.fixture()
def deployment(tmp_path, softsgx):
    coord = start_coordinator(tmp_path / "coord", softsgx)
    server = Server(coord, softsgx, tmp_path / "server")
    yield coord, server
    server.stop()
    coord.stop()


def test_client_and_server_complete_mtls_exchange(deployment, softsgx, tmp_path):
    coord, server = deployment
    for i in range(2):
        r = run_client(coord, softsgx, tmp_path / f"client{i}", server.port)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "answered over mTLS: Hello from the hello-mtls server marble" in r.stdout
        assert "shared key matches: yes" in r.stdout
    # the server marble got its files (0600) in its working directory
    for name in ("secrets/shared.key", "secrets/own.key.hex", "secrets/service.crt", "secrets/service.key",
                 "config/hello.conf"):
        p = server.dir / name
        assert p.stat().st_mode & 0o777 == 0o600, name
    assert len((server.dir / "secrets" / "shared.key").read_bytes()) == 32
    assert (server.dir / "secrets" / "shared.key").read_bytes() == (tmp_path / "client0" / "secrets" / "shared.key").read_bytes()
    assert "served marble" in server.log.read_text()


def test_client_from_other_coordinator_is_refused(deployment, softsgx, tmp_path):
    coord, server = deployment
    other = start_coordinator(tmp_path / "other", softsgx)
    try:
        r = run_client(other, softsgx, tmp_path / "foreign", server.port)
        assert r.returncode != 0
        # the client does not accept the server either (its root is another one)
        assert "TLS handshake with the server failed" in r.stderr + r.stdout
    finally:
        other.stop()
    # a client without any certificate is refused by the server itself
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        import ssl
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                t.sendall(b"HELLO 00\n")
                assert t.recv(100) == b""
                raise ssl.SSLError("closed without an answer")
    time.sleep(0.2)
    assert "refused a client" in server.log.read_text()


def test_foreign_server_is_refused_by_client(tmp_path, softsgx):
    # the client of coordinator B talks to a server of coordinator A: refused in the other direction
    a = start_coordinator(tmp_path / "a", softsgx)
    b = start_coordinator(tmp_path / "b", softsgx)
    server = Server(a, softsgx, tmp_path / "server-a")
    try:
        r = run_client(b, softsgx, tmp_path / "client-b", server.port)
        assert r.returncode != 0
        time.sleep(0.2)
        assert "refused a client" in server.log.read_text() or "handshake" in r.stderr
    finally:
        server.stop()
        a.stop()
        b.stop()


def test_demo_script():
    r = subprocess.run([str(SOURCE_DIR / "scripts" / "demo"), str(BIN.parent)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "shared key matches: yes" in r.stdout
    assert "Coordinator is running correctly and ready to accept marbles." in r.stdout
    assert "subject=CN = MarbleRun Coordinator - Intermediate CA" in r.stdout
