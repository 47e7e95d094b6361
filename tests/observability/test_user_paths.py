"""What a user types, with Prometheus installed: the run scrapes every process and the printed
command opens what it scraped, whatever directory the run went to and wherever the user stands.

1. `make run` from the repository root, on a terminal, no CI, no --out (the README's first line;
   RUN_ARGS ends it after the race).
2. `racelab run --out "<relative path with spaces>"` from another directory, piped, with CI=true
   (what a CI job or a log sees): plain output, one event per line.

Both open the run's TSDB with the command the run printed, from a third directory, and ask
Prometheus's own API whether every target was up and the race's alerts fired; they read the
run's alerts.json and report.html as a user would.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from prom_helpers import ROOT, UserRun, require_binary, run_as_user, user_env

from services.lab.live.prometheus import query_range
from services.lab.live.topology import local_topology
from services.runtime.clock import parse_pdt
from services.runtime.scenario import load_scenario

pytestmark = pytest.mark.integration

UNTIL = "23:50"  # the race has a stale apply by then in every run (bench/RESULTS-race.md)
DEFAULT_PORT = 17000  # `racelab run`'s default --base-port: what a user gets
EVENT_LINE = re.compile(r"^\d\d:\d\d:\d\d PDT  \S")


def check_prometheus_saw_the_run(run: UserRun, elsewhere: Path) -> None:
    """The printed command, from `elsewhere`, serves the run's series: every target up, the race's alerts."""
    log = (run.run_dir / "logs" / "prometheus.log").read_text()
    assert "no such file or directory" not in log, f"Prometheus could not find its files:\n{log[-2000:]}"
    summary = json.loads((run.run_dir / "summary.json").read_text())
    scenario = load_scenario(str(run.run_dir / "scenario.yaml"))
    # Up to the last scrape the run itself made: after it the processes stop, Prometheus last.
    start = summary["wall_start"] - 5
    end = summary["wall_start"] + scenario.schedule.wall_at(parse_pdt(summary["ended_at_pdt"][:8], scenario.epoch))
    browse = run.open_tsdb(elsewhere, elsewhere / "browse.log")
    try:
        up = {s["metric"]["instance"]: [v for _, v in s["values"]]
              for s in query_range(browse.url, "up", start, end, 1.0)}
        expected = {p.instance for p in local_topology(DEFAULT_PORT).processes}
        assert set(up) == expected, f"targets scraped: {sorted(up)}; expected {sorted(expected)}"
        # From each target's first answer on (the clients start once the regional name answers).
        never = sorted(i for i, values in up.items() if "1" not in values)
        assert not never, f"targets never up: {never}"
        after = {i: values[values.index("1"):] for i, values in up.items()}
        missed = {i: f"{v.count('0')} of {len(v)}" for i, v in after.items() if v.count("0") > max(3, len(v) / 10)}
        assert not missed, f"scrapes that failed after the target's first answer: {missed}"
        generation = query_range(browse.url, "racelab_authority_endpoint_generation", start, end, 5.0)
        assert generation, "the TSDB holds no racelab series"
        firing = {s["metric"]["alertname"] for s in query_range(browse.url, 'ALERTS{alertstate="firing"}',
                                                                  start, end, 1.0)}
    finally:
        browse.stop()
    assert "RacelabEndpointGenerationWentBack" in firing, f"the stale apply's alert never fired: {sorted(firing)}"
    assert "RacelabProcessDown" not in firing
    rows = json.loads((run.run_dir / "alerts.json").read_text())
    fired = {r["alert"] for r in rows}
    assert "RacelabEndpointGenerationWentBack" in fired, f"alerts.json: {sorted(fired)}"
    if summary["regional_name_emptied"]:
        assert "RacelabActiveTreeDeleted" in fired, sorted(fired)
        # The empty-answer alert needs its `for: 2s`, a scrape and an evaluation (1 s each) before
        # the run stops: a name emptied in the last wall seconds before --until cannot have fired it.
        empty_from = scenario.schedule.wall_at(summary["empty_windows"][0]["from_sim"])
        before_end = end - summary["wall_start"] - empty_from
        if before_end >= 6.0:
            assert "RacelabEndpointAnsweringEmpty" in fired, f"empty {before_end:.1f} s before the end: {sorted(fired)}"
    report = (run.run_dir / "report.html").read_text()
    assert "RacelabEndpointGenerationWentBack" in report, "the report shows no alert timeline"


def test_make_run_on_a_terminal_from_the_repository_root(tmp_path):
    require_binary("prometheus")
    require_binary("make", "make")
    before = set((ROOT / "runs").iterdir()) if (ROOT / "runs").exists() else set()
    run = run_as_user(["make", "run", f"RUN_ARGS=--until {UNTIL}"], cwd=ROOT, timeout=300, terminal=True)
    try:
        assert run.run_dir.parent == ROOT / "runs" and run.run_dir not in before, run.run_dir
        assert "Prometheus: http://127.0.0.1:17990" in run.output
        assert "PDT" in run.output and "enactor-az1" in run.output  # the live view drew
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        check_prometheus_saw_the_run(run, elsewhere)
    finally:
        shutil.move(str(run.run_dir), str(tmp_path / "run"))  # keep the repository as it was, the run for a look


def test_relative_out_with_spaces_from_another_directory_piped_under_ci(tmp_path):
    require_binary("prometheus")
    here = tmp_path / "where I stand"
    here.mkdir()
    run = run_as_user([str(ROOT / ".venv" / "bin" / "racelab"), "run", "--out", "my runs/the race",
                       "--until", UNTIL, "--no-what-if"], cwd=here, timeout=300, env=user_env(CI="true"))
    assert run.run_dir == here / "my runs" / "the race"
    lines = run.output.splitlines()
    events = [line for line in lines if EVENT_LINE.match(line)]
    assert len(events) > 50, run.output[-2000:]
    # One event per line: nothing is wrapped onto a line of its own.
    flips = [line for line in events if " applied generation " in line]
    assert flips and all(re.search(r" on \S+\.(com|aws)$", line) for line in flips), flips[:5]
    assert not [line for line in lines if line.startswith(" ") and line.strip()], "a wrapped line"
    assert any("[in 2025: " in line for line in events), "the status line lost its brackets"
    # Every process flushed its last spans to the run's sink as it stopped: the run once waited for
    # them on the sink's own event loop, so each final export timed out (10 s) and was lost.
    lost = sorted(p.name for p in (run.run_dir / "logs").glob("*.log") if "Failed to export traces" in p.read_text())
    assert not lost, f"last spans lost by {lost}"
    elsewhere = tmp_path / "another place"
    elsewhere.mkdir()
    check_prometheus_saw_the_run(run, elsewhere)
