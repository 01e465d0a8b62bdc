"""Transparent TLS end to end (issue 15, docs/ttls.md): unmodified programs (curl, python's
http.server, nginx, python scripts) started through marblerun-premain with a manifest whose TLS
section covers their ports talk mTLS on the wire through libmarble-ttls.so; what is not
configured stays plain; peers without a marble certificate, from another deployment or of a
marble type the entry does not allow are refused."""
import hashlib
import os
import pathlib
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

from mrharness import SoftSGX, free_port
from mrttls import APPS, PY, Capture, Deployment, descendants, environ_of, manifest

P = {name: free_port() for name in ("web", "plain", "types", "bulk", "async", "fork", "fork2",
                                    "nginx", "api", "dead", "raw")}
INCOMING = ("web", "bulk", "async", "fork", "fork2", "nginx")
OUTGOING = ("web", "bulk", "fork", "fork2", "nginx", "types")


def tls_section():
    out = [{"Addr": "localhost", "Port": str(P[k])} for k in OUTGOING]
    out += [{"Addr": "127.0.0.1", "Port": str(P["async"])}, {"Addr": "::1", "Port": str(P["async"])}]
    return {
        "srv": {"Incoming": [{"Port": str(P[k])} for k in INCOMING]},
        "typed": {"Incoming": [{"Port": str(P["types"]), "AllowedMarbleTypes": ["client"]}]},
        "cli": {"Outgoing": out},
        # a marble that is client and server of one port, plus two failing destinations
        "self": {"Incoming": [{"Port": str(P["api"])}],
                 "Outgoing": [{"Addr": "127.0.0.1", "Port": str(P[k])} for k in ("api", "dead", "raw")]},
    }


MARBLES = {"server": ["srv", "typed"], "client": ["cli"], "intruder": ["cli"], "both": ["self"]}


@pytest.fixture(scope="module")
def softsgx(tmp_path_factory):
    return SoftSGX(tmp_path_factory.mktemp("softsgx") / "pki")


@pytest.fixture(scope="module")
def dep(tmp_path_factory, softsgx):
    d = Deployment(tmp_path_factory.mktemp("ttls"), softsgx, manifest(MARBLES, tls_section()))
    yield d
    d.stop()


@pytest.fixture(scope="module")
def web(dep):
    """python3 -m http.server on the "web" port (TTLS) and on the "plain" port (not configured),
    both in one server marble directory with a test file."""
    root = dep.workdir("www")
    (root / "hello.txt").write_bytes(b"hello over transparent TLS\n")
    srv = dep.start("server", [PY, "-m", "http.server", str(P["web"]), "--bind", "127.0.0.1",
                               "--directory", str(root)], "web-server")
    plain = dep.start("server", [PY, "-m", "http.server", str(P["plain"]), "--bind", "127.0.0.1",
                                 "--directory", str(root)], "plain-server")
    srv.wait_listening(P["web"])
    plain.wait_listening(P["plain"])
    return srv


def curl(dep, marble_type, url, name, **kw):
    return dep.run(marble_type, ["curl", "-sS", "--max-time", "20", url], name, **kw)


def test_curl_to_http_server_is_mtls_on_the_wire(dep, web):
    cap = Capture([P["web"], P["plain"]])
    try:
        r = curl(dep, "client", f"http://localhost:{P['web']}/hello.txt", "curl-web")
        assert r.returncode == 0, r.stderr.decode()
        assert r.stdout == b"hello over transparent TLS\n"
        # the port that is not in the TLS section stays plain, from the same client marble
        r = curl(dep, "client", f"http://localhost:{P['plain']}/hello.txt", "curl-plain")
        assert r.returncode == 0, r.stderr.decode()
        assert r.stdout == b"hello over transparent TLS\n"
        time.sleep(0.2)
    finally:
        cap.stop()
    # the premain preloaded the library, which logged its policy without key material
    log = web.text()
    assert "TTLS: preloading" in log and "libmarble-ttls.so" in log
    assert f"[TTLS]     *:{P['web']} client certificate required" in log
    assert "PRIVATE KEY" not in log and "clikey" not in log
    # the key is not left in the server's environment (nor in /proc/<pid>/environ)
    for pid in descendants(web.pid)[1:]:
        env = environ_of(pid)
        assert b"MARBLE_TTLS_CONFIG" not in env and b"clikey" not in env
        assert f"in=*:{P['web']}".encode() in env  # only the endpoint list
    if not cap.available:
        pytest.skip("no CAP_NET_RAW: the loopback capture cannot be taken")
    firsts = cap.first_payloads_to(P["web"])
    assert firsts and all(f[:3] in (b"\x16\x03\x01", b"\x16\x03\x03") for f in firsts), firsts[:1]
    wire = cap.stream_to(P["web"]) + cap.stream_from(P["web"])
    assert b"GET /" not in wire and b"HTTP/1." not in wire and b"transparent TLS" not in wire
    # both sides presented certificates (TLS 1.3 encrypts them; the server asked: the client
    # answered with a Certificate record, seen as extra application-data records)
    assert len(wire) > 1000
    plain = cap.stream_to(P["plain"]) + cap.stream_from(P["plain"])
    assert b"GET /hello.txt" in plain and b"transparent TLS" in plain


