"""End-to-end tests of the Coordinator's network layer through the mr-server-echo daemon.

Real clients (curl, requests, openssl s_client, grpcio) talk to the daemon on loopback.
"""
import concurrent.futures
import hashlib
import importlib
import json
import os
import pathlib
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

SOURCE_DIR = os.environ.get("MR_SOURCE_DIR", str(pathlib.Path(__file__).resolve().parents[2]))
HEADER_TIMEOUT_MS = 1500
BODY_TIMEOUT_MS = 3000


def _echo_bin(build_dir):
    path = build_dir / "tests" / "mr-server-echo"
    if not path.exists():
        pytest.skip(f"{path} not built")
    return path


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    for name, subj, san in (("server", "/CN=localhost", "DNS:localhost,IP:127.0.0.1"),
                            ("server2", "/CN=rotated", "DNS:localhost,IP:127.0.0.1"),
                            ("client", "/CN=MarbleRun Marble", "DNS:localhost")):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", subj,
                 "-addext", f"subjectAltName={san}", cwd=d)
    der = subprocess.run(["openssl", "x509", "-in", d / "client.pem", "-outform", "der"],
                         check=True, capture_output=True).stdout
    return {"dir": d, "server": d / "server.pem", "server_key": d / "server.key",
            "server2": d / "server2.pem", "server2_key": d / "server2.key",
            "client": d / "client.pem", "client_key": d / "client.key",
            "client_sha": hashlib.sha256(der).hexdigest()}


class Daemon:
    def __init__(self, build_dir, certs, tmp, *extra):
        self.stderr_path = tmp / "stderr.log"
        self.stderr = open(self.stderr_path, "wb")
        self.signalled = False
        self.proc = subprocess.Popen(
            [str(_echo_bin(build_dir)), "--cert", str(certs["server"]), "--key",
             str(certs["server_key"]), *extra],
            stdout=subprocess.PIPE, stderr=self.stderr)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(5)
            raise RuntimeError("daemon did not start: " + self.stderr_path.read_text())
        ports = json.loads(line)
        self.client, self.mesh, self.metrics = ports["client"], ports["mesh"], ports["metrics"]

    def url(self, path, port=None):
        return f"https://127.0.0.1:{port or self.client}{path}"

    def terminate(self):
        if not self.signalled:
            self.signalled = True
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.terminate()
        rc = self.proc.wait(timeout)
        self.stderr.close()
        err = self.stderr_path.read_text(errors="replace")
        assert "AddressSanitizer" not in err and "LeakSanitizer" not in err, err
        assert "runtime error" not in err, err
        return rc


@pytest.fixture(scope="module")
def daemon(build_dir, certs, tmp_path_factory):
    d = Daemon(build_dir, certs, tmp_path_factory.mktemp("daemon"),
               "--header-timeout-ms", str(HEADER_TIMEOUT_MS),
               "--body-timeout-ms", str(BODY_TIMEOUT_MS))
    yield d
    assert d.stop() == 0


def curl(*args):
    out = subprocess.run(["curl", "-sS", "-k", "--max-time", "20", *args], capture_output=True,
                         check=True)
    return out.stdout.decode()


def curl_json(*args):
    body = curl(*args)
    return json.loads(body)


# ---- HTTPS client API ----

@pytest.mark.parametrize("proto", ["--http1.1", "--http2"])
def test_curl_without_client_cert(daemon, proto):
    doc = curl_json(proto, daemon.url("/echo?s=a&s=b+c&t=x"))
    assert doc["status"] == "success"
    data = doc["data"]
    assert data["proto"] == ("HTTP/2" if proto == "--http2" else "HTTP/1.1")
    assert data["s"] == ["a", "b c"]
    assert data["peer_certs"] == 0 and data["peer_cert_sha256"] is None


@pytest.mark.parametrize("proto", ["--http1.1", "--http2"])
def test_curl_with_client_cert(daemon, certs, proto):
    data = curl_json(proto, "--cert", str(certs["client"]), "--key", str(certs["client_key"]),
                     daemon.url("/echo"))["data"]
    assert data["peer_certs"] == 1
    assert data["peer_cert_sha256"] == certs["client_sha"]


