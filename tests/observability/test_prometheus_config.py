"""deploy/prometheus/: promtool check config, check rules and test rules, for the local run and Kubernetes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml
from prom_helpers import require_binary

from services.lab.live.prometheus import DEPLOY_DIR, write_run_config
from services.lab.live.topology import local_topology

RULES = sorted((DEPLOY_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((DEPLOY_DIR / "tests").glob("*.yml"))


def promtool(*args: str, cwd: Path = DEPLOY_DIR) -> str:
    done = subprocess.run([require_binary("promtool"), *args], capture_output=True, text=True, cwd=cwd, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_the_run_config_is_valid_and_lists_every_process(tmp_path):
    topology = local_topology(30500)
    config = write_run_config(topology, tmp_path)
    output = promtool("check", "config", str(config))
    assert "SUCCESS" in output and "WARNING" not in output, output
    loaded = yaml.safe_load(config.read_text())
    assert loaded["rule_files"] == [str(DEPLOY_DIR / "rules" / "*.yml")]  # the committed rule files themselves
    targets = json.loads((tmp_path / "targets" / "racelab.json").read_text())
    assert sorted((t["labels"]["instance"], t["labels"]["job"], t["targets"][0]) for t in targets) == \
        sorted((p.instance, p.service, p.metrics) for p in topology.processes)


def test_the_committed_local_config_is_valid():
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")


def test_kubernetes_config_uses_the_same_rules_and_settings():
    local = yaml.safe_load((DEPLOY_DIR / "prometheus.yml").read_text())
    k8s = yaml.safe_load((DEPLOY_DIR / "prometheus-kubernetes.yml").read_text())
    assert k8s["global"] == local["global"]
    assert k8s["rule_files"] == local["rule_files"]
    assert [j["metric_relabel_configs"] for j in k8s["scrape_configs"]] == \
        [j["metric_relabel_configs"] for j in local["scrape_configs"]]
    relabel = k8s["scrape_configs"][0]["relabel_configs"]
    assert {r["target_label"] for r in relabel if "target_label" in r} >= {"job", "instance", "__address__"}


def test_kubernetes_config_is_valid(tmp_path):
    """Debian's Prometheus is built without Kubernetes discovery; there its one kubernetes_sd_configs block is
    swapped for an equivalent file_sd block and everything else (relabelling, rules) is checked as written."""
    source = DEPLOY_DIR / "prometheus-kubernetes.yml"
    probe = tmp_path / "probe.yml"
    probe.write_text("scrape_configs: [{job_name: x, kubernetes_sd_configs: [{role: pod}]}]\n")
    supports_kubernetes = subprocess.run([require_binary("promtool"), "check", "config", str(probe)],
                                         capture_output=True).returncode == 0
    config = yaml.safe_load(source.read_text())
    if not supports_kubernetes:
        for job in config["scrape_configs"]:
            assert job.pop("kubernetes_sd_configs") == [{"role": "pod"}]
            job["file_sd_configs"] = [{"files": [str(tmp_path / "targets.json")]}]
        (tmp_path / "targets.json").write_text("[]")
    config["rule_files"] = [str(DEPLOY_DIR / f) for f in config["rule_files"]]
    checked = tmp_path / "prometheus-kubernetes.yml"
    checked.write_text(yaml.safe_dump(config))
    assert "SUCCESS" in promtool("check", "config", str(checked))


def test_rules_are_valid():
    output = promtool("check", "rules", *map(str, RULES))
    assert output.count("SUCCESS") == len(RULES) >= 2, output


def test_rule_unit_tests_pass():
    assert RULE_TESTS
    assert "SUCCESS" in promtool("test", "rules", *map(str, RULE_TESTS))


def test_every_alert_is_tested_firing_and_every_recording_rule_is_read():
    alerts = set(re.findall(r"- alert: (\w+)", "\n".join(p.read_text() for p in RULES)))
    tests = [yaml.safe_load(p.read_text()) for p in RULE_TESTS]
    fired = {case["alertname"] for t in tests for group in t["tests"] for case in group.get("alert_rule_test", [])
             if case.get("exp_alerts")}
    assert alerts and not alerts - fired, sorted(alerts - fired)
    records = set(re.findall(r"- record: (\S+)", "\n".join(p.read_text() for p in RULES)))
    dashboards = (DEPLOY_DIR.parents[1] / "grafana" / "dashboards").glob("*.json")
    readers = "\n".join(p.read_text() for p in [*RULES, *dashboards])
    unread = {r for r in records if readers.count(r) < 2}  # its own definition, then some reader
    assert not unread, sorted(unread)
