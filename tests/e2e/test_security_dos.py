"""Denial of service (issue 18, docs/security.md): connection floods and uploads that never end.

The attacker sits on its own loopback addresses (127.0.0.2 and up); the marbles and operators
on 127.0.0.1. Each test keeps a sustained attack running while real clients work, and checks
both that they are served and that the defence (not luck) held: the counters in /metrics."""
import concurrent.futures as cf
import json
import os
import re
import time

import grpc
import pytest
import requests

from mrattack import (FloodProcess, StalledH2Streams, StalledUploads, raise_nofile, rss_kib)
from mrharness import MRSIGNER, Coordinator, Marble, SoftSGX

MIB = 1 << 20
BUDGET = 32 * MIB  # the default EDG_COORDINATOR_BODY_BUDGET
MANIFEST = json.dumps({
    "Packages": {"pkg": {"SignerID": MRSIGNER, "ProductID": 3, "SecurityVersion": 1}},
    "Marbles": {"app": {"Package": "pkg"}},
}).encode()


@pytest.fixture(scope="module")
def softsgx(tmp_path_factory):
    return SoftSGX(tmp_path_factory.mktemp("softsgx") / "pki")


@pytest.fixture(scope="module", autouse=True)
def descriptors():
    have = raise_nofile(20000)
    if have < 9000:
        pytest.fail(f"the floods need about 9000 descriptors; RLIMIT_NOFILE allows {have}")


def metric(c, name, **labels):
    text = requests.get(f"http://127.0.0.1:{c.metrics_port}/metrics", timeout=10).text
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^{re.escape(name)}\{{{re.escape(want)}\}} (\S+)$", text, re.M)
    assert m, f"{name}{{{want}}} not in /metrics"
    return float(m.group(1))


def activate_many(c, softsgx, n=40, deadline=10.0, workers=4, root=None):
    """n activations, `workers` at a time, each with its own deadline; the number that succeed.
    (The mesh root is fetched once, before: a premain makes one connection, not two.)"""
    root = root if root is not None else getattr(c, "mesh_root", None) or c.mesh_root_pem()

    def one(_):
        try:
            Marble(softsgx).activate(c, "app", timeout=deadline, root=root)
            return True
        except (grpc.RpcError, OSError):
            return False
    with cf.ThreadPoolExecutor(workers) as ex:
        return sum(ex.map(one, range(n)))


def status_ok(c, n=10):
    """At least 80 % of n status requests, each on a new connection, are answered."""
    ok = 0
    for _ in range(n):
        try:
            ok += requests.get(c.url + "/api/v2/status", verify=False, timeout=10).status_code == 200
        except requests.RequestException as e:
            print("status request failed:", e)
    return ok >= 0.8 * n


def running(tmp_path, softsgx, manifest=True, **env):
    # Under AddressSanitizer freed memory is held in a quarantine (256 MiB by default), which
    # would count as resident; these tests measure what the Coordinator keeps, so the
    # quarantine is off for them (leak and overflow checks stay on).
    asan = os.environ.get("ASAN_OPTIONS", "")
    env.setdefault("ASAN_OPTIONS", (asan + ":" if asan else "") + "quarantine_size_mb=0")
    c = Coordinator(tmp_path, softsgx, extra_env=env).start()
    if manifest:
        c.set_manifest(MANIFEST)
        c.mesh_root = c.mesh_root_pem()  # before any flood starts
    return c


def test_raw_connection_flood_on_both_listeners(tmp_path, softsgx):
    # 4,200 TCP connections that never start a handshake, on the client API and on the mesh
    # API each, reopened as soon as they are closed, from one address
    c = running(tmp_path, softsgx)
    flood = FloodProcess([(("127.0.0.1", port, 4200), {"source": "127.0.0.2", "duration": 60})
                          for port in (c.client_port, c.mesh_port)]).start()
    try:
        time.sleep(3)
        ok = activate_many(c, softsgx)
        assert ok >= 32, f"only {ok} of 40 activations succeeded under the flood"
        assert status_ok(c)
        # the attacker got its per-address share and no more
        for lst in ("client", "mesh"):
            assert metric(c, "marblerun_server_connections_refused_total", listener=lst,
                          reason="source") > 0
            assert metric(c, "marblerun_server_connections", listener=lst) <= 256 + 8
    finally:
        flood.stop()
        c.stop()


def test_idle_tls_flood(tmp_path, softsgx):
    # completed TLS handshakes left idle, from one address
    c = running(tmp_path, softsgx)
    flood = FloodProcess([(("127.0.0.1", c.client_port, 4090),
                           {"source": "127.0.0.2", "tls": True, "duration": 60})]).start()
    stats = None
    try:
        time.sleep(5)
        ok = activate_many(c, softsgx)
        assert ok >= 32, f"only {ok} of 40 activations succeeded under the flood"
        assert status_ok(c)
        assert metric(c, "marblerun_server_connections_refused_total", listener="client",
                      reason="source") > 0
    finally:
        stats = flood.stop()
        c.stop()
    assert stats["opened"] >= 200, stats  # the handshakes really completed


def test_flood_from_many_addresses_evicts_idle_connections(tmp_path, softsgx):
    # 30 addresses, each under its share, together more than the mesh holds: the listener
    # makes room by closing the longest-idle (never handshaken) connections
    c = running(tmp_path, softsgx, EDG_COORDINATOR_MESH_MAX_CONNS="600",
                EDG_COORDINATOR_CLIENT_MAX_CONNS="600")
    flood = FloodProcess([(("127.0.0.1", port, 100), {"source": f"127.0.0.{10 + i}", "duration": 60})
                          for i in range(30) for port in (c.mesh_port, c.client_port)]).start()
    try:
        time.sleep(3)
        ok = activate_many(c, softsgx)
        assert ok >= 32, f"only {ok} of 40 activations succeeded under the flood"
        assert status_ok(c)
        assert metric(c, "marblerun_server_connections_evicted_total", listener="mesh") > 0
        assert metric(c, "marblerun_server_connections", listener="mesh") <= 600
    finally:
        flood.stop()
        c.stop()