def test_client_cert_chain_only_leaf_exposed(daemon, certs, tmp_path):
    # A leaf issued by a CA the server does not know: accepted, and the handler sees the leaf
    # only; the CA certificate the client sent behind it is not proven and never exposed.
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Some CA",
             cwd=tmp_path)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             "leaf.key", "-out", "leaf.csr", "-subj", "/CN=user", cwd=tmp_path)
    _openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "leaf.pem", "-days", "2", cwd=tmp_path)
    (tmp_path / "chain.pem").write_text((tmp_path / "leaf.pem").read_text() +
                                        (tmp_path / "ca.pem").read_text())
    leaf_der = subprocess.run(["openssl", "x509", "-in", tmp_path / "leaf.pem", "-outform", "der"],
                              check=True, capture_output=True).stdout
    for proto in ("--http1.1", "--http2"):
        data = curl_json(proto, "--cert", str(tmp_path / "chain.pem"), "--key",
                         str(tmp_path / "leaf.key"), daemon.url("/echo"))["data"]
        assert data["peer_certs"] == 1
        assert data["peer_cert_sha256"] == hashlib.sha256(leaf_der).hexdigest()


def test_requests_with_client_cert(daemon, certs):
    import requests
    body = os.urandom(100000)
    r = requests.post(daemon.url("/echo"), data=body, verify=False,
                      cert=(str(certs["client"]), str(certs["client_key"])), timeout=20)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.text.endswith("}\n")
    data = r.json()["data"]
    assert data["proto"] == "HTTP/1.1"
    assert data["peer_cert_sha256"] == certs["client_sha"]
    assert data["body_len"] == len(body)
    assert data["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_chunked_upload(daemon):
    doc = curl_json("--http1.1", "-H", "Transfer-Encoding: chunked", "--data-binary", "hello",
                    daemon.url("/echo"))
    assert doc["data"]["body_len"] == 5


def test_unknown_path_and_method_405(daemon):
    for args in (["--http1.1", daemon.url("/nope")], ["--http2", daemon.url("/")],
                 ["--http1.1", "-X", "PUT", daemon.url("/echo")],
                 ["--http2", "-X", "DELETE", daemon.url("/status")],
                 ["--http1.1", daemon.url("/status/")]):
        out = curl("-i", *args)
        head, _, body = out.partition("\r\n\r\n")
        assert head.split()[1] == "405", out
        assert "text/plain; charset=utf-8" in head.lower()
        assert "x-content-type-options: nosniff" in head.lower()
        assert body == '{"status":"error","data":null}\n'


@pytest.mark.parametrize("path", ["//status", "/a/../status", "/./status"])
def test_non_canonical_path_301(daemon, path):
    out = curl("-i", "--http1.1", "--path-as-is", daemon.url(path + "?s=1"))
    head = out.partition("\r\n\r\n")[0].lower()
    assert head.split()[1] == "301", out
    assert "location: /status?s=1" in head


def test_error_and_fail_envelopes(daemon):
    out = curl("-i", "--http1.1", daemon.url("/error"))
    head, _, body = out.partition("\r\n\r\n")
    assert head.split()[1] == "401"
    assert "content-type: text/plain; charset=utf-8" in head.lower()
    assert body == ('{"status":"error","data":null,"message":'
                    '"unauthorized user: \\u003cnobody\\u003e \\u0026 co"}\n')
    out = curl("-i", "--http2", "-X", "POST", daemon.url("/api/v2/fail"))
    head, _, body = out.partition("\r\n\r\n")
    assert head.split()[1] == "400"
    assert "content-type: application/json" in head.lower()
    assert json.loads(body) == {"status": "fail", "data": {"sgxQuote": "failed to parse JSON data"},
                                "message": "bad request: x"}


def test_oversized_body_413_and_still_serving(daemon, tmp_path):
    import requests
    big = b"x" * (9 << 20)
    r = requests.post(daemon.url("/echo"), data=big, verify=False, timeout=30)
    assert r.status_code == 413
    assert r.json()["message"] == "request body too large"
    f = tmp_path / "big"
    f.write_bytes(big)
    out = curl("-i", "--http2", "--data-binary", f"@{f}", daemon.url("/echo"))
    assert out.split()[1] == "413", out[:200]
    assert curl_json("--http1.1", daemon.url("/status"))["status"] == "success"
    assert curl_json("--http2", daemon.url("/status"))["status"] == "success"


def test_keep_alive_pipelining(daemon):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", daemon.client), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            req = b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n"
            s.sendall(req + req + b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert data.count(b"Connection: close") == 1


def test_slow_handlers_run_concurrently(daemon):
    # /slow holds a worker for 1 s; the loop keeps answering other requests meanwhile.
    def slow():
        return curl_json("--http1.1", daemon.url("/slow"))["data"]

    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        fut = ex.submit(slow)
        time.sleep(0.1)
        assert curl_json("--http1.1", daemon.url("/status"))["status"] == "success"
        assert not fut.done()
        assert fut.result() == "slow"


# ---- ALPN and mesh TLS rules (openssl s_client) ----

def s_client(port, *args, data=b""):
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                        "localhost", *args], input=data, capture_output=True, timeout=20)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def test_client_api_alpn(daemon):
    _, out = s_client(daemon.client, "-alpn", "h2,http/1.1")
    assert "ALPN protocol: h2" in out
    _, out = s_client(daemon.client, "-alpn", "http/1.1")
    assert "ALPN protocol: http/1.1" in out
    _, out = s_client(daemon.client, "-alpn", "spdy/1")
    assert "no application protocol" in out
    # No CA names are sent with the certificate request.
    _, out = s_client(daemon.client, "-alpn", "http/1.1", "-tls1_2")
    assert "No client certificate CA names sent" in out


