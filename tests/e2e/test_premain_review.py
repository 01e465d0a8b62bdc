"""Regression tests for review findings on the marble side: a measurement policy that pins
nothing or has wrongly typed numbers is refused, and secrets are never written through a
symbolic link."""
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
