"""Shared by the chart and CLI tests: helm (a test tool) and the rendered documents."""
import pathlib
import subprocess

import pytest
import yaml

import mrk8s

CHART = mrk8s.SOURCE_DIR / "charts" / "marblerun"
DATA = pathlib.Path(__file__).resolve().parent / "data"
# Kinds whose API the test apiserver does not serve (cert-manager CRDs are not installed).
NO_SCHEMA = {("cert-manager.io/v1", "Issuer"), ("cert-manager.io/v1", "Certificate")}


def helm_path():
    p = mrk8s.BUILD_DIR / "k8s-tools" / "bin" / "helm"
    if not p.exists():
        subprocess.run([str(mrk8s.SOURCE_DIR / "scripts" / "k8s-tools"), str(mrk8s.BUILD_DIR),
                        "helm"], check=True)
    return p


def helm(*args, check=True):
    r = subprocess.run([str(helm_path()), *args], capture_output=True, text=True,
                       env={"HOME": "/nonexistent", "PATH": "/usr/bin:/bin",
                            "HELM_CACHE_HOME": "/tmp/mr-helm-cache",
                            "HELM_CONFIG_HOME": "/tmp/mr-helm-config",
                            "HELM_DATA_HOME": "/tmp/mr-helm-data"})
    if check and r.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
    return r


def helm_template(namespace="marblerun", values_files=(), sets=()):
    args = ["template", "marblerun", str(CHART), "--namespace", namespace]
    for f in values_files:
        args += ["-f", str(f)]
    for s in sets:
        args += ["--set", s]
    return docs(helm(*args).stdout)


def docs(text):
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind(objs):
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


def env_of(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}