def test_mesh_requires_client_cert(daemon, certs):
    # TLS 1.2: the handshake itself fails.
    rc, out = s_client(daemon.mesh, "-alpn", "h2", "-tls1_2")
    assert rc != 0 and "alert handshake failure" in out, out
    # TLS 1.3: the client finishes first; the server's alert arrives on the first read.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", daemon.mesh), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            # Either the alert (certificate required) or, when the kernel resets the
            # connection first, an EOF/reset; never an HTTP/2 SETTINGS frame.
            with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
                s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                assert s.recv(100) == b""
                raise ConnectionResetError("closed without alert")
    rc, out = s_client(daemon.mesh, "-alpn", "h2", "-cert", str(certs["client"]), "-key",
                       str(certs["client_key"]))
    assert "ALPN protocol: h2" in out


def test_mesh_requires_h2(daemon, certs):
    cert = ["-cert", str(certs["client"]), "-key", str(certs["client_key"])]
    _, out = s_client(daemon.mesh, "-alpn", "http/1.1", *cert)
    assert "no application protocol" in out
    # Without ALPN the handshake completes but the server closes at once.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(certs["client"], certs["client_key"])
    with socket.create_connection(("127.0.0.1", daemon.mesh), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                assert s.recv(100) == b""
            except (ConnectionResetError, ssl.SSLError):
                pass


# ---- gRPC mesh API ----

@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    out = tmp_path_factory.mktemp("grpc_gen")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{SOURCE_DIR}/proto",
                    f"--python_out={out}", f"--grpc_python_out={out}", "coordinator.proto"],
                   check=True)
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("coordinator_pb2"), importlib.import_module("coordinator_pb2_grpc")
    finally:
        sys.path.remove(str(out))


@pytest.fixture(scope="module")
def channel(daemon, certs):
    import grpc
    creds = grpc.ssl_channel_credentials(
        root_certificates=certs["server"].read_bytes(),
        private_key=certs["client_key"].read_bytes(),
        certificate_chain=certs["client"].read_bytes())
    ch = grpc.secure_channel(f"127.0.0.1:{daemon.mesh}", creds,
                             options=[("grpc.ssl_target_name_override", "localhost"),
                                      ("grpc.max_send_message_length", 64 << 20)])
    yield ch
    ch.close()


def test_grpc_activate(pb, channel, certs):
    msgs, stubs = pb
    stub = stubs.MarbleStub(channel)
    resp = stub.Activate(msgs.ActivationReq(MarbleType="web", UUID="1234-abcd", Quote=b"q",
                                            CSR=b"c"), timeout=20)
    assert resp.Parameters.Env["MarbleType"] == b"web"
    assert resp.Parameters.Env["UUID"] == b"1234-abcd"
    assert resp.Parameters.Files["peer_cert_sha256"] == certs["client_sha"].encode()
    assert list(resp.Parameters.Argv) == ["echo"]


def test_grpc_error_status(pb, channel):
    import grpc
    msgs, stubs = pb
    with pytest.raises(grpc.RpcError) as e:
        stubs.MarbleStub(channel).Activate(msgs.ActivationReq(MarbleType="fail"), timeout=20)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert e.value.details() == "denied: 100% wrong\nübel"