def test_clients_without_a_marble_certificate_are_refused(dep, web, tmp_path):
    # plain HTTP to the TTLS port: the server's library reads no ClientHello and closes
    r = subprocess.run(["curl", "-sS", "--max-time", "10", f"http://127.0.0.1:{P['web']}/hello.txt"],
                       capture_output=True)
    assert r.returncode != 0 and b"transparent TLS" not in r.stdout
    # TLS with a certificate of our own making (not issued by the Coordinator)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", P["web"]), timeout=10) as s:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            with ctx.wrap_socket(s) as t:
                t.sendall(b"GET /hello.txt HTTP/1.0\r\n\r\n")
                assert t.recv(100) == b""  # TLS 1.3: the refusal comes after the handshake
                raise ConnectionError("closed")
    web.wait_log("refused a connection")


def test_marble_of_another_deployment_is_refused(dep, web, tmp_path):
    other = Deployment(tmp_path / "other", None, manifest(MARBLES, tls_section()), simulation=True)
    try:
        r = curl(other, "client", f"http://localhost:{P['web']}/hello.txt", "curl-other")
        # the client does not trust the server (another marble root): connect() is refused
        assert r.returncode == 7, (r.returncode, r.stderr.decode())
        assert b"transparent TLS" not in r.stdout
        assert b"TLS connection refused" in r.stderr and b"verification failed" in r.stderr
    finally:
        other.stop()


def test_allowed_marble_types(dep, web):
    srv = dep.start("server", [PY, "-m", "http.server", str(P["types"]), "--bind", "127.0.0.1",
                               "--directory", str(dep.workdir("www"))], "typed-server")
    srv.wait_listening(P["types"])
    try:
        assert f"*:{P['types']} client certificate required, marble types: \"client\"" in srv.text()
        r = curl(dep, "client", f"http://localhost:{P['types']}/hello.txt", "curl-typed")
        assert r.returncode == 0 and r.stdout == b"hello over transparent TLS\n", r.stderr.decode()
        # a marble of this deployment, but of a type the entry does not allow: the server
        # refuses its certificate, and the client's connect() fails (TLS 1.3 confirmation)
        r = curl(dep, "intruder", f"http://localhost:{P['types']}/hello.txt", "curl-intruder")
        assert r.returncode == 7, (r.returncode, r.stderr.decode())
        srv.wait_log('peer marble type \\"intruder\\" is not allowed')
    finally:
        srv.stop()


def test_bulk_both_ways_with_half_close(dep, tmp_path):
    """256 MiB each way at the same time, checksummed; the client half-closes and still reads
    everything; the server sends with sendfile(2)."""
    srv = dep.start("server", [PY, str(APPS / "bulk.py"), "server", str(P["bulk"])], "bulk-server")
    srv.wait_listening(P["bulk"])
    t0 = time.time()
    r = dep.run("client", [PY, str(APPS / "bulk.py"), "client", str(P["bulk"])], "bulk-client",
                timeout=300)
    dt = time.time() - t0
    srv.stop()
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode() + srv.text()
    assert b"bulk ok" in r.stdout, r.stdout
    print(f"\n512 MiB through TTLS (256 MiB each way, checksummed, 2 marbles): {dt:.1f} s")


def test_event_driven_server_many_clients_and_broken_handshakes(dep):
    """An asyncio server (non-blocking accept4 + epoll) answers 100 concurrent asyncio clients
    (non-blocking connect, IPv4 and IPv6) while one client stalls and one dies half-way
    through its handshake."""
    srv = dep.start("server", [PY, str(APPS / "aio.py"), "server", str(P["async"])], "aio-server",
                    extra_env={"EDG_MARBLE_TTLS_HANDSHAKE_TIMEOUT_MS": "3000"})
    srv.wait_listening(P["async"])
    stalled = socket.create_connection(("127.0.0.1", P["async"]))  # connects, never speaks
    half = subprocess.Popen([PY, "-c", (
        "import socket,time,sys; s=socket.create_connection(('127.0.0.1', int(sys.argv[1])));"
        "s.sendall(bytes.fromhex('160301020001000200')); time.sleep(60)"), str(P["async"])])
    time.sleep(0.2)
    half.kill()  # dies in the middle of its ClientHello
    half.wait()
    try:
        t0 = time.time()
        r = dep.run("client", [PY, str(APPS / "aio.py"), "client", str(P["async"]), "100"], "aio-client",
                    timeout=120)
        assert r.returncode == 0, r.stdout.decode() + r.stderr.decode() + srv.text()
        assert b"aio ok 100" in r.stdout, r.stdout
        assert time.time() - t0 < 60
        # the stalled client is dropped after the handshake timeout, the server is still fine
        srv.wait_log("handshake timed out", timeout=20)
        stalled.settimeout(5)
        assert stalled.recv(10) == b""
    finally:
        stalled.close()
        srv.stop()


