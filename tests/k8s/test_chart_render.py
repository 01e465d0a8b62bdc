"""The CLI's own template renderer (marblerun install renders the chart without Helm) gives
the same objects as `helm template` for the same values: the embedded chart and the chart
directory, each value set of test_chart plus podLabels, Azure settings and the DCAP file."""
import json
import subprocess

import pytest

import mrk8s
from chart import CHART, DATA, helm_template
from test_chart import VARIANTS

RENDER = mrk8s.BUILD_DIR / "bin" / "marblerun-chart-render"

EXTRA = {
    "labels-azure": {"global": {"podLabels": {"team": "a", "tier": 1}},
                     "coordinator": {"azureCredentials": {"clientID": "cid", "tenantID": "tid",
                                                          "clientSecret": "s3cret"},
                                     "azureHSM": {"keyName": "k", "keyVersion": "1",
                                                  "vaultURL": "https://v", "maaURL": "https://m"},
                                     "pvcName": "my-pvc", "debugLogging": True}},
    "qcnl-file": {"dcap": {"qcnlConfig": '{"pccs_url": "https://x/", "collateral_service": "y"}\n'},
                  "marbleInjector": {"start": True, "CABundle": "Y2E=",
                                     "resourceKey": "alibabacloud.com/sgx_epc_MiB"},
                  "coordinator": {"hostname": "a.example,b.example", "resources": None}},
}


def sets_to_overrides(sets):
    """--set a.b=c as JSON overrides (the few value types the variants use)."""
    over = {}
    for s in sets:
        key, val = s.split("=", 1)
        v = {"true": True, "false": False, "null": None}.get(val, val)
        if isinstance(v, str) and v.isdigit():
            v = int(v)
        d = over
        parts = key.split(".")
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = v
    return over


def cli_render(tmp_path, ns, overrides, chart_dir="-"):
    f = tmp_path / "overrides.json"
    f.write_text(json.dumps(overrides))
    r = subprocess.run([str(RENDER), str(chart_dir), ns, str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def key(o):
    return (o["kind"], o["metadata"]["name"])


def cases():
    for name, v in sorted(VARIANTS.items()):
        yield name, v
    for name, over in sorted(EXTRA.items()):
        yield name, {"overrides": over}


@pytest.mark.parametrize("name,variant", list(cases()), ids=[c[0] for c in cases()])
def test_cli_render_equals_helm_template(tmp_path, name, variant):
    ns = "render-ns"
    if "overrides" in variant:
        over = variant["overrides"]
    elif "values_files" in variant:
        import yaml
        over = {}
        for f in variant["values_files"]:
            over.update(yaml.safe_load(f.read_text()))
    else:
        over = sets_to_overrides(variant.get("sets", ()))
    vf = tmp_path / "values.json"
    vf.write_text(json.dumps(over))  # JSON is YAML: the same values for helm
    want = sorted(helm_template(ns, values_files=[vf]), key=key)
    for chart_dir in ("-", CHART):
        got = sorted(cli_render(tmp_path, ns, over, chart_dir), key=key)
        assert [key(o) for o in got] == [key(o) for o in want]
        for g, w in zip(got, want):
            assert g == w, f"{key(g)} differs"