def test_grpc_unknown_method(pb, channel):
    import grpc
    for path, text in (("/rpc.Marble/Nope", "unknown method Nope for service rpc.Marble"),
                       ("/rpc.Other/Activate", "unknown service rpc.Other")):
        call = channel.unary_unary(path, request_serializer=lambda x: x,
                                   response_deserializer=lambda x: x)
        with pytest.raises(grpc.RpcError) as e:
            call(b"", timeout=20)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert e.value.details() == text


def test_grpc_oversized_message(pb, channel):
    import grpc
    msgs, stubs = pb
    with pytest.raises(grpc.RpcError) as e:
        stubs.MarbleStub(channel).Activate(msgs.ActivationReq(Quote=b"x" * (5 << 20)), timeout=30)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in e.value.details()
    # the channel still works
    assert stubs.MarbleStub(channel).Activate(msgs.ActivationReq(MarbleType="a"), timeout=20)


def test_grpc_compressed_rejected(pb, channel):
    import grpc
    msgs, stubs = pb
    with pytest.raises(grpc.RpcError) as e:
        stubs.MarbleStub(channel).Activate(msgs.ActivationReq(MarbleType="z" * 1000),
                                           compression=grpc.Compression.Gzip, timeout=20)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "gzip" in e.value.details()


def test_grpc_64_concurrent_calls(pb, channel):
    msgs, stubs = pb
    stub = stubs.MarbleStub(channel)
    futs = [stub.Activate.future(msgs.ActivationReq(MarbleType=f"m{i}", UUID=str(i)), timeout=60)
            for i in range(64)]
    for i, f in enumerate(futs):
        assert f.result().Parameters.Env["UUID"] == str(i).encode()


def test_500_idle_tls_connections(pb, channel, daemon):
    # 500 idle TLS connections (from two addresses: one address holds at most 256) leave the
    # mesh and the rest of the client API working
    msgs, stubs = pb
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    conns = []
    try:
        for i in range(500):
            src = "127.0.0.2" if i % 2 else "127.0.0.3"
            raw = socket.create_connection(("127.0.0.1", daemon.client), timeout=10,
                                           source_address=(src, 0))
            conns.append(ctx.wrap_socket(raw))
        stub = stubs.MarbleStub(channel)
        for i in range(10):
            assert stub.Activate(msgs.ActivationReq(UUID=str(i)), timeout=20).Parameters.Env[
                "UUID"] == str(i).encode()
        assert curl_json("--http2", daemon.url("/status"))["status"] == "success"
        # the held connections are still usable
        conns[0].sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conns[0].recv(100).startswith(b"HTTP/1.1 200")
    finally:
        for c in conns:
            c.close()


def _read_until_closed(sock, limit):
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < limit:
            if sock.recv(4096) == b"":
                return time.monotonic() - t0
    except (ConnectionResetError, ssl.SSLError, socket.timeout):
        return time.monotonic() - t0
    return None


def test_slowloris_times_out(daemon):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    slow = ctx.wrap_socket(socket.create_connection(("127.0.0.1", daemon.client), timeout=10))
    slow.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    plain = socket.create_connection(("127.0.0.1", daemon.metrics), timeout=10)
    plain.sendall(b"GET /healthz HTTP/1.1\r\nHo")
    try:
        # others are served while the partial heads are held
        assert curl_json("--http1.1", daemon.url("/status"))["status"] == "success"
        out = subprocess.run(["curl", "-sS", f"http://127.0.0.1:{daemon.metrics}/healthz"],
                             capture_output=True, check=True, timeout=20).stdout
        assert out == b"ok"
        slow.sendall(b"a")
        took = _read_until_closed(slow, 10)
        assert took is not None and took < HEADER_TIMEOUT_MS / 1000 + 3
        took = _read_until_closed(plain, 10)
        assert took is not None
    finally:
        slow.close()
        plain.close()


def _h2_frame(ftype, flags, stream, payload):
    return (len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + stream.to_bytes(4, "big") +
            payload)


def test_h2_stalled_request_times_out(daemon):
    # HEADERS of a POST without its body: the stream waits for the client, which never sends.
    hdrs = b"".join(b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v for n, v in (
        (b":method", b"POST"), (b":scheme", b"https"), (b":path", b"/echo"),
        (b":authority", b"localhost")))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", daemon.client), timeout=15))
    try:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _h2_frame(4, 0, 0, b"") +
                  _h2_frame(1, 4, 1, hdrs))
        assert curl_json("--http2", daemon.url("/status"))["status"] == "success"
        took = _read_until_closed(s, 15)
        assert took is not None and took < BODY_TIMEOUT_MS / 1000 + 3
    finally:
        s.close()