def test_forking_servers(dep):
    """Pre-forked children accept on the inherited listener (each starts its own engine), and
    the parent hands accepted connections to forked children (inherited descriptors, served by
    the parent's engine)."""
    srv = dep.start("server", [PY, str(APPS / "forking.py"), str(P["fork"]), str(P["fork2"])],
                    "fork-server")
    srv.wait_listening(P["fork"])
    srv.wait_listening(P["fork2"])
    try:
        r = dep.run("client", [PY, str(APPS / "forking.py"), "client", str(P["fork"]), str(P["fork2"]),
                               "8"], "fork-client", timeout=120)
        assert r.returncode == 0, r.stdout.decode() + r.stderr.decode() + srv.text()
        out = r.stdout.decode()
        assert "fork ok" in out, out
        served = [line.split() for line in out.splitlines() if line.startswith("served ")]
        assert [k for _, k, _ in served] == ["prefork"] * 8 + ["handoff"] * 8, out
        # answers came from the pre-forked children and from 8 children forked per connection
        assert len({pid for _, k, pid in served if k == "handoff"}) == 8, out
        assert str(srv.pid) not in {pid for _, _, pid in served}
    finally:
        srv.stop()


def test_nginx(dep, tmp_path):
    """nginx (epoll, accept4, sendfile, writev, TCP_NOPUSH, worker processes forked from the
    master) serves a 4 MiB file to 20 concurrent curl clients, all through TTLS."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        pytest.skip("nginx is not installed (scripts/install-deps installs nginx-light)")
    root = dep.workdir("nginx")
    (root / "www").mkdir(exist_ok=True)
    blob = os.urandom(4 << 20)
    (root / "www" / "blob").write_bytes(blob)
    (root / "nginx.conf").write_text(f"""
worker_processes 2;
daemon off;
user root;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    sendfile on;
    tcp_nopush on;
    server {{
        listen 127.0.0.1:{P["nginx"]};
        root {root}/www;
    }}
}}
""")
    srv = dep.start("server", [nginx, "-c", str(root / "nginx.conf"), "-p", str(root)], "nginx-server")
    srv.wait_listening(P["nginx"])
    try:
        script = ("n=$1; shift; for i in $(seq $n); do curl -sS --max-time 60 -o out.$i \"$@\" & done; "
                  "wait; for i in $(seq $n); do sha256sum < out.$i; done")
        r = dep.run("client", ["/bin/sh", "-c", script, "sh", "20", f"http://localhost:{P['nginx']}/blob"],
                    "nginx-client", timeout=120)
        assert r.returncode == 0, r.stderr.decode()
        want = hashlib.sha256(blob).hexdigest()
        sums = [line.split()[0] for line in r.stdout.decode().splitlines()]
        assert sums == [want] * 20, r.stderr.decode()[-2000:]
        # plain HTTP to the same nginx gets nothing: its workers speak TLS only
        plain = subprocess.run(["curl", "-sS", "--max-time", "10", f"http://127.0.0.1:{P['nginx']}/blob"],
                               capture_output=True)
        assert plain.returncode != 0 and not plain.stdout
        workers = [p for p in descendants(srv.pid)
                   if b"worker process" in pathlib.Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(workers) == 2
        for w in workers:
            assert "libmarble-ttls.so" in pathlib.Path(f"/proc/{w}/maps").read_text()
        assert (root / "access.log").read_text().count('"GET /blob HTTP/1.1" 200') == 20
    finally:
        srv.stop()


def test_socket_api_through_ttls(dep):
    """One marble is client and server of a TTLS port: names, options, every byte call,
    non-blocking readiness, dup, sendfile/splice, half-close, non-blocking connect, an inherited
    descriptor in an exec'd program, errno mapping; unix sockets and UDP untouched."""
    r = dep.run("both", [PY, str(APPS / "socket_api.py"), str(P["api"]), str(P["dead"]), str(P["raw"])],
                "api", timeout=120)
    out = r.stdout.decode()
    assert r.returncode == 0 and "api ok" in out, out + r.stderr.decode()
