#!/usr/bin/env python3
"""HTTP(S) servers for the collateral fetcher's unit test (test_collateral_http.c).

Usage: https_fixture.py <work dir> <port file>. Makes a test CA and two server certificates
with the openssl CLI in <work dir> (ca.pem; good.pem for localhost and 127.0.0.1; wrong.pem
for wrong.example only), starts three servers on 127.0.0.1 -- TLS with the good certificate,
TLS with the wrong one, plain HTTP -- and then writes their ports, one a line (tls, wrong,
plain), to <port file>.

Paths: /ok (body and headers the test checks), /status/<n>, /redirect, /big/<n> (n body
bytes with a Content-Length), /chunked/<n> (n bytes, chunked), /close/<n> (n bytes, no
length: HTTP/1.0, delimited by closing the connection), /slow/<ms>, /stall (a part of the
body, then nothing), /bighdr/<n> (a header of n bytes), /auth (echoes Authorization).
"""
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

work, port_file = sys.argv[1:3]
CHAIN = "-----BEGIN CERTIFICATE-----\nAB+/=\n-----END CERTIFICATE-----\n"


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, cwd=work, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_certs():
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=mr test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, san in (("good", "DNS:localhost,IP:127.0.0.1"), ("wrong", "DNS:wrong.example")):
        openssl("req", "-x509", *ec, "-keyout", name + ".key", "-out", name + ".pem",
                "-subj", "/CN=" + name, "-CA", "ca.pem", "-CAkey", "ca.key",
                "-addext", "subjectAltName=" + san, "-addext", "basicConstraints=CA:FALSE",
                "-addext", "extendedKeyUsage=serverAuth")


class H(BaseHTTPRequestHandler):
    timeout = 20

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def reply(self, body, status=200, headers=()):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = urllib.parse.urlparse(self.path).path.strip("/").split("/")
        what, arg = parts[0], (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0)
        if what == "ok":
            self.reply(b"hello collateral", headers=(
                ("TCB-Info-Issuer-Chain", urllib.parse.quote(CHAIN, safe="")),
                ("X-Two", "first"), ("X-Two", "second")))
        elif what == "status":
            self.reply(b"status %d" % arg, status=arg)
        elif what == "redirect":
            self.reply(b"", status=302, headers=(("Location", "/ok"),))
        elif what == "big":
            self.send_response(200)
            self.send_header("Content-Length", str(arg))
            self.end_headers()
            for i in range(0, arg, 65536):
                self.wfile.write(b"x" * min(65536, arg - i))
        elif what == "chunked":
            self.protocol_version = "HTTP/1.1"
            self.close_connection = True
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, arg, 65536):
                n = min(65536, arg - i)
                self.wfile.write(b"%x\r\n" % n + b"y" * n + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif what == "close":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"z" * arg)
        elif what == "slow":
            time.sleep(arg / 1000)
            self.reply(b"late")
        elif what == "stall":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            time.sleep(5)
        elif what == "bighdr":
            self.reply(b"", headers=(("X-Big", "b" * arg),))
        elif what == "auth":
            self.reply(self.headers.get("Authorization", "").encode())
        else:
            self.reply(b"no such path", status=404)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    ctx = None

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ctx is not None:
            sock = self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        pass  # refused handshakes and clients that go away are part of the test


def server(cert):
    s = Server(("127.0.0.1", 0), H)
    if cert is not None:
        s.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        s.ctx.load_cert_chain(os.path.join(work, cert + ".pem"), os.path.join(work, cert + ".key"))
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s


make_certs()
servers = [server("good"), server("wrong"), server(None)]
with open(port_file + ".tmp", "w", encoding="utf-8") as f:
    f.write("".join("%d\n" % s.server_address[1] for s in servers))
os.rename(port_file + ".tmp", port_file)
threading.Event().wait()
