"""grafana/: the committed dashboards are what tools/gen_dashboards.py writes, they use the provisioned
datasources, every query is valid PromQL, and the race dashboard marks the stale apply and the deletion."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prom_helpers import require_binary

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DASHBOARDS = {p.stem: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))}
DATASOURCES = {d["uid"]: d for d in yaml.safe_load(
    (GRAFANA / "provisioning" / "datasources" / "racelab.yml").read_text())["datasources"]}
GRAFANA_VARIABLES = {"$__rate_interval": "4s", "$__interval": "1s", "$__range": "5m"}


def queries(dashboard: dict) -> list[tuple[str, dict]]:
    """(where, query object) for every panel target and every Prometheus annotation."""
    found = [(f"panel {p['title']!r}", t) for p in dashboard["panels"] for t in p["targets"]]
    found += [(f"annotation {a['name']!r}", a) for a in dashboard["annotations"]["list"] if not a.get("builtIn")]
    return found


def test_committed_dashboards_are_what_the_generator_writes():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_dashboards.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert set(DASHBOARDS) == {"racelab-race", "racelab-cascade", "racelab-ec2", "racelab-grpc"}


def test_dashboards_use_the_provisioned_datasources():
    prometheus, traces = DATASOURCES["racelab-prometheus"], DATASOURCES["racelab-traces"]
    assert prometheus["type"] == "prometheus"
    assert prometheus["jsonData"]["exemplarTraceIdDestinations"] == [{"name": "trace_id",
                                                                        "datasourceUid": traces["uid"]}]
    exemplars = 0
    for uid, dashboard in DASHBOARDS.items():
        assert dashboard["uid"] == uid
        for where, q in queries(dashboard):
            assert q["datasource"] == {"type": "prometheus", "uid": "racelab-prometheus"}, (uid, where)
            exemplars += bool(q.get("exemplar"))
    assert exemplars >= 5
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "racelab.yml").read_text())
    assert provider["providers"][0]["type"] == "file"


def test_every_query_is_valid_promql(tmp_path):
    """promtool parses each query as a recording rule: a typo fails here, without a Prometheus running."""
    rules = []
    for uid, dashboard in DASHBOARDS.items():
        for where, q in queries(dashboard):
            expr = q["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, (uid, where, expr)
            rules.append({"record": f"dashboard:query_{len(rules)}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = subprocess.run([require_binary("promtool"), "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(rules)} rules found" in done.stdout


def test_panels_fit_the_grid_without_overlapping():
    for uid, dashboard in DASHBOARDS.items():
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), uid
        cells = set()
        for p in dashboard["panels"]:
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24, (uid, p["title"])
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not mine & cells, (uid, p["title"])
            cells |= mine


def test_every_dashboard_shows_the_simulated_pdt_clock():
    for uid, dashboard in DASHBOARDS.items():
        clocks = [p for p in dashboard["panels"] if p["type"] == "stat"
                  and "racelab_sim_timestamp_seconds" in p["targets"][0]["expr"]]
        assert clocks and clocks[0]["fieldConfig"]["defaults"]["unit"].startswith("time:"), uid
        assert dashboard["timezone"] == "utc"  # the clock's value is shifted to PDT for a UTC display


def test_the_race_dashboard_marks_the_stale_apply_and_the_deletion():
    race = DASHBOARDS["racelab-race"]
    marks = {a["name"]: a["expr"] for a in race["annotations"]["list"] if not a.get("builtIn")}
    assert "racelab_enactor_stale_flips_total" in marks["Stale plan applied"]
    assert "racelab_authority_endpoint_generation == -1" in marks["Active tree deleted"]
    titles = {p["title"] for p in race["panels"]}
    assert {"Active generation per endpoint (authority)", "Addresses each endpoint answers with",
            "Enactors: plan in progress and applied, beside the planner's newest"} <= titles


def _generator():
    spec = importlib.util.spec_from_file_location("gen_dashboards_under_test", ROOT / "tools" / "gen_dashboards.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("change, error", [
    ({"kind": "gauge-ish"}, KeyError),             # a panel type the generator has no builder for
    ({"text_mode": "big"}, ValueError),            # a stat option value Grafana 11.6's schema does not have
    ({"color_mode": "rainbow"}, ValueError),
])
def test_what_grafana_does_not_know_fails_at_build_time(change, error):
    """Panels go through grafana-foundation-sdk's typed builders: an unknown panel type or option value is
    an error when the dashboards are generated, not a panel Grafana silently draws wrong."""
    gen = _generator()
    panel = gen.Panel("a stat", [gen.Q("up")], 4, "stat")
    gen._panel(panel, 1, 0, 0, 4)  # the unchanged panel builds
    for name, value in change.items():
        setattr(panel, name, value)
    with pytest.raises(error):
        gen._panel(panel, 1, 0, 0, 4)
