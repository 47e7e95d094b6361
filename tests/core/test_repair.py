"""The operators' repair as a sans-IO machine: driven here directly over the core's zones, and by
the explorer's world through the 02:25 repair."""

from __future__ import annotations

import random

from services.core import tree
from services.core.effects import Accepted, FetchLatestPlan, ReadZone, Sleep, SleepReason, Step, SubmitBatch
from services.core.enactor import EnactorConfig
from services.core.invariants import Violation, resolves_empty
from services.core.lock import lock_changes, read_lock
from services.core.planner import Planner
from services.core.plans import DUALSTACK_ENDPOINT, LEGACY_ENDPOINT, Endpoint, LoadBalancer
from services.core.repair import LeftAlone, Repair, RepairFailed, Restored
from services.core.zone import BatchRejected, HostedZone
from services.lab.twin.sim import WorldConfig, run_schedule

CONFIG = EnactorConfig(lock_lease_seconds=2.0)
ENDPOINTS = (Endpoint(DUALSTACK_ENDPOINT, dual_stack=True), Endpoint(LEGACY_ENDPOINT))


def plans(n: int):
    planner = Planner(ENDPOINTS, random.Random(3), last_generation=109)
    for i in range(3):
        planner.register(LoadBalancer(f"lb-{i + 1:03d}", f"127.0.1.{i + 1}", f"fd00::1:{i + 1}", f"use1-az{i + 1}"))
    return [planner.next_plan(float(k)) for k in range(n)]


def stuck(plan):
    """Every endpoint's alias and rollback at a tree clean-up deleted: NODATA, as at 02:25."""
    zones = {}
    for ep in plan.endpoints:
        zone = HostedZone(ep.zone)
        zone.apply(tree.install_changes(ep, plan.generation, 5))
        zone.apply(tree.activation_changes(ep.endpoint, ep.dual_stack, tree.tree_root(ep), tree.tree_root(ep)))
        zone.apply(tree.deletion_changes(zone.snapshot, [tree.tree_root(ep)]))
        zones[ep.zone] = zone
    return zones


def drive(repair: Repair, zones, newest, now: float = 100.0, before_write=None):
    """Perform each effect at once on the zones; a Sleep moves time on. Returns the effects seen."""
    seen = []
    effect = repair.start(now)
    while effect is not None:
        seen.append(effect)
        if isinstance(effect, FetchLatestPlan):
            result = newest
        elif isinstance(effect, ReadZone):
            result = zones[effect.zone].snapshot
        elif isinstance(effect, SubmitBatch):
            if before_write:
                before_write(zones[effect.zone])
            try:
                result = Accepted(zones[effect.zone].apply(effect.changes).version)
            except BatchRejected as rejected:
                result = rejected
        else:
            assert isinstance(effect, Sleep)
            now += effect.seconds
            result = None
        effect = repair.advance(result, now)
    return seen


def test_the_repair_installs_the_newest_tree_and_points_alias_and_rollback_at_it():
    old, _, newest = plans(3)
    zones = stuck(old)
    repair = Repair(CONFIG)
    effects = drive(repair, zones, newest)
    assert [type(e) for e in repair.outcomes] == [Restored, Restored]
    assert all(e.installed for e in repair.outcomes)
    for ep in newest.endpoints:
        snap = zones[ep.zone].snapshot
        assert not resolves_empty(snap, ep.endpoint, ep.dual_stack)
        assert tree.active_tree(snap, ep.endpoint) == tree.rollback_tree(snap, ep.endpoint) == tree.tree_root(ep)
        assert read_lock(snap)[1].holder == "operator"
    assert {e.step for e in effects if isinstance(e, SubmitBatch)} == {Step.RESTORE}


def test_the_tooling_as_built_fails_as_the_enactors_do_and_changes_nothing():
    """It assumed a working enactor: the rollback record at the tree that was active, which is gone."""
    old, _, newest = plans(3)
    zones = stuck(old)
    versions = {name: zone.snapshot.version for name, zone in zones.items()}
    repair = Repair(CONFIG, mended=False)
    drive(repair, zones, newest)
    assert [type(e) for e in repair.outcomes] == [RepairFailed, RepairFailed]
    gone = {ep.endpoint: tree.tree_root(ep) for ep in old.endpoints}
    assert all(e.rejected and f"targets {gone[e.endpoint]}" in e.reason and "does not exist" in e.reason
               for e in repair.outcomes)
    assert {name: zone.snapshot.version for name, zone in zones.items()} == versions
    mended = Repair(CONFIG)
    drive(mended, zones, newest)
    assert [type(e) for e in mended.outcomes] == [Restored, Restored]


