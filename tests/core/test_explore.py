"""The deterministic explorer: reproducible schedules, the four violations without fixes,
none with them, what each fix alone blocks, and the `racelab explore` command."""

from __future__ import annotations

import re

import pytest

from services.core.fixes import RACE_FIXES, Fix
from services.core.invariants import Violation
from services.lab.twin import explore
from services.lab.cli import main
from services.lab.twin.sim import WorldConfig, run_schedule

CONFIG = WorldConfig()
ALL_VIOLATIONS = set(Violation) - {Violation.EMPTIED_AFTER_REPAIR}  # no operators in this world


def search(first: int, count: int, fixes=frozenset(), until: str = "none") -> explore.Search:
    return explore.search(first, count, CONFIG, frozenset(fixes), until=until, workers=2)


# ---- (a) determinism ----

@pytest.mark.parametrize("seed, fixes", [(0, frozenset()), (100, frozenset()), (7, frozenset({Fix.FENCING})),
                                         (100, RACE_FIXES)])
def test_the_same_seed_replays_the_same_schedule(seed, fixes):
    first, second = run_schedule(seed, CONFIG, fixes), run_schedule(seed, CONFIG, fixes)
    assert first.timeline and first.timeline == second.timeline
    assert first.findings == second.findings
    assert first.empty_windows == second.empty_windows
    assert (first.batches_committed, first.batches_failed, first.events, first.conditions, first.ended_at) == \
        (second.batches_committed, second.batches_failed, second.events, second.conditions, second.ended_at)


@pytest.mark.parametrize("fixes", [frozenset(), RACE_FIXES])
def test_reused_emptiness_answers_equal_resolving_again(monkeypatch, fixes):
    """The checker reuses an endpoint's emptiness when a batch wrote nothing its resolution read;
    every answer, reused or not, must equal resolving the new snapshot from scratch."""
    from services.core import invariants

    checked = {"reused": 0, "all": 0}
    original = invariants.InvariantChecker._empty

    def both(self, endpoint, dual_stack, before, after, written):
        last = self._resolved.get(endpoint)
        got = original(self, endpoint, dual_stack, before, after, written)
        checked["all"] += 1
        checked["reused"] += last is not None and self._resolved[endpoint][2] is last[2]
        assert got == invariants.resolves_empty(after, endpoint, dual_stack), (endpoint, after.version)
        return got

    monkeypatch.setattr(invariants.InvariantChecker, "_empty", both)
    for seed in range(120):
        run_schedule(seed, CONFIG, fixes)
    assert checked["reused"] > checked["all"] // 4  # the shortcut is taken, and was checked each time


def test_different_seeds_give_different_schedules():
    assert run_schedule(1, CONFIG).timeline != run_schedule(2, CONFIG).timeline


def test_workers_do_not_change_the_verdicts():
    count = explore.CHUNK + 20  # large enough for the process pool to be used
    serial = list(explore.verdicts(0, count, CONFIG, frozenset(), workers=1))
    parallel = list(explore.verdicts(0, count, CONFIG, frozenset(), workers=2))
    assert [v.seed for v in parallel] == list(range(count))
    assert parallel == serial


# ---- (b) October 2025: every violation, and the story behind the empty endpoint ----

@pytest.fixture(scope="module")
def unfixed() -> explore.Search:
    return search(0, 1000, until="all")


def test_without_fixes_all_four_violations_appear_within_1000_schedules(unfixed):
    assert set(unfixed.first_seed) == ALL_VIOLATIONS
    assert unfixed.schedules <= 1000
    assert max(unfixed.first_seed.values()) == unfixed.schedules - 1  # it stopped once all four were seen
    assert all(unfixed.counts[v] >= 1 for v in ALL_VIOLATIONS)
    assert unfixed.worst is not None


def test_the_emptied_endpoint_was_flipped_back_by_a_stale_plan_then_its_tree_cleaned_up(unfixed):
    result = run_schedule(unfixed.first_seed[Violation.ENDPOINT_EMPTY], CONFIG)
    emptied = next(f for f in result.findings if f.violation is Violation.ENDPOINT_EMPTY)
    zone_events = [e for e in result.timeline if e.zone == emptied.endpoint]
    cleanup = next(e for e in zone_events if e.kind == "cleanup" and e.at == emptied.at)
    last_flip = [e for e in zone_events if e.kind == "flip" and e.at < cleanup.at][-1]
    assert "STALE" in last_flip.text
    stale_generation = re.search(r"to generation (\d+)", last_flip.text).group(1)
    deleted = re.search(r"generations ([\d, ]+) from", cleanup.text).group(1).split(", ")
    assert stale_generation in deleted  # the clean-up deleted the tree the stale flip made active
    assert any(f.violation is Violation.ACTIVE_TREE_DELETED and f.endpoint == emptied.endpoint
               and f.at == emptied.at for f in result.findings)


def test_until_first_stops_at_the_first_violating_schedule():
    found = search(0, 1000, until="first")
    assert found.first_violation_after == found.schedules
    assert found.worst is not None and found.worst.seed == found.schedules - 1
    assert min(found.first_seed.values()) == found.schedules - 1


# ---- (c) all race fixes: nothing, over 10,000 schedules ----

def test_with_all_race_fixes_10000_schedules_show_no_violation():
    found = search(0, 10_000, RACE_FIXES)
    assert found.schedules == 10_000
    assert found.counts == {v: 0 for v in Violation}
    assert found.worst is None and found.first_violation_after is None


# ---- (d) each fix alone ----

@pytest.mark.parametrize("fix, blocked, still_seen", [
    (Fix.FENCING, ALL_VIOLATIONS, set()),
    (Fix.PROTECT_ACTIVE, {Violation.ACTIVE_TREE_DELETED, Violation.ENDPOINT_EMPTY, Violation.AUTOMATION_STUCK},
     {Violation.GENERATION_WENT_BACK}),
    (Fix.HEAL_ROLLBACK, {Violation.AUTOMATION_STUCK}, {Violation.ENDPOINT_EMPTY}),
], ids=lambda x: x.value if isinstance(x, Fix) else None)
def test_what_each_fix_alone_blocks(fix, blocked, still_seen):
    found = search(0, 2000, {fix})
    assert found.schedules == 2000
    assert {v for v in blocked if found.counts[v]} == set()
    assert {v for v in still_seen if not found.counts[v]} == set()


# ---- (e) the command ----

def test_cli_reports_a_violating_schedule_and_how_to_reproduce_it(capsys):
    assert main(["explore", "--seed", "100", "--schedules", "1"]) == 1
    out = capsys.readouterr().out
    assert "STALE" in out
    assert "reproduce: racelab explore --seed 100" in out
    assert "schedule seed=100" in out


def test_cli_with_all_fixes_finds_nothing(capsys):
    assert main(["explore", "--fix", "all", "--schedules", "50"]) == 0
    out = capsys.readouterr().out
    assert "no violation" in out and "reproduce" not in out


def test_cli_rejects_an_unknown_fix_naming_the_known_ones(capsys):
    assert main(["explore", "--fix", "bogus"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    error = [line for line in captured.err.splitlines() if line.startswith("racelab: error:")]
    assert len(error) == 1
    for known in ("bogus", "fencing", "protect-active", "heal-rollback", "all"):
        assert known in error[0]


@pytest.mark.parametrize("argv", [["explore", "--schedules", "0"], ["explore", "--schedules", "many"],
                                  ["explore", "--stall-probability", "2"], []])
def test_cli_usage_errors_exit_with_code_2(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and "(see --help)" in err  # one line, no usage dump
