"""The images of docker/, built from their Dockerfiles by buildah (images.py; no Docker engine
runs on this kind of machine), checked from the inside:

- every stage is FROM debian:bookworm-slim;
- the image's config is what the Dockerfile's final stage says (ENTRYPOINT, WORKDIR, ENV) and
  its USER is not root;
- every program and library the image carries in /usr/local finds all its shared libraries
  inside the image (ldd run in the image's root), and the entrypoint program starts there as
  the image's user;
- the final stage carries no build tools (the compiler stays in the build stage).

test_walkthrough.py runs the same images as the pods of docs/kubernetes.md."""
import os
import pathlib
import subprocess

import pytest

import dockerfiles

IMAGES = dockerfiles.images()
# how each entrypoint program shows that it starts: (arguments, text in its output)
STARTS = {"coordinator": (["--version"], "marblerun-coordinator"),
          "injector": (["-h"], "Usage of marblerun-injector"),
          "marble-base": (["--version"], "marblerun-premain")}


@pytest.fixture(scope="module")
def opened(built_images):
    return {name: built_images.open(name) for name in sorted(IMAGES)}


def _in_image(img, *cmd, user=None):
    """cmd run with the image's root as /, its environment, and the given uid:gid."""
    env = list(img.config.get("Env") or [])
    spec = [f"--userspec={user}", "--groups="] if user else []
    return subprocess.run(["chroot", *spec, str(img.rootfs), "/usr/bin/env", "-i", *env, *cmd],
                          capture_output=True, text=True, timeout=60)


def _elf_files(root):
    out = []
    for d in ("usr/local/bin", "usr/local/lib"):
        for f in sorted((root / d).glob("*")):
            if f.is_file() and not f.is_symlink() and f.read_bytes()[:4] == b"\x7fELF":
                out.append("/" + str(f.relative_to(root)))
    return out


def test_three_images():
    assert set(IMAGES) == {"coordinator", "injector", "marble-base"}
    assert set(STARTS) == set(IMAGES)


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_stages_from_bookworm_slim(name):
    stages = dockerfiles.parse(dockerfiles.DOCKER / name / "Dockerfile")
    assert [s.base for s in stages] == ["debian:bookworm-slim"] * len(stages)


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_config_is_the_dockerfiles_and_not_root(name, opened):
    final, cfg = IMAGES[name], opened[name].config
    assert cfg.get("Entrypoint") == final.entrypoint
    assert (cfg.get("Cmd") or []) == final.cmd
    assert (cfg.get("WorkingDir") or "/") == final.workdir
    env = dict(e.split("=", 1) for e in cfg.get("Env") or [])
    for k, v in final.env.items():
        assert env.get(k) == v, (k, env)
    user = cfg.get("User") or ""
    assert user == final.user
    assert user and user.split(":")[0] not in ("0", "root"), user


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_every_program_finds_its_libraries_in_the_image(name, opened):
    img = opened[name]
    files = _elf_files(img.rootfs)
    assert img.config["Entrypoint"][0] in files, files
    for f in files:
        p = _in_image(img, "ldd", f)
        assert p.returncode == 0, f"{name}: ldd {f}: {p.stderr}"
        assert "not found" not in p.stdout, f"{name}: {f} lacks libraries:\n{p.stdout}"
        for line in p.stdout.splitlines():
            # every library resolves to a file of the image (not to something of this host)
            if "=>" in line:
                path = line.split("=>")[1].split()[0]
                assert os.path.exists(str(img.rootfs) + path), (f, line)


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_entrypoint_starts_as_the_image_user(name, opened):
    img = opened[name]
    args, text = STARTS[name]
    p = _in_image(img, img.config["Entrypoint"][0], *args, user=img.config["User"])
    assert p.returncode == 0, f"{name}: {p.stdout}{p.stderr}"
    assert text in p.stdout + p.stderr


def test_marble_base_finds_libmarble_through_ld_cache(opened):
    img = opened["marble-base"]
    p = _in_image(img, "ldconfig", "-p")
    assert "libmarble.so" in p.stdout, p.stdout


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_final_stage_has_no_build_tools(name, opened):
    root = pathlib.Path(opened[name].rootfs)
    for tool in ("usr/bin/gcc", "usr/bin/cc", "usr/bin/cmake", "usr/bin/ninja", "usr/bin/git"):
        assert not (root / tool).exists(), f"{name}: {tool} in the final image"
    assert not (root / "src").exists() and not (root / "build").exists()
