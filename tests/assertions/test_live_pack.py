"""The incident pack on the live replica: as in 2025 it reports each violation with its spans, with the race
fixes the race checks pass, and the same pack judges a run live (through the run sink's OTLP copy) exactly as
it judges the run's files afterwards.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import warnings

import pytest

from services.core.plans import LEGACY_ENDPOINT

pytestmark = pytest.mark.integration

BASE_PORT = 24000
UNTIL = "02:45"  # the race, the stuck automation and the operators' restore; the cascade's hours are not needed
RACE_CHECKS = {"stale-apply": "stale_apply", "active-tree-deleted": "active_tree_deleted",
               "endpoint-empty": "endpoint_emptied", "enactors-stuck": "enactors_stuck"}


def racelab_assert(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "services.lab.cli", "assert", "incident", "--json", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def by_name(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


def test_as_in_2025_live_and_from_files(racelab_run):
    # The outage emerges (bench/RESULTS-race.md: about half the seeds with the cascade running); a seed
    # that does not show it is retried.
    for seed in (1, 2, 4, 5):
        live_address = f"127.0.0.1:{free_port()}"
        live = racelab_assert("--live", live_address, "--idle", "15", "--interval", "10")
        assert "receiving OTLP/gRPC" in live.stderr.readline()
        try:
            run = racelab_run(seed=seed, until=UNTIL, base_port=BASE_PORT,
                              env={"RACELAB_OTLP_FORWARD": live_address})
        finally:
            live_out, live_err = live.communicate(timeout=120)
        # As in 2025: the regional name emptied (under CPU contention the race sometimes empties a small
        # endpoint no client resolves instead; that is another night).
        emptied = any(w["endpoint"] == LEGACY_ENDPOINT for w in run.summary["empty_windows"])
        # The run counts what its forward could not hand over (a receiver too slow on a loaded machine):
        # every span is either received live or counted as not forwarded.
        lost = run.summary["spans_not_forwarded"]
        assert json.loads(live_out)["spans"] + lost == len(run.spans), (lost, len(run.spans))
        if emptied and not lost:
            break
        if emptied:
            warnings.warn(f"seed {seed}: {lost} of {len(run.spans)} spans did not reach the live receiver in "
                          "time; the live and file verdicts are compared on a run that lost none")
    else:
        pytest.fail("no run of 4 seeds both emptied the regional name and forwarded every span")
    files = subprocess.run([sys.executable, "-m", "services.lab.cli", "assert", "incident", "--json", "--traces",
                            str(run.run_dir)], capture_output=True, text=True)
    assert files.returncode == 1, files.stderr
    from_files = json.loads(files.stdout)
    checks = by_name(from_files)
    for check, flag in RACE_CHECKS.items():
        # The pack agrees with the run's own summary (taken from metrics and the director's events).
        assert (checks[check]["status"] == "fail") == run.summary[flag], (check, checks[check]["reason"])
    assert checks["active-tree-deleted"]["status"] == "fail"
    ids = {(s.trace_id, s.span_id) for s in run.spans}
    for check in RACE_CHECKS:
        for finding in checks[check]["findings"]:  # every violation points at spans that are in the run
            assert (finding["span"]["trace_id"], finding["span"]["span_id"]) in ids
            assert finding["message"] and finding["span"]["time"].endswith("PDT")
    story = [line["text"] for line in checks["active-tree-deleted"]["chain"]]
    assert any("took generation" in t for t in story) and any("now points at tree" in t for t in story)
    assert checks["clients-fail-after-endpoint-empties"]["status"] == "pass"

    # Live: the same verdicts over the same spans (the live report has no PDT clock while the run goes on).
    assert live.returncode == 1, live_err
    from_live = json.loads(live_out)
    assert from_live["spans"] == from_files["spans"] == len(run.spans)
    assert {n: c["status"] for n, c in by_name(from_live).items()} == {n: c["status"] for n, c in checks.items()}
    assert {n: c["violations"] for n, c in by_name(from_live).items()} == \
        {n: c["violations"] for n, c in checks.items()}


def test_with_the_race_fixes_the_race_checks_pass(racelab_run, assert_traces):
    run = racelab_run(seed=1, fixes=["all"], until=UNTIL, base_port=BASE_PORT)
    report = assert_traces("incident", run.spans, run.clock)  # raises with the full report if any check fails
    statuses = {o.check.name: o.status.value for o in report.outcomes}
    assert all(statuses[c] == "pass" for c in RACE_CHECKS), statuses
