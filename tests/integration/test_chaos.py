"""kill -9 one process after another in the middle of `racelab run`: each comes back on its own state,
the others reconnect, and the scenario completes as it would have."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from services.core.plans import LEGACY_ENDPOINT
from services.lab.live.run import ensure_ports_free
from services.lab.live.scrape import load_series
from services.lab.live.topology import local_topology
from test_live_race import DnsProbe

pytestmark = pytest.mark.integration

KILLS = ["kill:authority@23:36", "kill:enactor-az2@23:40", "kill:planner@23:44", "kill:dynamodb@23:47",
         "kill:dwfm@03:00", "kill:netmgr@05:00", "kill:nlb@08:00"]
BASE_PORT = 26000  # each live test has its own port range (test_live_race 21000, observability 30000, ...)


def test_processes_killed_mid_run_recover_and_the_run_completes(tmp_path):
    base = BASE_PORT
    ensure_ports_free(local_topology(base))
    out = tmp_path / "run"
    probe = DnsProbe(("127.0.0.1", base + 53))
    probe.start()
    # --no-what-if: the table is the twins' (tests/lab/test_what_if.py); this is about live processes.
    cmd = [sys.executable, "-m", "services.lab.cli", "run", "--no-tty", "--no-what-if", "--fix", "all", "--out",
           str(out), "--base-port", str(base)] + [f"--chaos={k}" for k in KILLS]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    finally:
        probe.done.set()
        probe.join()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed_process"] is None
    assert [c["instance"] for c in summary["chaos"]] == ["authority", "enactor-az2", "planner", "dynamodb", "dwfm",
                                                          "netmgr", "nlb"]
    assert all(c["ready_seconds"] < 15 for c in summary["chaos"])
    for kill in summary["chaos"]:
        assert f"chaos: kill -9 {kill['instance']}" in done.stdout
    assert not summary["endpoint_emptied"] and not summary["active_tree_deleted"] and not summary["stale_apply"]

    # The authority came back with its zones from its log, not empty: once the regional name had an
    # address it never lost it (while the authority was down there was simply no answer).
    a_answers = [count for _, qtype, _, count in probe.answers if qtype == "A"]
    assert 1 in a_answers and all(count == 1 for count in a_answers[a_answers.index(1):]), a_answers
    log = (out / "logs" / "authority.log").read_text()
    serving = [line for line in log.splitlines() if "serving" in line and "zones" in line]
    assert len(serving) == 2 and "fresh state" in serving[0] and "fresh state" not in serving[1], serving

    # Plans went on from where the planner stopped, and enactors (the restarted one too) kept applying them.
    series = load_series(out / "metrics.jsonl")
    generations = [v for _, v in next(iter(series.history("racelab_authority_endpoint_generation",
                                                          endpoint=LEGACY_ENDPOINT).values()))]
    assert generations == sorted(generations) and generations[-1] > 200
    assert "loaded" in (out / "logs" / "planner.log").read_text()  # the history, reloaded
    applied = next(iter(series.history("racelab_enactor_applied_generation", enactor="enactor-az2").values()))
    assert applied[-1][1] > 200

    # The cascade's services came back on their snapshots, taken shortly before the kill (at most a
    # wall second before: here up to ~12 simulated minutes), not on a fresh state.
    kills = {c["instance"]: c for c in summary["chaos"]}
    for instance in ("dwfm", "netmgr", "nlb"):
        restored = re.search(r"restored from \S+ \(\w+ at (\d\d):(\d\d):(\d\d) PDT",
                             (out / "logs" / f"{instance}.log").read_text())
        assert restored, instance
        h, m, s = map(int, restored.groups())
        age = kills[instance]["killed_at_sim"] - (h * 3600 + m * 60 + s - 23.5 * 3600) % 86400  # sim: since 23:30
        assert -1 <= age <= 20 * 60, (instance, restored.group(0), kills[instance]["killed_at_pdt"])
    # The NLB kept its registered targets (a fresh one would start with none: the app registers on launch).
    killed = kills["nlb"]
    totals: dict[float, float] = {}
    for _, points in series.history("racelab_nlb_targets", nlb="app-nlb").items():
        for sim, value in points:
            totals[sim] = totals.get(sim, 0.0) + value
    before = [v for sim, v in sorted(totals.items()) if sim < killed["killed_at_sim"]]
    after = [v for sim, v in sorted(totals.items()) if sim > killed["back_at_sim"]]
    assert before and after and before[-1] > 10 and after[0] >= 0.8 * before[-1], (before[-3:], after[:3])
