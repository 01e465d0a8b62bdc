"""The harness itself: a real apiserver that stores, enforces RBAC, issues service-account
tokens, and routes Service references to loopback endpoints."""
import base64

import pytest

import mrk8s


def test_namespace_and_service_account_token(kube, tmp_path):
    kube.create_namespace("harness-a", labels={"x": "y"})
    ns = kube.get("/api/v1/namespaces/harness-a")
    assert ns["metadata"]["labels"]["x"] == "y"
    kube.create_service_account("harness-a", "reader")
    d = kube.serviceaccount_dir("harness-a", "reader", tmp_path / "sa")
    token = (d / "token").read_text()
    assert (d / "namespace").read_text() == "harness-a"
    assert (d / "ca.crt").read_bytes() == kube.ca_pem
    # RBAC is enforced: the account may not read secrets until a Role allows it.
    with pytest.raises(mrk8s.KubeError) as e:
        kube.request("GET", "/api/v1/namespaces/harness-a/secrets", token=token)
    assert e.value.status == 403
    kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "reader", "namespace": "harness-a"},
                "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]})
    kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "reader", "namespace": "harness-a"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "harness-a"}]})
    got = kube.wait_for(lambda: _try_list(kube, token), what="RBAC to apply")
    assert got["kind"] == "SecretList"


def _try_list(kube, token):
    try:
        return kube.request("GET", "/api/v1/namespaces/harness-a/secrets", token=token)
    except mrk8s.KubeError:
        return None


def test_resource_version_compare_and_swap(kube):
    kube.create_namespace("harness-b")
    s = kube.create("/api/v1/namespaces/harness-b/secrets",
                    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                     "data": {"k": base64.b64encode(b"1").decode()}})
    rv = s["metadata"]["resourceVersion"]
    s["data"]["k"] = base64.b64encode(b"2").decode()
    kube.request("PUT", "/api/v1/namespaces/harness-b/secrets/s", s)
    s["data"]["k"] = base64.b64encode(b"3").decode()
    s["metadata"]["resourceVersion"] = rv  # stale
    with pytest.raises(mrk8s.KubeError) as e:
        kube.request("PUT", "/api/v1/namespaces/harness-b/secrets/s", s)
    assert e.value.status == 409


def test_deployment_status_and_csr_signing(kube):
    kube.create_namespace("harness-c")
    kube.apply({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "d", "namespace": "harness-c"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
                         "template": {"metadata": {"labels": {"a": "b"}},
                                      "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    kube.set_deployment_status("harness-c", "d", 2, 1)
    d = kube.get("/apis/apps/v1/namespaces/harness-c/deployments/d")
    assert d["status"]["availableReplicas"] == 1 and d["status"]["replicas"] == 2
