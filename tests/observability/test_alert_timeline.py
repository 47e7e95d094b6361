"""The alert timeline from Prometheus's ALERTS series, and the run's Prometheus when none is installed."""

from __future__ import annotations

import io
from datetime import datetime

from rich.console import Console

from services.lab.live import prometheus, run
from services.lab.live.topology import local_topology
from services.runtime.clock import PDT, Schedule, SimClock

START = 1_000.0


def fake_alerts(monkeypatch, series: list[dict]) -> None:
    def query_range(url, expr, start, end, step=1.0):
        assert expr == 'ALERTS{alertstate="firing"}'
        return series
    monkeypatch.setattr(prometheus, "query_range", query_range)


def firing(name: str, times: list[float], **labels: str) -> dict:
    metric = {"__name__": "ALERTS", "alertname": name, "alertstate": "firing", "severity": "critical", **labels}
    return {"metric": metric, "values": [[t, "1"] for t in times]}


def test_stretches_of_firing_become_spans_in_the_order_they_fired(monkeypatch):
    fake_alerts(monkeypatch, [
        firing("RacelabEndpointAnsweringEmpty", [1012, 1013, 1014, 1030, 1031], endpoint="e1"),
        firing("RacelabActiveTreeDeleted", [1010, 1011, 1012, 1013, 1014, 1015, 1016, 1017, 1018, 1019, 1020],
               endpoint="e1"),
    ])
    spans = prometheus.alert_timeline("http://prometheus", START, 1031.5)
    assert [(s.alert, s.fired, s.resolved) for s in spans] == [
        ("RacelabActiveTreeDeleted", 1010, 1021),
        ("RacelabEndpointAnsweringEmpty", 1012, 1015),
        ("RacelabEndpointAnsweringEmpty", 1030, None),  # still firing when the timeline ends
    ]
    assert spans[0].labels == {"endpoint": "e1"} and spans[0].severity == "critical"


def test_rows_carry_simulated_pdt_and_the_html_escapes_labels(monkeypatch):
    fake_alerts(monkeypatch, [firing("RacelabDynamoDBClientsFailing", [1010, 1011], client="<legacy>")])
    clock = SimClock(Schedule(((0.0, 0.0), (10.0, 600.0))), datetime(2025, 10, 19, 23, 30, tzinfo=PDT), START)
    rows = prometheus.alert_timeline_rows(prometheus.alert_timeline("http://p", START, 1100), clock)
    assert rows[0]["fired_pdt"] == "23:40:00 PDT" and rows[0]["resolved_pdt"] == "23:42:00 PDT"
    page = prometheus.alert_timeline_html(rows)
    assert "&lt;legacy&gt;" in page and "<legacy>" not in page
    assert "No alert fired" in prometheus.alert_timeline_html([])


def test_a_run_without_prometheus_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setattr(run, "binary", lambda: None)
    out = io.StringIO()
    options = run.RunOptions(scenario=None, out=tmp_path)
    assert run._start_prometheus(options, tmp_path, local_topology(30500), Console(file=out, width=200)) is None
    assert "apt-get install prometheus" in out.getvalue()
    options.prometheus = False
    assert run._start_prometheus(options, tmp_path, local_topology(30500), Console(file=io.StringIO())) is None
