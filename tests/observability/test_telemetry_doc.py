"""docs/telemetry.md lists every metric, span, span event and attribute the code emits, and every metric
the dashboards and rules read."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "telemetry.md").read_text()
SOURCES = [p for p in (ROOT / "services").rglob("*.py") if p.name != "sim.py"]  # sim.py: the explorer, no telemetry
METRIC = re.compile(r"\b(Counter|Gauge|Histogram|Summary|CounterMetricFamily|GaugeMetricFamily|HistogramMetricFamily)\(\s*\"([a-z_]+)\"")


def documented() -> set[str]:
    return set(re.findall(r"`([a-z_][a-z0-9_.:]*)`", DOC))


def emitted_metrics() -> set[str]:
    names = set()
    for path in SOURCES:
        for kind, name in METRIC.findall(path.read_text()):
            counter = kind.startswith("Counter")
            names.add(name + "_total" if counter and not name.endswith("_total") else name)
    return names


def test_every_emitted_metric_is_documented():
    metrics = emitted_metrics()
    assert len(metrics) >= 40, sorted(metrics)  # the scan finds the metrics at all
    assert not metrics - documented(), sorted(metrics - documented())


def test_every_span_event_and_attribute_is_documented():
    spans, events, attributes = set(), set(), set()
    for path in SOURCES:
        text = path.read_text()
        spans |= set(re.findall(r"start_(?:as_current_)?span\(\s*\"([a-z_.]+)\"", text))
        events |= set(re.findall(r"(?:add_event|_span_event)\(\s*\"([a-z_.]+)\"", text))
        attributes |= set(re.findall(r"\"((?:racelab|dns|error|server)\.[a-z_.]+)\"\s*[:,]", text))
    assert {"enactor.batch", "authority.apply_batch", "client.request"} <= spans
    assert "invariant.violated" in events and "racelab.plan.generation" in attributes
    missing = (spans | events | attributes) - documented()
    assert not missing, sorted(missing)


def test_dashboards_and_rules_read_only_documented_metrics():
    exprs = [t["expr"] for path in (ROOT / "grafana" / "dashboards").glob("*.json")
             for d in [json.loads(path.read_text())]
             for t in [*(t for p in d["panels"] for t in p["targets"]), *d["annotations"]["list"]] if "expr" in t]
    exprs += re.findall(r"expr: (.*(?:\n {10,}.*)*)", "\n".join(
        p.read_text() for p in (ROOT / "deploy" / "prometheus" / "rules").glob("*.yml")))
    read = {re.sub(r"_(bucket|sum|count)$", "", token) for expr in exprs
            for token in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)
            if token.startswith("racelab_") and ":" not in token}
    assert len(read) >= 40, sorted(read)
    assert not read - documented(), sorted(read - documented())
