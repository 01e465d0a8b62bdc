"""The Coordinator fetching collateral from a PCCS over HTTPS (issue 12): the real daemon with
EDG_ATTESTATION_PCCS_URL pointing at tests/unit/attest/pccs_fixture.py (self-signed certificate,
as a PCCS usually has), serving the collateral of a softsgx test PKI. Activations on the
worker threads fetch it, concurrently on a cold cache, with the evhttp fetcher."""
import json
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from mrharness import MRSIGNER, SOURCE_DIR, Coordinator, Marble, SoftSGX

FIXTURE = SOURCE_DIR / "tests" / "unit" / "attest" / "pccs_fixture.py"


def manifest():
    return json.dumps({
        "Packages": {"backend": {"SignerID": MRSIGNER, "ProductID": 3, "SecurityVersion": 2,
                                 "Debug": False}},
        "Marbles": {"server": {"Package": "backend", "Parameters": {"Argv": ["./server"]}}},
    }).encode()


class Pccs:
    def __init__(self, tmp_path, pki):
        port_file = tmp_path / "pccs.port"
        self.log = open(tmp_path / "pccs.log", "wb")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(FIXTURE), str(pki.parent), pki.name, pki.name,
             str(port_file), "--tls", str(tmp_path)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while not port_file.exists():
            assert self.proc.poll() is None and time.time() < deadline, "PCCS fixture did not start"
            time.sleep(0.05)
        self.url = f"https://127.0.0.1:{port_file.read_text().strip()}"
        self.log_path = tmp_path / "pccs.log"

    def requests(self):
        return self.log_path.read_text().count("GET /")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture()
def pccs_coord(tmp_path):
    if not FIXTURE.exists():
        pytest.skip("no PCCS fixture")
    softsgx = SoftSGX(tmp_path / "pki")
    pccs = Pccs(tmp_path, softsgx.dir)
    coord = Coordinator(tmp_path, softsgx, {"EDG_ATTESTATION_COLLATERAL": "",
                                             "EDG_ATTESTATION_PCCS_URL": pccs.url + "/"})
    coord.start()
    coord.set_manifest(manifest())
    yield coord, softsgx, pccs
    coord.stop()
    pccs.stop()


def test_activation_fetches_collateral_over_https(pccs_coord):
    coord, softsgx, pccs = pccs_coord
    assert pccs.requests() == 0
    # a cold cache and 12 activations at once: worker threads fetch at the same time
    marbles = [Marble(softsgx) for _ in range(12)]
    quotes = [m.quote() for m in marbles]
    with ThreadPoolExecutor(max_workers=12) as ex:
        results = list(ex.map(lambda mq: mq[0].activate(coord, "server", quote=mq[1]),
                              zip(marbles, quotes)))
    assert all(list(r.Parameters.Argv) == ["./server"] for r in results)
    fetched = pccs.requests()
    assert fetched >= 4, pccs.log_path.read_text()  # TCB info, QE identity, PCK CRL, root CRL
    # cached: with the PCCS gone, activations keep working and nothing is fetched
    pccs.stop()
    assert Marble(softsgx).activate(coord, "server").Parameters.Argv[0] == "./server"
    assert pccs.requests() == fetched


def test_unreachable_pccs_refuses_activation_with_reason(tmp_path):
    if not FIXTURE.exists():
        pytest.skip("no PCCS fixture")
    softsgx = SoftSGX(tmp_path / "pki")
    coord = Coordinator(tmp_path, softsgx, {"EDG_ATTESTATION_COLLATERAL": "",
                                             "EDG_ATTESTATION_PCCS_URL": "https://127.0.0.1:9/"})
    coord.start()
    try:
        coord.set_manifest(manifest())
        with pytest.raises(grpc.RpcError) as e:
            Marble(softsgx).activate(coord, "server")
        assert e.value.code() != grpc.StatusCode.OK
        log = coord.read_log()
        assert "fetching https://127.0.0.1:9/sgx/certification/v4/tcb" in log, log[-3000:]
        assert "cannot connect to 127.0.0.1 port 9" in log, log[-3000:]
    finally:
        coord.stop()


def test_no_proxy_from_the_environment(tmp_path):
    """libcurl used https_proxy; the fetcher connects directly, and says so at start-up."""
    if not FIXTURE.exists():
        pytest.skip("no PCCS fixture")
    softsgx = SoftSGX(tmp_path / "pki")
    pccs = Pccs(tmp_path, softsgx.dir)
    coord = Coordinator(tmp_path, softsgx, {"EDG_ATTESTATION_COLLATERAL": "",
                                             "EDG_ATTESTATION_PCCS_URL": pccs.url,
                                             "https_proxy": "http://127.0.0.1:9"})
    coord.start()
    try:
        coord.set_manifest(manifest())
        assert Marble(softsgx).activate(coord, "server").Parameters.Argv[0] == "./server"
        assert "the proxy in the environment is not used" in coord.read_log()
    finally:
        coord.stop()
        pccs.stop()

