"""Regression tests for review findings on the marble side: a measurement policy that pins
nothing or has wrongly typed numbers is refused, secrets are never written through a
symbolic link, and names with an embedded NUL byte (or env values with one) from a
Coordinator are refused before anything is applied."""
import json

from mrharness import MRENCLAVE
from test_premain import DUMP, manifest, pin_env, run_premain, started, two, softsgx, sim  # noqa: F401 (fixtures)


def env_sgx(softsgx):
    return {"EDG_ATTESTATION": "softsgx", "EDG_SOFTSGX_DIR": str(softsgx.dir),
            "EDG_ATTESTATION_ROOT_CA": str(softsgx.dir / "root-ca.pem"),
            "EDG_ATTESTATION_COLLATERAL": str(softsgx.dir / "collateral.json"),
            "EDG_SOFTSGX_MRENCLAVE": MRENCLAVE, "EDG_SOFTSGX_MRSIGNER": "cd" * 32,
            "EDG_SOFTSGX_ISVPRODID": "3", "EDG_SOFTSGX_ISVSVN": "3"}


def test_policy_without_measurement_is_refused(two, softsgx, tmp_path):
    a, _ = two
    p = tmp_path / "empty.json"
    p.write_text(json.dumps({"UniqueID": "", "SignerID": "", "Debug": False}))
    r = run_premain(a, tmp_path, softsgx=softsgx, env={**env_sgx(softsgx), **pin_env(a, policy=p)})
    assert r.returncode == 1 and not started(tmp_path)
    assert "set UniqueID or SignerID" in r.stderr


def test_policy_with_string_numbers_is_refused(two, softsgx, tmp_path):
    a, _ = two
    p = tmp_path / "pid.json"
    p.write_text(json.dumps({"UniqueID": MRENCLAVE, "ProductID": "999", "Debug": False}))
    r = run_premain(a, tmp_path, softsgx=softsgx, env={**env_sgx(softsgx), **pin_env(a, policy=p)})
    assert r.returncode == 1 and not started(tmp_path)
    assert "must be numbers" in r.stderr


def test_secret_not_written_through_symlink(sim, tmp_path):
    d = tmp_path / "secrets"
    d.mkdir()
    victim = tmp_path / "world.txt"
    victim.write_text("old")
    (d / "key").symlink_to(victim)
    sim.set_manifest(manifest(files={str(d / "key"): "{{ hex .Secrets.perMarble }}"},
                              argv=["/bin/sh", "-c", DUMP]))
    r = run_premain(sim, tmp_path)
    assert r.returncode == 1 and not started(tmp_path)
    assert "symbolic link" in r.stderr and victim.read_text() == "old"


# --- names with an embedded NUL (protobuf-c would truncate them), from a fake Coordinator ---

class FakeCoordinator:
    """A gRPC mesh endpoint (TLS, any client certificate) that answers every Activate with the
    given Parameters, which a real Coordinator's manifest validation would not produce."""

    def __init__(self, **params):
        import grpc
        from concurrent import futures
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from mrharness import grpc_stubs, self_signed
        pb, pbg = grpc_stubs()
        resp = pb.ActivationResp(Parameters=pb.Parameters(**params))

        class Servicer(pbg.MarbleServicer):
            def Activate(self, request, context):
                return resp

        key = ec.generate_private_key(ec.SECP256R1())
        creds = grpc.ssl_server_credentials([(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
            self_signed(key, "fake coordinator").public_bytes(serialization.Encoding.PEM))])
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        pbg.add_MarbleServicer_to_server(Servicer(), self.server)
        port = self.server.add_secure_port("127.0.0.1:0", creds)
        self.server.start()
        self.mesh = f"127.0.0.1:{port}"

    def stop(self):
        self.server.stop(None)


def run_fake(tmp_path, **params):
    fake = FakeCoordinator(**params)
    try:
        return run_premain(fake, tmp_path)
    finally:
        fake.stop()


def test_fake_coordinator_control(tmp_path):
    # the fake works: clean parameters are applied and the app runs
    f = tmp_path / "a"
    r = run_fake(tmp_path, Files={str(f): b"x"}, Env={"A": b"1"}, Argv=["/bin/sh", "-c", DUMP])
    assert r.returncode == 0, r.stderr
    assert started(tmp_path) and f.read_bytes() == b"x"


def test_nul_in_files_path_is_refused(tmp_path):
    f = tmp_path / "a"
    r = run_fake(tmp_path, Files={str(f) + "\0/../b": b"secret", str(tmp_path / "c"): b"c"},
                 Argv=["/bin/sh", "-c", DUMP])
    assert r.returncode == 1 and not started(tmp_path)
    assert f'Files path "{f}" has a NUL byte' in r.stderr
    # nothing applied: neither the truncated path nor the other file
    assert not f.exists() and not (tmp_path / "c").exists()


def test_nul_in_env_name_or_argv_is_refused(tmp_path):
    r = run_fake(tmp_path, Env={"PATH\0X": b"/nowhere"}, Files={str(tmp_path / "c"): b"c"},
                 Argv=["/bin/sh", "-c", DUMP])
    assert r.returncode == 1 and not started(tmp_path)
    assert 'Env name "PATH" has a NUL byte' in r.stderr and not (tmp_path / "c").exists()
    r = run_fake(tmp_path, Argv=["/bin/sh", "-c", DUMP, "x\0y"])
    assert r.returncode == 1 and not started(tmp_path)
    assert 'Argv entry "x" has a NUL byte' in r.stderr


def test_nul_in_env_value_is_refused(tmp_path):
    # values are bytes; setenv cannot take a NUL, so the activation fails (spec §1.4 step 10),
    # before anything is applied
    r = run_fake(tmp_path, Env={"A": b"x\0y"}, Files={str(tmp_path / "c"): b"c"},
                 Argv=["/bin/sh", "-c", DUMP])
    assert r.returncode == 1 and not started(tmp_path)
    assert "setenv A: invalid argument (NUL byte in value)" in r.stderr
    assert not (tmp_path / "c").exists()
