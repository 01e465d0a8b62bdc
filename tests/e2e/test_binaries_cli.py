"""Every binary answers --help and --version (exit 0, sensible output) instead of starting its
work; the daemon refuses unknown arguments with its usage (exit 2)."""
import os
import re
import subprocess

import pytest

from conftest import BUILD_DIR, SOURCE_DIR

BIN = BUILD_DIR / "bin"


def project_version():
    text = (SOURCE_DIR / "CMakeLists.txt").read_text()
    return re.search(r"project\(marblerun-c VERSION ([0-9.]+)", text).group(1)


def run(name, *args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("EDG_")}
    e.update(env or {})
    # A daemon that ignored the argument would still be running: the timeout fails the test.
    return subprocess.run([str(BIN / name), *args], capture_output=True, text=True, timeout=20,
                          env=e, cwd=BUILD_DIR)


# binary -> (words its --help must show, its --version output)
VERSION = project_version()
BINARIES = {
    "marblerun-coordinator": (["Usage: marblerun-coordinator", "environment variables",
                               "docs/configuration.md", "EDG_COORDINATOR_CLIENT_ADDR",
                               "EDG_COORDINATOR_MESH_ADDR", "EDG_COORDINATOR_SEAL_DIR",
                               "EDG_STARTUP_MANIFEST", "EDG_COORDINATOR_SIMULATION"],
                              f"marblerun-coordinator {VERSION}\n"),
    "marblerun-premain": (["Usage: marblerun-premain", "EDG_MARBLE_TYPE"],
                          f"marblerun-premain {VERSION}\n"),
    "marblerun-softsgx": (["marblerun-softsgx init DIR", "TEST"], f"marblerun-softsgx {VERSION}\n"),
    "marblerun-softsnp": (["marblerun-softsnp init DIR", "TEST"], f"marblerun-softsnp {VERSION}\n"),
    "marblerun-config-doc": (["Usage: marblerun-config-doc", "environment variable"],
                             f"marblerun-config-doc {VERSION}\n"),
    "marblerun-gendoc": (["usage: marblerun-gendoc", "man", "bash"], f"marblerun-gendoc {VERSION}\n"),
    "marblerun": (["Usage:", "marblerun [command]", "Available Commands:", "manifest"],
                  None),  # the CLI's own format, checked below
}


@pytest.mark.parametrize("name", sorted(BINARIES))
def test_help(name):
    words, _ = BINARIES[name]
    for flag in ("--help", "-h"):
        p = run(name, flag)
        assert p.returncode == 0, (flag, p.stdout, p.stderr)
        for w in words:
            assert w in p.stdout, (flag, w, p.stdout)


@pytest.mark.parametrize("name", sorted(BINARIES))
def test_version(name):
    _, want = BINARIES[name]
    p = run(name, "--version")
    assert p.returncode == 0, (p.stdout, p.stderr)
    if want is not None:
        assert p.stdout == want
    else:  # marblerun: the first two lines of `marblerun version`
        head = run(name, "version").stdout.splitlines()[:2]
        assert p.stdout.splitlines() == head
        assert head[0] == f"CLI Version: v{VERSION} " and head[1].startswith("Commit: ")


def test_coordinator_arguments_do_not_start_it(tmp_path):
    # help and version must not create the seal directory or listen anywhere
    seal = tmp_path / "seal"
    env = {"EDG_COORDINATOR_SEAL_DIR": str(seal), "EDG_COORDINATOR_CLIENT_ADDR": "127.0.0.1:0",
           "EDG_COORDINATOR_MESH_ADDR": "127.0.0.1:0"}
    for flag in ("--help", "--version"):
        p = run("marblerun-coordinator", flag, env=env)
        assert p.returncode == 0 and p.stderr == "" and not seal.exists(), p.stderr
    for args in (["--bogus"], ["serve"], ["--help", "extra"], ["--version", "x"]):
        p = run("marblerun-coordinator", *args, env=env)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert p.stdout == "" and "Usage: marblerun-coordinator" in p.stderr
        assert f'unknown argument "{args[-1]}"' in p.stderr
        assert not seal.exists()


def test_unknown_arguments_of_the_tools():
    for name in ("marblerun-config-doc", "marblerun-gendoc", "marblerun-softsgx",
                 "marblerun-softsnp"):
        p = run(name, "--bogus")
        assert p.returncode == 2 and p.stdout == "" and name in p.stderr, (name, p.stderr)
    # without arguments config-doc still prints the configuration document
    p = run("marblerun-config-doc")
    assert p.returncode == 0 and p.stdout == (SOURCE_DIR / "docs" / "configuration.md").read_text()


def test_premain_passes_other_arguments_through():
    # After "--" a --help or --version belongs to the program the premain executes: the
    # premain goes on to activate (and fails here, without a Coordinator configuration).
    for flag in ("--help", "--version"):
        p = run("marblerun-premain", "--", flag)
        assert p.returncode == 1, (p.stdout, p.stderr)
        assert "Usage:" not in p.stdout and VERSION not in p.stdout
        assert "EDG_MARBLE_TYPE" in p.stderr
