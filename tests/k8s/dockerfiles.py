"""The Dockerfiles under docker/, read the way the tests need them: per stage its base, the
files COPY --from=build takes out of the build, and the final stage's ENTRYPOINT, CMD, WORKDIR,
ENV and USER. test_images.py compares the built images (images.py) with them;
`runnable` maps a final stage to this build's programs on the host's / for mrnode, which
test_walkthrough.py uses with MR_K8S_IMAGES=local (e.g. for a sanitizer build)."""
import json
import pathlib

import mrk8s

DOCKER = mrk8s.SOURCE_DIR / "docker"


class Stage:
    def __init__(self, base):
        self.base = base
        self.copies = []  # (sources, destination) of COPY --from=build
        self.entrypoint = []
        self.cmd = []
        self.workdir = "/"
        self.env = {}
        self.user = None


def _instructions(text):
    """(keyword, argument) per instruction: continuation lines joined, comments dropped."""
    out, cur = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not cur:
            continue
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        cur += line
        if cur.strip():
            kw, _, arg = cur.strip().partition(" ")
            out.append((kw.upper(), arg.strip()))
        cur = ""
    return out


def _exec_form(arg):
    return json.loads(arg) if arg.startswith("[") else ["/bin/sh", "-c", arg]


def parse(path):
    stages = []
    for kw, arg in _instructions(pathlib.Path(path).read_text()):
        if kw == "FROM":
            stages.append(Stage(arg.split()[0]))
            continue
        st = stages[-1]
        if kw == "COPY" and arg.startswith("--from=build"):
            words = arg.split()[1:]
            st.copies.append((words[:-1], words[-1]))
        elif kw == "ENTRYPOINT":
            st.entrypoint = _exec_form(arg)
        elif kw == "CMD":
            st.cmd = _exec_form(arg)
        elif kw == "WORKDIR":
            st.workdir = arg
        elif kw == "ENV":
            k, _, v = arg.partition("=")
            st.env[k] = v
        elif kw == "USER":
            st.user = arg
    return stages


def images():
    """name -> final Stage, for docker/<name>/Dockerfile."""
    return {d.name: parse(d / "Dockerfile")[-1] for d in sorted(DOCKER.iterdir())
            if (d / "Dockerfile").exists()}


def local_path(image_path, build_dir=None):
    """Where this build has what an image's build stage produced under /build."""
    b = pathlib.Path(build_dir or mrk8s.BUILD_DIR)
    assert image_path.startswith("/build/"), image_path
    return b / image_path[len("/build/"):]


def runnable(stage, build_dir=None):
    """The mrnode image entry for a final stage: its ENTRYPOINT taken from this build (a COPY'd
    /usr/local/bin program becomes <build>/bin/<program>), WORKDIR, ENV, USER's uid and PATH
    with <build>/bin first (the image has its programs in /usr/local/bin)."""
    b = pathlib.Path(build_dir or mrk8s.BUILD_DIR)
    dest = {}
    for srcs, dst in stage.copies:
        for s in srcs:
            name = s.rsplit("/", 1)[1]
            dest[dst.rstrip("/") + "/" + name if dst.endswith("/") else dst] = str(local_path(s, b))
    ep = [dest.get(a, a) for a in stage.entrypoint]
    env = dict(stage.env)
    env["PATH"] = f"{b / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    uid = int(stage.user.split(":")[0]) if stage.user else None
    return {"entrypoint": ep, "cmd": stage.cmd, "workdir": stage.workdir, "env": env,
            "uid": uid}