def _server_cn(port):
    _, out = s_client(port, "-alpn", "h2")
    return [ln for ln in out.splitlines() if ln.startswith("subject=")][0]


def test_certificate_provider_asked_per_handshake(build_dir, certs, tmp_path):
    d = Daemon(build_dir, certs, tmp_path, "--cert2", str(certs["server2"]), "--key2",
               str(certs["server2_key"]))
    try:
        assert "CN = localhost" in _server_cn(d.client)
        assert curl_json("--http1.1", "-X", "POST", d.url("/rotate"))["status"] == "success"
        assert "CN = rotated" in _server_cn(d.client)
        assert "CN = rotated" in _server_cn(d.mesh)
    finally:
        assert d.stop() == 0


# ---- metrics listener ----

def test_metrics_listener(daemon, pb, channel):
    base = f"http://127.0.0.1:{daemon.metrics}"
    text = subprocess.run(["curl", "-sS", base + "/metrics"], capture_output=True, check=True,
                          timeout=20).stdout.decode()
    assert 'grpc_server_started_total{grpc_method="Activate",grpc_service="rpc.Marble",' \
           'grpc_type="unary"}' in text
    assert 'grpc_server_handled_total{grpc_code="PermissionDenied",grpc_method="Activate"' in text
    assert 'server_client_api_http_request_total{code="200",method="get",path="/echo"}' in text
    assert "server_client_api_http_request_duration_histogram_seconds_bucket" in text
    out = subprocess.run(["curl", "-sS", "-i", base + "/readyz"], capture_output=True,
                         check=True, timeout=20).stdout.decode()
    assert out.startswith("HTTP/1.1 200") and out.endswith("\r\n\r\nok")
    out = subprocess.run(["curl", "-sS", "-i", base + "/nope"], capture_output=True,
                         check=True, timeout=20).stdout.decode()
    assert out.startswith("HTTP/1.1 405")


# ---- graceful stop ----

def test_graceful_stop_finishes_in_flight(build_dir, certs, tmp_path):
    d = Daemon(build_dir, certs, tmp_path)
    result = {}

    def slow():
        result["doc"] = curl_json("--http1.1", d.url("/slow"))

    t = threading.Thread(target=slow)
    t.start()
    gauge = 'server_client_api_http_in_flight_requests{path="/slow"} 1'
    for _ in range(100):  # wait until the request is in a handler
        text = subprocess.run(["curl", "-sS", f"http://127.0.0.1:{d.metrics}/metrics"],
                              capture_output=True, timeout=20).stdout.decode()
        if gauge in text:
            break
        time.sleep(0.02)
    d.terminate()
    t.join(20)
    assert result["doc"]["data"] == "slow"
    assert d.stop() == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", d.client), timeout=2).close()


def test_graceful_stop_with_idle_h2_clients(build_dir, certs, tmp_path, pb):
    import grpc
    msgs, stubs = pb
    d = Daemon(build_dir, certs, tmp_path)
    creds = grpc.ssl_channel_credentials(
        root_certificates=certs["server"].read_bytes(),
        private_key=certs["client_key"].read_bytes(),
        certificate_chain=certs["client"].read_bytes())
    ch = grpc.secure_channel(f"127.0.0.1:{d.mesh}", creds,
                             options=[("grpc.ssl_target_name_override", "localhost")])
    try:
        assert stubs.MarbleStub(ch).Activate(msgs.ActivationReq(UUID="u"), timeout=20)
        curl_json("--http2", d.url("/status"))
        t0 = time.monotonic()
        assert d.stop() == 0  # GOAWAY to the idle gRPC connection, then exit
        assert time.monotonic() - t0 < 8
    finally:
        ch.close()


def _tls(port, source="127.0.0.1", alpn=("http/1.1",)):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(list(alpn))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    return ctx.wrap_socket(raw)


def _closed_by_server(sock, wait=5.0):
    sock.settimeout(wait)
    try:
        return sock.recv(100) == b""
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
        return True


def _refused(port, source):
    """A new connection is closed by the server at once (the reset may already meet connect)."""
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    except ConnectionResetError:
        return True
    with raw:
        return _closed_by_server(raw)


def _get_status(sock):
    sock.settimeout(10)
    sock.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
    return sock.recv(100)