def test_an_endpoint_that_answers_is_left_alone_and_one_endpoint_can_be_chosen():
    old, _, newest = plans(3)
    zones = stuck(old)
    repair = Repair(CONFIG, only=LEGACY_ENDPOINT)
    drive(repair, zones, newest)
    assert [(type(e), e.endpoint) for e in repair.outcomes] == [(Restored, LEGACY_ENDPOINT)]
    again = Repair(CONFIG)
    drive(again, zones, newest)
    assert {(type(e), e.endpoint) for e in again.outcomes} == {(LeftAlone, LEGACY_ENDPOINT),
                                                              (Restored, DUALSTACK_ENDPOINT)}


def test_an_unexpired_enactor_lock_is_waited_out_then_a_lost_lock_is_read_again():
    old, _, newest = plans(3)
    zones = stuck(old)
    zone = zones[LEGACY_ENDPOINT]
    zone.apply(lock_changes(zone.origin, read_lock(zone.snapshot)[0], "enactor-az2", 100.0, 2.0))
    renewed = []

    def enactor_writes_first(z):
        if not renewed:
            renewed.append(z.version)
            z.apply(lock_changes(z.origin, read_lock(z.snapshot)[0], "enactor-az1", 0.0, 0.0))
    repair = Repair(CONFIG, only=LEGACY_ENDPOINT)
    effects = drive(repair, zones, newest, before_write=enactor_writes_first)
    sleeps = [e.reason for e in effects if isinstance(e, Sleep)]
    assert sleeps == [SleepReason.LOCK_BUSY, SleepReason.LOCK_LOST]
    [restored] = repair.outcomes
    assert isinstance(restored, Restored) and restored.attempts == 3


def test_without_a_plan_the_repair_says_so():
    repair = Repair(CONFIG)
    drive(repair, {}, None)
    assert repair.error == "the planner has no plan yet" and repair.outcomes == []
    failing = Repair(CONFIG, only="nope.example")
    drive(failing, stuck(plans(1)[0]), plans(1)[0])
    assert "has no endpoint 'nope.example'" in failing.error
    assert not any(isinstance(e, RepairFailed) for e in failing.outcomes)


def test_the_explorers_world_runs_the_repair_at_its_time():
    """The small world, stuck in most schedules, with the operators at t=300: a regional name that
    emptied answers again right after, and the repair shows in the timeline."""
    config = WorldConfig(plans=6, repair_at=300.0)
    for seed in range(200):
        r = run_schedule(seed, config)
        legacy = [(a, b) for e, a, b in r.empty_windows if e == LEGACY_ENDPOINT]
        if legacy and legacy[0][0] < 300:
            break
    else:
        raise AssertionError("no schedule emptied the regional name before the repair")
    assert 300 <= legacy[0][1] < 310, legacy
    assert any(e.actor == "operator" and e.kind == "restore" for e in r.timeline)  # its batch, as committed
    assert any(e.actor == "operator" and e.kind == "repair" and e.text.startswith("restored") for e in r.timeline)
    assert Violation.AUTOMATION_STUCK not in r.violations or r.ended_at < 300


def test_a_re_race_after_the_repair_is_found_and_replays_by_its_seed(capsys):
    """oct-2025 as written, through the 02:25 repair: an enactor still holding a plan older than the
    one the operators installed flips the repaired name back, and another's clean-up empties it
    again. The explorer finds such a seed, prints it, and the seed replays the same night."""
    from services.lab.cli import main
    from services.lab.twin import explore
    from services.lab.twin.sim import world_from_scenario
    from services.runtime.scenario import load_scenario
    config = world_from_scenario(load_scenario("oct-2025"), through_repair=True)
    found = explore.search(0, 12, config, frozenset(), until="none", workers=1)
    assert Violation.EMPTIED_AFTER_REPAIR in found.first_seed, "no re-race after the repair in 12 schedules"
    seed = found.first_seed[Violation.EMPTIED_AFTER_REPAIR]
    first, again = run_schedule(seed, config), run_schedule(seed, config)
    after = [f for f in first.findings if f.violation is Violation.EMPTIED_AFTER_REPAIR]
    assert after and all(f.at > config.repair_at for f in after)
    assert [(e.at, e.actor, e.text) for e in first.timeline] == [(e.at, e.actor, e.text) for e in again.timeline]
    assert main(["explore", "--scenario", "oct-2025", "--seed", str(seed), "--schedules", "1"]) == 1
    out = capsys.readouterr().out
    assert "emptied-after-repair" in out and f"--seed {seed} --schedules 1 --scenario oct-2025" in out
