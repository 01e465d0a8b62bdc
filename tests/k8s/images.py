"""The images of docker/, built for real from their Dockerfiles, without a Docker engine (none
runs on this kind of machine).

buildah (Debian's package, `scripts/install-deps k8s`) runs each Dockerfile unchanged, as
root, with chroot isolation, the overlay storage driver (MR_IMAGES_DRIVER=vfs where the build
folder cannot take overlay mounts) and the host's network, its storage under
<build>/k8s-images/<driver> (excluded from the build context by .dockerignore). No container registry
is reachable here, so the base `debian:bookworm-slim` is made locally: `debootstrap
--variant=minbase bookworm` from this machine's Debian mirror, with the slim image's apt
sources (bookworm, bookworm-updates, bookworm-security), committed once as
docker.io/library/debian:bookworm-slim in that storage. The builds run with --pull-never, so
nothing but that base can be used, and with --layers, so the package steps are cached between
runs while COPY . . and the compile steps are redone whenever the source changes.

    imgs = Images(build_dir)          # the storage under <build_dir>/k8s-images
    imgs.build(["coordinator", ...])  # buildah bud -f docker/<name>/Dockerfile, in order
    img = imgs.open("coordinator")    # a working container of the image, mounted:
    img.rootfs                        #   its file system (a directory; writes stay local)
    img.config                        #   the OCI config: Entrypoint, Cmd, Env, WorkingDir, User
    node_entry(img)                   # the image as mrnode runs it (file system as lower layer)
    imgs.close()                      # unmounts and removes the working containers

    python3 tests/k8s/images.py BUILD_DIR [NAME ...]   builds and prints each image's config
"""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import mrk8s  # noqa: E402

DRIVER = os.environ.get("MR_IMAGES_DRIVER", "overlay")
BASE = "docker.io/library/debian:bookworm-slim"
TAG = "localhost/marblerun-c/{}:test"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SOURCES = """Types: deb
URIs: {mirror}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: {security}
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def mirrors():
    """(main, security) URIs of this machine's apt sources, else deb.debian.org's."""
    main, sec = None, None
    srcs = pathlib.Path("/etc/apt/sources.list.d/debian.sources")
    text = srcs.read_text() if srcs.exists() else ""
    for block in text.split("\n\n"):
        uri = re.search(r"^URIs:\s*(\S+)", block, re.M)
        suites = re.search(r"^Suites:\s*(.*)$", block, re.M)
        if not uri or not suites:
            continue
        if "bookworm-security" in suites.group(1).split():
            sec = sec or uri.group(1)
        elif "bookworm" in suites.group(1).split():
            main = main or uri.group(1)
    main = main or DEFAULT_MIRROR
    return main, sec or main.rstrip("/") + "-security"


class Image:
    def __init__(self, name, container, rootfs, config):
        self.name, self.container = name, container
        self.rootfs = pathlib.Path(rootfs)
        self.config = config


class Images:
    def __init__(self, build_dir=None, log=None):
        self.dir = pathlib.Path(build_dir or mrk8s.BUILD_DIR) / "k8s-images" / DRIVER
        self.log = log or sys.stderr
        self.opened = []

    def _cmd(self, *args):
        return ["buildah", "--root", str(self.dir / "storage"), "--runroot",
                str(self.dir / "run"), "--storage-driver", DRIVER, *args]

    def buildah(self, *args, capture=True):
        cmd = self._cmd(*args)
        env = dict(os.environ, BUILDAH_ISOLATION="chroot")
        if capture:
            p = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if p.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)}: {p.stderr.strip()}")
            return p.stdout
        p = subprocess.run(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode} (log above)")
        return ""

    def has(self, ref):
        return subprocess.run(self._cmd("inspect", "--type", "image", ref),
                              capture_output=True).returncode == 0

    def ensure_base(self):
        """debian:bookworm-slim in the storage: debootstrapped once, then reused."""
        if self.has(BASE):
            return
        if os.geteuid() != 0 or shutil.which("debootstrap") is None:
            raise RuntimeError("images: making the base needs root and debootstrap "
                               "(scripts/install-deps k8s)")
        self.dir.mkdir(parents=True, exist_ok=True)
        main, sec = mirrors()
        tmp = pathlib.Path(tempfile.mkdtemp(prefix="base-", dir=self.dir))
        try:
            root = tmp / "rootfs"
            p = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(root), main],
                               stdout=self.log, stderr=subprocess.STDOUT)
            if p.returncode != 0:
                raise RuntimeError(f"images: debootstrap from {main} exited {p.returncode}")
            (root / "etc/apt/sources.list").unlink(missing_ok=True)
            (root / "etc/apt/sources.list.d/debian.sources").write_text(
                SOURCES.format(mirror=main, security=sec))
            shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
            shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
            ctr = self.buildah("from", "scratch").strip()
            try:
                self.buildah("copy", ctr, str(root) + "/", "/")
                self.buildah("config", "--cmd", "bash", "--env",
                             "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                             ctr)
                self.buildah("commit", "-q", ctr, BASE)
            finally:
                self.buildah("rm", ctr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def build(self, names):
        self.ensure_base()
        for name in names:
            df = mrk8s.SOURCE_DIR / "docker" / name / "Dockerfile"
            print(f"--- images: building {name} from {df}", file=self.log, flush=True)
            self.buildah("bud", "--pull-never", "--layers", "--network", "host", "-f", str(df),
                         "-t", TAG.format(name), str(mrk8s.SOURCE_DIR), capture=False)

    def config(self, name):
        out = json.loads(self.buildah("inspect", "--type", "image", TAG.format(name)))
        return out["OCIv1"].get("config", {})

    def open(self, name):
        ctr = self.buildah("from", "--pull-never", TAG.format(name)).strip()
        img = Image(name, ctr, self.buildah("mount", ctr).strip(), self.config(name))
        self.opened.append(img)
        return img

    def close(self):
        for img in self.opened:
            subprocess.run(self._cmd("rm", img.container), capture_output=True)
        self.opened = []


def node_entry(img):
    """The mrnode image entry of an opened image: its file system as the containers' lower
    layer, and ENTRYPOINT, CMD, WORKDIR, ENV and USER from its config."""
    cfg = img.config
    env = dict(e.split("=", 1) for e in cfg.get("Env") or [])
    user = cfg.get("User") or ""
    uid = int(user.split(":")[0]) if user else None
    return {"rootfs": str(img.rootfs), "entrypoint": list(cfg.get("Entrypoint") or []),
            "cmd": list(cfg.get("Cmd") or []), "workdir": cfg.get("WorkingDir") or "/",
            "env": env, "uid": uid}


def names():
    """The images of docker/: a folder per image with its Dockerfile."""
    return sorted(d.name for d in (mrk8s.SOURCE_DIR / "docker").iterdir()
                  if (d / "Dockerfile").exists())


def main():
    build_dir = sys.argv[1] if len(sys.argv) > 1 else None
    wanted = sys.argv[2:] or names()
    imgs = Images(build_dir)
    imgs.build(wanted)
    for n in wanted:
        print(n, json.dumps(imgs.config(n)))


if __name__ == "__main__":
    main()
