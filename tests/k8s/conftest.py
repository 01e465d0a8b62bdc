"""Fixtures of the Kubernetes tests: one real etcd + kube-apiserver per session (mrk8s)."""
import os
import pathlib
import sys
import tempfile

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import images  # noqa: E402
import mrk8s  # noqa: E402


@pytest.fixture(scope="session")
def kube():
    """The session's cluster. Tests use namespaces of their own (kube.create_namespace)."""
    work = tempfile.mkdtemp(prefix="mr-k8s-")
    cluster = mrk8s.KubeCluster(work)
    try:
        cluster.start()
    except Exception:
        cluster.stop()
        raise
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def built_images():
    """The images of docker/, built once per session from their Dockerfiles (images.py)."""
    imgs = images.Images()
    imgs.build(images.names())
    yield imgs
    imgs.close()


@pytest.fixture(scope="session")
def bin_dir():
    return mrk8s.BUILD_DIR / "bin"
