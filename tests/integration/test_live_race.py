"""The live replica, end to end: the race must emerge from the mechanism, and the fixes must stop it.

Each test runs `racelab run` on the oct-2025 scenario (every process, real gRPC
and DNS on loopback, about 70 s of wall time, to 02:50 PDT) and checks what happened from
the spans the processes exported, the metrics scraped during the run and DNS
queries this test sends itself - never from a process's own verdict.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest
from procs import event_time

from services.core.plans import LEGACY_ENDPOINT
from services.lab.live.otlpsink import read_spans
from services.lab.live.scrape import load_series

pytestmark = pytest.mark.integration

BASE_PORT = 21000
DNS = ("127.0.0.1", BASE_PORT + 53)
RACE_UNTIL = "02:50"  # the race, the stuck automation, the 02:25 restore and the clients' recovery


class DnsProbe(threading.Thread):
    """Asks the authority for the regional name (A and AAAA) twice a second, like `dig` would."""

    def __init__(self, address: tuple[str, int] = DNS) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.answers: list[tuple[float, str, str, int]] = []  # wall time, qtype, rcode, answer count
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for qtype in ("A", "AAAA"):
                try:
                    reply = dns.query.udp(dns.message.make_query(LEGACY_ENDPOINT, qtype), self.address[0],
                                          port=self.address[1], timeout=0.5)
                    count = sum(len(rrset) for rrset in reply.answer)
                    self.answers.append((time.time(), qtype, dns.rcode.to_text(reply.rcode()), count))
                except Exception:  # not up yet, or already stopped
                    pass
            self.done.wait(0.5)


def run_replica(tmp: Path, seed: int, *fixes: str, scenario: str = "oct-2025",
                until: str = RACE_UNTIL) -> tuple[dict, DnsProbe]:
    out = tmp / f"seed{seed}{'-fixed' if fixes else ''}"
    probe = DnsProbe()
    probe.start()
    cmd = [sys.executable, "-m", "services.lab.cli", "run", "--no-tty", "--scenario", scenario, "--seed", str(seed),
           "--out", str(out), "--base-port", str(BASE_PORT), "--until", until, "--no-what-if"]
    cmd += [f"--fix={f}" for f in fixes]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    finally:
        probe.done.set()
        probe.join()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "summary.json").read_text()), probe


def legacy_batches(spans: list[dict]) -> list[dict]:
    return sorted((s for s in spans if s["name"] == "enactor.batch"
                   and s["attrs"].get("racelab.zone") == LEGACY_ENDPOINT), key=lambda s: int(s["endTimeUnixNano"]))


# The outage is emergent, so a given seed may not show it. These seeds were never used to choose the
# scenario; every one is run, and the test fails when fewer than MIN_EMPTIED of them empty the regional
# name, so a change that made the race rarer fails here. bench/RESULTS-race.md measured 15 of 16 and
# 36 of 44 live runs: at 36 of 44, fewer than 3 of 6 empty it about 1 time in 90; at 15 of 16, 1 in 1,000.
RACE_SEEDS = (1001, 1002, 1003, 1004, 1005, 1006)
MIN_EMPTIED = 3


RACE_ONLY_UNTIL = "00:30"  # the race is over by then: live runs emptied the name between 23:32 and 00:02


def reraced(summary: dict) -> bool:
    """The regional name emptied again after the operators' 02:25 repair, as in about 1 full live run in
    10-12 (bench/RESULTS-race.md, bench/RESULTS-fidelity.md): its clients cannot recover by the run's end."""
    windows = [w for w in summary.get("empty_windows", []) if w["endpoint"] == LEGACY_ENDPOINT]
    if not windows or windows[0]["until_sim"] is None:
        return False
    repaired = windows[0]["until_sim"]
    return any(w["from_sim"] > repaired for w in windows[1:])