def check_rss(c, start_rss_kib):
    rss, hwm = rss_kib(c.proc.pid)
    limit_kib = (BUDGET + 32 * MIB) // 1024
    # absolute, as the issue states it; an instrumented (ASan) binary starts far higher, so
    # there the growth is held to the same bound
    base = start_rss_kib if start_rss_kib > 48 * 1024 else 0
    assert hwm - base < limit_kib, f"peak RSS {hwm} KiB (start {start_rss_kib} KiB)"


def test_stalled_uploads_before_manifest_stay_within_budget(tmp_path, softsgx):
    # state 2 (no manifest yet): anyone may POST /manifest, so bodies are buffered; 60 uploads
    # of 7.9 MiB that never end, from 60 addresses, may hold at most the body budget
    c = running(tmp_path, softsgx, manifest=False)
    start = rss_kib(c.proc.pid)[0]
    ups = [StalledUploads("127.0.0.1", c.client_port, 1, source=f"127.0.0.{10 + i}", duration=40)
           for i in range(60)]
    try:
        for u in ups:
            u.start()
        for u in ups:
            assert u.done_sending.wait(60)
        check_rss(c, start)
        assert status_ok(c)
        answers = [a for u in ups for a in u.answers]
        refused = sum(1 for a in answers if a.startswith(b"HTTP/1.1 503"))
        assert refused >= 50, answers[:5]
        assert metric(c, "marblerun_server_request_body_bytes", listener="client") <= BUDGET
        assert metric(c, "marblerun_server_request_body_refused_total", listener="client") >= refused
    finally:
        for u in ups:
            u.stop()
        c.stop()
    # a real manifest upload works again once the attack is gone
    c.start()
    try:
        c.set_manifest(MANIFEST)
    finally:
        c.stop()


def test_stalled_uploads_after_manifest_are_not_buffered(tmp_path, softsgx):
    # state 3: unauthenticated uploads to /manifest and /api/v2/secrets are answered before
    # their bodies are read, and the bodies are dropped; marbles keep activating
    c = running(tmp_path, softsgx)
    start = rss_kib(c.proc.pid)[0]
    ups = [StalledUploads("127.0.0.1", c.client_port, 30, path=path, source="127.0.0.2", duration=40)
           for path in ("/manifest", "/api/v2/secrets")]
    try:
        for u in ups:
            u.start()
        ok = activate_many(c, softsgx, n=20)
        for u in ups:
            assert u.done_sending.wait(60)
        check_rss(c, start)
        assert ok >= 16
        for u, first in zip(ups, (b"HTTP/1.1 400", b"HTTP/1.1 401")):
            assert sum(1 for a in u.answers if a.startswith(first)) >= 25, u.answers[:3]
        assert metric(c, "marblerun_server_request_body_bytes", listener="client") == 0
    finally:
        for u in ups:
            u.stop()
        c.stop()


def test_stalled_h2_streams_stay_within_budget(tmp_path, softsgx):
    # 40 HTTP/2 streams of 7.9 MiB each that never end, from four connections and addresses
    c = running(tmp_path, softsgx, manifest=False)
    start = rss_kib(c.proc.pid)[0]
    atk = [StalledH2Streams("127.0.0.1", c.client_port, streams=10, source=f"127.0.0.{20 + i}",
                            duration=30) for i in range(4)]
    try:
        for a in atk:
            a.start()
        time.sleep(12)
        check_rss(c, start)
        assert status_ok(c)
        codes = [h.get(b":status") for a in atk for h in a.responses.values()]
        assert codes.count(b"503") >= 30, codes
        assert metric(c, "marblerun_server_request_body_bytes", listener="client") <= BUDGET
    finally:
        for a in atk:
            a.stop()
        c.stop()


def test_stalled_grpc_messages_leave_room_for_activations(tmp_path, softsgx):
    # the mesh takes any client certificate: 4 addresses x 10 streams announce 3.9 MiB messages
    # and never finish them; the budget keeps a quarter for small messages, so marbles activate
    c = running(tmp_path, softsgx)
    start = rss_kib(c.proc.pid)[0]
    probe = Marble(softsgx)
    cert, key = tmp_path / "atk.crt", tmp_path / "atk.key"
    from cryptography.hazmat.primitives import serialization
    cert.write_bytes(probe.cert.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(probe.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    atk = [StalledH2Streams("127.0.0.1", c.mesh_port, streams=10, path="/rpc.Marble/Activate",
                            size=int(3.9 * MIB), source=f"127.0.0.{30 + i}", duration=40,
                            certfile=str(cert), keyfile=str(key), content_type="application/grpc",
                            grpc=True) for i in range(4)]
    try:
        for a in atk:
            a.start()
        time.sleep(8)
        ok = activate_many(c, softsgx, n=20)
        check_rss(c, start)
        assert ok >= 16, f"only {ok} of 20 activations succeeded"
        refused = sum(1 for a in atk for h in a.responses.values() if h.get(b"grpc-status") == b"8")
        assert refused >= 20, [a.responses for a in atk][:1]
        assert metric(c, "marblerun_server_request_body_bytes", listener="mesh") <= BUDGET
    finally:
        for a in atk:
            a.stop()
        c.stop()
