"""What the images of docker/ need, checked against this build and Debian 12 (bookworm, the
images' base) without a container engine (none runs on this kind of machine):

- every stage is FROM debian:bookworm-slim; the final stage runs as a non-root USER and its
  ENTRYPOINT is a program it copies out of the build stage;
- every file a final stage copies out of the build exists in this build;
- the build stage installs the Debian packages whose pkg-config files CMakeLists.txt asks for;
- the final stage's packages, with their dependencies and the essential base of a slim image,
  provide every shared library each copied program loads (ldd), and libraries of the build
  itself (libmarble.so) are copied too.

A package is resolved through dpkg on this machine (Debian 12, the images' release): the
libraries a program loads here are the ones it loads in the image."""
import glob
import os
import pathlib
import re
import subprocess

import pytest

import dockerfiles
import mrk8s

PKG_MODULES = ["libssl", "libcrypto", "jansson", "libevent_core", "libevent_openssl",
               "libevent_pthreads", "libevent_extra", "libnghttp2", "libprotobuf-c", "libcurl"]


def _owner(path):
    for p in {path, os.path.realpath(path)}:
        for cand in (p, "/usr" + p if not p.startswith("/usr/") else p[4:]):
            r = subprocess.run(["dpkg-query", "-S", cand], capture_output=True, text=True)
            if r.returncode == 0:
                return r.stdout.split(":", 1)[0].strip()
    return None


def _installed():
    out = subprocess.run(["dpkg-query", "-W", "-f",
                          "${Package}\t${Essential}\t${Priority}\t${Pre-Depends}, ${Depends}\n"],
                         capture_output=True, text=True, check=True).stdout
    pkgs = {}
    for line in out.splitlines():
        name, essential, prio, deps = line.split("\t")
        alts = []
        for d in deps.split(","):
            names = [re.sub(r"[\s(].*", "", a.strip()).split(":")[0] for a in d.split("|")]
            alts.append([n for n in names if n])
        pkgs[name] = (essential == "yes" or prio == "required", [a for a in alts if a])
    return pkgs


def _closure(roots, pkgs):
    seen, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p in seen or p not in pkgs:
            continue
        seen.add(p)
        for alt in pkgs[p][1]:
            todo.extend(a for a in alt if a in pkgs)
    return seen


@pytest.fixture(scope="module")
def installed():
    return _installed()


IMAGES = dockerfiles.images()


def test_three_images():
    assert set(IMAGES) == {"coordinator", "injector", "marble-base"}


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_stages_and_entrypoint(name):
    stages = dockerfiles.parse(dockerfiles.DOCKER / name / "Dockerfile")
    assert [s.base for s in stages] == ["debian:bookworm-slim"] * len(stages)
    final = stages[-1]
    assert final.user and not final.user.startswith("0") and final.user.split(":")[0] != "root"
    dests = set()
    for srcs, dst in final.copies:
        for s in srcs:
            dests.add(dst.rstrip("/") + "/" + s.rsplit("/", 1)[1] if dst.endswith("/") else dst)
    assert final.entrypoint and final.entrypoint[0] in dests, (final.entrypoint, dests)


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_copied_files_exist_in_this_build(name):
    for srcs, _ in IMAGES[name].copies:
        for s in srcs:
            assert glob.glob(str(dockerfiles.local_path(s))), f"{name}: {s} is not in this build"


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_build_stage_has_the_development_packages(name):
    build = dockerfiles.parse(dockerfiles.DOCKER / name / "Dockerfile")[0]
    for mod in PKG_MODULES:
        d = subprocess.run(["pkg-config", "--variable=pcfiledir", mod], capture_output=True,
                           text=True, check=True).stdout.strip()
        owner = _owner(f"{d}/{mod}.pc")
        assert owner, f"no Debian package owns {mod}.pc"
        assert owner in build.packages, f"{name}: the build stage lacks {owner} ({mod}.pc)"
    for tool in ("cmake", "ninja-build", "pkg-config", "protobuf-c-compiler"):
        assert tool in build.packages, f"{name}: the build stage lacks {tool}"


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_runtime_packages_provide_every_library(name, installed):
    final = IMAGES[name]
    for p in final.packages:
        assert p in installed, f"{name}: {p} is not a Debian 12 package installed here"
    base = {p for p, (ess, _) in installed.items() if ess}
    provided = _closure(set(final.packages) | base, installed)
    copied = [pathlib.Path(f) for srcs, _ in final.copies for s in srcs
              for f in glob.glob(str(dockerfiles.local_path(s)))]
    copied_names = {f.name for f in copied}
    checked = 0
    for f in copied:
        if not f.read_bytes()[:4] == b"\x7fELF":
            continue
        out = subprocess.run(["ldd", str(f)], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            m = re.match(r"\s*(\S+) => (\S+)", line)
            if not m:
                continue
            soname, path = m.groups()
            assert path != "not", f"{name}: {f.name} needs {soname}, which is not found"
            if str(mrk8s.BUILD_DIR) in path:
                assert soname in copied_names, f"{name}: {f.name} needs {soname} of the build, " \
                                               "which the image does not copy"
                continue
            owner = _owner(path)
            assert owner, f"{name}: no package owns {path}"
            assert owner in provided, f"{name}: {f.name} loads {soname} from {owner}, which " \
                                      f"the image's packages do not bring"
            checked += 1
    assert checked > 0