def test_the_race_empties_the_regional_name_and_the_automation_sticks(tmp_path):
    # Every seed is run; they run to 02:50 (the stuck automation, the repair, the clients' recovery)
    # until one empties the regional name and the repair holds, and the rest only through the race.
    whole = lambda s: emptied_regional(s) and not reraced(s)  # noqa: E731
    runs = {}
    for seed in RACE_SEEDS:
        full = not any(whole(summary) for summary, _ in runs.values())
        runs[seed] = run_replica(tmp_path, seed, until=RACE_UNTIL if full else RACE_ONLY_UNTIL)
    emptied = [seed for seed, (summary, _) in runs.items() if emptied_regional(summary)]
    report = {seed: summary["emptied_endpoints"] for seed, (summary, _) in runs.items()}
    again = [seed for seed, (summary, _) in runs.items() if reraced(summary)]
    print(f"the race emptied {LEGACY_ENDPOINT} in {len(emptied)} of {len(RACE_SEEDS)} seeds: {report}; "
          f"again after the repair in {again or 'none'}")
    assert len(emptied) >= MIN_EMPTIED, (f"the race emptied {LEGACY_ENDPOINT} in {len(emptied)} of "
                                         f"{len(RACE_SEEDS)} seeds, fewer than {MIN_EMPTIED}: {report}")
    chosen = [seed for seed in emptied if whole(runs[seed][0])]
    assert chosen, f"every run that emptied {LEGACY_ENDPOINT} to 02:50 emptied it again after the repair: {again}"
    summary, probe = runs[chosen[0]]
    run_dir = Path(summary["run_dir"])
    spans = read_spans(run_dir / "traces.jsonl")

    # 1. The authority saw the active tree deleted on the regional zone...
    deletions = [(t, s) for s in spans if s["name"] == "authority.apply_batch"
                 and s["attrs"].get("racelab.zone") == LEGACY_ENDPOINT
                 and (t := event_time(s, "invariant.violated", **{"racelab.violation": "active-tree-deleted"}))]
    assert deletions, "no span shows the active tree of the regional name being deleted"
    deleted_at = min(t for t, _ in deletions)

    # 2. ...by a clean-up batch, right after a STALE flip: an enactor applied an older generation
    #    over a newer one, and no other flip of the zone came in between.
    batches = legacy_batches(spans)
    cleanups = [s for s in batches if s["attrs"].get("racelab.batch.step") == "cleanup"
                and s["attrs"].get("racelab.batch.result") == "committed"
                and int(s["startTimeUnixNano"]) <= deleted_at <= int(s["endTimeUnixNano"])]
    assert cleanups, "the deletion is not an enactor's committed clean-up batch"
    flips = [s for s in batches if s["attrs"].get("racelab.batch.step") == "flip"
             and s["attrs"].get("racelab.batch.result") == "committed" and int(s["startTimeUnixNano"]) < deleted_at]
    assert flips, "no committed flip before the deletion"
    last_flip = max(flips, key=lambda s: int(s["startTimeUnixNano"]))
    generation = last_flip["attrs"]["racelab.plan.generation"]
    replaced = last_flip["attrs"]["racelab.endpoint.generation.replaced"]
    assert generation < replaced, f"the last flip before the deletion was not stale ({generation} over {replaced})"
    assert generation in cleanups[0]["attrs"].get("racelab.cleanup.deleted_generations", [])

    # 3. From then on every enactor's flip of the regional name is rejected (the rollback record
    #    points at nothing) until the operators' restore.
    restores = [int(s["startTimeUnixNano"]) for s in spans if s["name"] == "authority.apply_batch"
                and s["attrs"].get("racelab.zone") == LEGACY_ENDPOINT
                and str(s["attrs"].get("racelab.batch.comment", "")).startswith("operator")]
    restore = min(restores) if restores else None
    assert restore is not None, "the operators never restored the regional name"
    stuck = [s for s in batches if s["attrs"].get("racelab.batch.step") == "flip"
             and deleted_at < int(s["startTimeUnixNano"]) and int(s["endTimeUnixNano"]) < restore]
    assert all(s["attrs"].get("racelab.batch.result") in ("rejected", "lock_lost", "unavailable") for s in stuck)
    rejected = [s for s in stuck if s["attrs"].get("racelab.batch.result") == "rejected"]
    assert len({s["attrs"]["racelab.enactor.id"] for s in rejected}) >= 2, "fewer than two enactors were stuck"
    assert all("ALIAS_TARGET_MISSING" in str(s["attrs"].get("error.type", "")) for s in rejected)

    # 4. DNS itself answered NOERROR with no addresses (NODATA) during the window, for A and AAAA.
    window = [a for a in probe.answers if deleted_at < a[0] * 1e9 < restore]
    assert {(qtype, rcode, count) for _, qtype, rcode, count in window} == {("A", "NOERROR", 0),
                                                                            ("AAAA", "NOERROR", 0)}
    assert any(qtype == "A" and count == 1 for _, qtype, _, count in probe.answers)  # before, it had an address

    # 5. Clients failed on NODATA, and recovered after the restore as their caches expired.
    series = load_series(run_dir / "metrics.jsonl")
    assert series.total("racelab_client_requests_total", client="legacy", outcome="dns_nodata") > 0
    ratios = next(iter(series.history("racelab_client_success_ratio", client="legacy").values()))
    assert min(v for _, v in ratios) == 0.0
    assert ratios[-1][1] > 0.0, "legacy clients had not started to recover by the end of the run"


def emptied_regional(summary: dict) -> bool:
    return any(w["endpoint"] == LEGACY_ENDPOINT for w in summary["empty_windows"])


FIXED_SEEDS = (1, 1001, 1002)  # the first through the repair; the others through the race window


def test_with_the_race_fixes_the_same_conditions_never_empty_the_name(tmp_path):
    for seed in FIXED_SEEDS:
        summary, probe = run_replica(tmp_path, seed, "all", until=RACE_UNTIL if seed == FIXED_SEEDS[0] else "00:10")
        assert_never_emptied(summary, probe)


def assert_never_emptied(summary: dict, probe: DnsProbe) -> None:
    assert summary["fixes"] == ["fencing", "heal-rollback", "protect-active"]
    assert not summary["endpoint_emptied"] and not summary["active_tree_deleted"] and not summary["stale_apply"], \
        f"seed {summary['seed']}: {summary['emptied_endpoints']}, {summary['invariant_violations']}"
    a_answers = [count for _, qtype, rcode, count in probe.answers if qtype == "A"]
    assert 1 in a_answers
    # The zones start empty: from the moment the enactors first installed a plan, never again.
    assert all(count == 1 for count in a_answers[a_answers.index(1):])
    spans = read_spans(Path(summary["run_dir"]) / "traces.jsonl")
    flips = [s for s in legacy_batches(spans) if s["attrs"].get("racelab.batch.step") == "flip"
             and s["attrs"].get("racelab.batch.result") == "committed"]
    assert flips and all(s["attrs"]["racelab.plan.generation"] > s["attrs"]["racelab.endpoint.generation.replaced"]
                         for s in flips if "racelab.endpoint.generation.replaced" in s["attrs"])
