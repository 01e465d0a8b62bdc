#!/usr/bin/env python3
"""Tiny PCCS/PCS v4 stand-in for the DCAP collateral-fetching unit test.

Serves the collateral of two test vectors (an SGX one and a TDX one) in the shape of the
Intel PCS v4 API: signed JSON bodies with URL-encoded issuer-chain headers, DER PCK CRLs and
PCCS's hex-encoded /rootcacrl. Usage: pccs_fixture.py <vector dir> <sgx vector> <tdx vector>
<port file> [--tls <dir>]; it writes the chosen port to <port file> once it listens. With
--tls it speaks HTTPS with a self-signed certificate (made in <dir>), as a PCCS usually does.
"""
import json
import os
import ssl
import subprocess
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

base, sgx_name, tdx_name, port_file = sys.argv[1:5]
tls_dir = sys.argv[6] if len(sys.argv) > 6 and sys.argv[5] == "--tls" else None


def load(name):
    with open(os.path.join(base, name, "collateral.json"), encoding="utf-8") as f:
        return json.load(f)


COL = {"sgx": load(sgx_name), "tdx": load(tdx_name)}


def crl_for(ca):
    for c in COL.values():
        der = bytes.fromhex(c["pck_crl"])
        if ("Processor" if ca == "processor" else "Platform").encode() in der[:200]:
            return c, der
    return None, None


class H(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("pccs-fixture: " + (fmt % args) + "\n")

    def send(self, body, headers=None, ctype="application/json"):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, urllib.parse.quote(v, safe=""))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        parts = u.path.strip("/").split("/")
        if len(parts) < 4 or parts[1:3] != ["certification", "v4"]:
            self.send_error(404)
            return
        tee, what = parts[0], "/".join(parts[3:])
        c = COL.get(tee)
        if what == "tcb" and c is not None:
            tcb = json.loads(c["tcb_info"])
            if tcb["fmspc"].lower() != q.get("fmspc", [""])[0].lower():
                self.send_error(404)
                return
            body = '{"tcbInfo":%s,"signature":"%s"}' % (c["tcb_info"], c["tcb_info_signature"])
            self.send(body, {"TCB-Info-Issuer-Chain": c["tcb_info_issuer_chain"]})
        elif what == "qe/identity" and c is not None:
            body = '{"enclaveIdentity":%s,"signature":"%s"}' % (
                c["qe_identity"], c["qe_identity_signature"])
            self.send(body, {"SGX-Enclave-Identity-Issuer-Chain": c["qe_identity_issuer_chain"]})
        elif tee == "sgx" and what == "pckcrl":
            cc, der = crl_for(q.get("ca", [""])[0])
            if der is None:
                self.send_error(404)
                return
            self.send(der, {"SGX-PCK-CRL-Issuer-Chain": cc["pck_crl_issuer_chain"]},
                      "application/pkix-crl")
        elif tee == "sgx" and what == "rootcacrl":
            self.send(COL["sgx"]["root_ca_crl"], None, "application/pkix-crl")
        else:
            self.send_error(404)


srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
if tls_dir is not None:
    cert, key = os.path.join(tls_dir, "pccs.pem"), os.path.join(tls_dir, "pccs.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key,
                    "-out", cert], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(port_file + ".tmp", "w", encoding="utf-8") as f:
    f.write(str(srv.server_address[1]))
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