def test_full_listener_closes_longest_idle_connection(build_dir, certs, tmp_path):
    d = Daemon(build_dir, certs, tmp_path, "--max-conns", "4")
    held = [_tls(d.client) for _ in range(4)]
    try:
        # a fifth client gets in; the longest-idle connection makes room
        extra = _tls(d.client)
        assert _get_status(extra).startswith(b"HTTP/1.1 200")
        assert _closed_by_server(held[0])
        for s in held[1:]:
            assert _get_status(s).startswith(b"HTTP/1.1 200")
        extra.close()
    finally:
        for s in held:
            s.close()
        assert d.stop() == 0


def test_full_listener_refuses_when_no_connection_is_idle(build_dir, certs, tmp_path):
    d = Daemon(build_dir, certs, tmp_path, "--max-conns", "3")
    busy = [_tls(d.client) for _ in range(3)]
    try:
        for s in busy:
            s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")  # handlers hold each for 1 s
        time.sleep(0.3)
        t0 = time.monotonic()
        assert _refused(d.client, "127.0.0.1")  # refused at once, not queued
        assert time.monotonic() - t0 < 3
        for s in busy:
            s.settimeout(10)
            assert s.recv(200).startswith(b"HTTP/1.1 200")
        # once they are idle again, a new client gets in by evicting one of them
        assert _get_status(_tls(d.client)).startswith(b"HTTP/1.1 200")
    finally:
        for s in busy:
            s.close()
        assert d.stop() == 0


def test_per_source_connection_limit(build_dir, certs, tmp_path, pb):
    d = Daemon(build_dir, certs, tmp_path, "--max-conns-per-source", "3")
    held = [_tls(d.client, "127.0.0.2") for _ in range(3)]
    try:
        assert _refused(d.client, "127.0.0.2")
        # other addresses, and the same address on another listener, are not affected
        assert _get_status(_tls(d.client, "127.0.0.3")).startswith(b"HTTP/1.1 200")
        assert _get_status(held[2]).startswith(b"HTTP/1.1 200")
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{d.metrics}/metrics", timeout=10).read().decode()
        assert 'marblerun_server_connections_refused_total{listener="client",reason="source"} 1' in metrics
    finally:
        for s in held:
            s.close()
        assert d.stop() == 0


def _h2_grpc_call(port, certs, payload, extra_headers=()):
    """One raw gRPC call with the h2 library (no client-side deadline logic): the response
    trailers as a dict."""
    import h2.config
    import h2.connection
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    ctx.load_cert_chain(certs["client"], certs["client_key"])
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20)) as t:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        hdrs = [(":method", "POST"), (":path", "/rpc.Marble/Activate"), (":scheme", "https"),
                (":authority", "localhost"), ("content-type", "application/grpc"),
                ("te", "trailers"), *extra_headers]
        conn.send_headers(1, hdrs)
        conn.send_data(1, b"\0" + len(payload).to_bytes(4, "big") + payload, end_stream=True)
        t.sendall(conn.data_to_send())
        got = {}
        while True:
            data = t.recv(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                name = type(ev).__name__
                if name in ("ResponseReceived", "TrailersReceived"):
                    got.update({k.decode(): v.decode() for k, v in ev.headers})
                if name == "StreamEnded":
                    return got
            t.sendall(conn.data_to_send())
        return got


def test_grpc_timeout(build_dir, certs, tmp_path, pb):
    msgs, _ = pb
    d = Daemon(build_dir, certs, tmp_path, "--workers", "1")
    try:
        req = msgs.ActivationReq(UUID="u").SerializeToString()
        assert _h2_grpc_call(d.mesh, certs, req, [("grpc-timeout", "10S")])["grpc-status"] == "0"
        bad = _h2_grpc_call(d.mesh, certs, req, [("grpc-timeout", "10x")])
        assert bad["grpc-status"] == "13" and "malformed grpc-timeout" in bad["grpc-message"]
        # the only worker is busy for a second: a call that allows 100 ms is not started
        slow = threading.Thread(target=lambda: curl("--http1.1", d.url("/slow")))
        slow.start()
        time.sleep(0.2)
        late = _h2_grpc_call(d.mesh, certs, req, [("grpc-timeout", "100m")])
        slow.join()
        assert late["grpc-status"] == "4" and late["grpc-message"] == "context deadline exceeded"
    finally:
        assert d.stop() == 0
