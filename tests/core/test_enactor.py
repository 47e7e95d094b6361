"""The sans-IO Enactor, driven by hand against real zones, a list of plans and a fake clock."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, replace
from typing import Callable

import pytest

from services.core import tree
from services.core.enactor import (BatchCommitted, BatchFailed, Accepted, Effect, Enactor, EnactorConfig,
                                   FetchLatestPlan, LockBusy, LockLost, ReadZone, RollbackHealed, EndpointAbandoned,
                                   RunFinished, RunStarted, Sleep, StalePlanSkipped, Step, SubmitBatch, Unavailable)
from services.core.effects import SleepReason, ZoneChanging
from services.core.fixes import Fix
from services.core.lock import Lock, lock_changes, lock_name, read_lock
from services.core.planner import Planner
from services.core.plans import DUALSTACK_ENDPOINT, LEGACY_ENDPOINT, Endpoint, LoadBalancer, Plan
from services.core.records import Action, RecordSet, RRType, create, delete
from services.core.resolve import resolve_in
from services.core.zone import MAX_BATCH_RECORDS, BatchRejected, HostedZone, ZoneSnapshot, batch_values

DUAL = Endpoint(DUALSTACK_ENDPOINT, dual_stack=True)
LEGACY = Endpoint(LEGACY_ENDPOINT)
CONFIG = EnactorConfig(lock_lease_seconds=10.0, backoff_base_seconds=0.5, backoff_multiplier=2.0,
                       backoff_cap_seconds=4.0, poll_interval_seconds=1.0, cleanup_threshold_generations=2,
                       record_ttl_seconds=5, abandon_after_failures=5)
LOCKS_EXPIRE = CONFIG.lock_lease_seconds + 1  # wait this long and every lock taken so far has expired
END_OF_RUN = {SleepReason.RUN_COMPLETE, SleepReason.NO_NEWER_PLAN}


# ---- the driver ----

@dataclass(frozen=True)
class Submitted:
    enactor: str
    batch: SubmitBatch
    read: ZoneSnapshot  # what the enactor last read of the zone before building the batch
    at: float
    result: object


class World:
    """Answers hand-driven enactors' effects: plans from a list, zones from real HostedZones,
    batches through HostedZone.apply, sleeps by moving a fake clock."""

    def __init__(self, endpoints=(DUAL, LEGACY), config: EnactorConfig = CONFIG):
        self.now = 1000.0
        self.config = config
        self.zones = {ep.zone: HostedZone(ep.zone) for ep in endpoints}
        self.planner = Planner(endpoints, random.Random(7))
        for i in (1, 2):
            self.planner.register(LoadBalancer(f"lb-{i}", f"10.0.0.{i}", f"fd00::{i}", f"use1-az{i}"))
        self.plans: list[Plan] = []
        self.submitted: list[Submitted] = []
        self.sleeps: list[tuple[str, Sleep]] = []
        self.fetches: Counter[str] = Counter()
        self.control_api_down = False
        self.zone_changing_reads = 0  # this many reads next answer ZoneChanging (batches landed between pages)
        self.before_submit: Callable[[str, SubmitBatch], None] | None = None
        self._last_read: dict[tuple[str, str], ZoneSnapshot] = {}
        self._pending: dict[str, Effect] = {}

    # -- setting the scene --

    def publish(self, count: int = 1) -> Plan:
        for _ in range(count):
            self.plans.append(self.planner.next_plan(self.now))
        return self.plans[-1]

    def bootstrap(self, generations: int) -> None:
        """Publish plans 1..n and apply each directly (no lock), as a history of earlier runs."""
        for _ in range(generations):
            plan = self.publish()
            for ep in plan.endpoints:
                zone = self.zones[ep.zone]
                rollback = tree.active_tree(zone.snapshot, ep.endpoint)
                zone.apply(tree.install_changes(ep, plan.generation, self.config.record_ttl_seconds))
                zone.apply(tree.activation_changes(ep.endpoint, ep.dual_stack, tree.tree_root(ep), rollback))

    def enactor(self, name: str, fixes=frozenset(), seed: int = 1) -> Enactor:
        applied = self.plans[-1].generation if self.plans else 0
        return Enactor(name, self.config, frozenset(fixes), random.Random(seed), applied_generation=applied)

    # -- driving --

    def run(self, e: Enactor, until: Callable[[Effect], bool] | None = None) -> Effect:
        """Drive `e` until `until(effect)` holds or its run ends; the effect is kept for the next call."""
        effect = self._pending.pop(e.enactor_id, None)
        if effect is None:
            effect = e.start(self.now)
        elif isinstance(effect, Sleep) and effect.reason in END_OF_RUN:
            effect = e.advance(self.perform(e, effect), self.now)
        for _ in range(10_000):
            if (until is not None and until(effect)) or (isinstance(effect, Sleep) and effect.reason in END_OF_RUN):
                self._pending[e.enactor_id] = effect
                return effect
            effect = e.advance(self.perform(e, effect), self.now)
        raise AssertionError(f"{e.enactor_id} never finished its run")

    def perform(self, e: Enactor, effect: Effect) -> object:
        who = e.enactor_id
        if isinstance(effect, FetchLatestPlan):
            self.fetches[who] += 1
            return self.plans[-1] if self.plans else None
        if isinstance(effect, ReadZone):
            if self.control_api_down:
                return Unavailable("control API unreachable")
            if self.zone_changing_reads:
                self.zone_changing_reads -= 1
                return ZoneChanging(f"{effect.zone} changed under every listing")
            snap = self._last_read[who, effect.zone] = self.zones[effect.zone].snapshot
            return snap
        if isinstance(effect, SubmitBatch):
            if self.before_submit is not None:
                self.before_submit(who, effect)
            try:
                result: object = Accepted(self.zones[effect.zone].apply(effect.changes).version)
            except BatchRejected as rejected:
                result = rejected
            self.submitted.append(Submitted(who, effect, self._last_read[who, effect.zone], self.now, result))
            return result
        assert isinstance(effect, Sleep), effect
        self.sleeps.append((who, effect))
        self.now += effect.seconds
        return None

    # -- looking --

    def snapshot(self, endpoint: Endpoint) -> ZoneSnapshot:
        return self.zones[endpoint.zone].snapshot

    def active_generation(self, endpoint: Endpoint) -> int | None:
        return tree.active_generation(self.snapshot(endpoint), endpoint.name)

    def tree_generations(self, endpoint: Endpoint) -> list[int]:
        return sorted(tree.trees_in(self.snapshot(endpoint)).values())

    def resolves_empty(self, endpoint: Endpoint) -> bool:
        return resolve_in(self.snapshot(endpoint), endpoint.name, RRType.A).always_empty

    def batches(self, who: str | None = None, step: Step | None = None, zone: str | None = None) -> list[Submitted]:
        return [s for s in self.submitted if (who is None or s.enactor == who)
                and (step is None or s.batch.step is step) and (zone is None or s.batch.zone == zone)]


def about_to_read(e: Enactor, endpoint: Endpoint, phase: str = "applying") -> Callable[[Effect], bool]:
    return lambda effect: isinstance(effect, ReadZone) and effect.zone == endpoint.zone and e.phase.value == phase


def of_type(events: list, kind: type) -> list:
    return [ev for ev in events if isinstance(ev, kind)]


def generation_of(world: World, generation: int) -> Plan:
    return next(p for p in world.plans if p.generation == generation)


def root_of(world: World, generation: int, endpoint: Endpoint) -> str:
    return tree.tree_root(generation_of(world, generation).for_endpoint(endpoint.name))


# ---- one ordinary run ----

def test_a_fresh_plan_is_installed_and_flipped_everywhere_then_old_trees_are_cleaned_up():
    world = World()
    world.bootstrap(4)
    e = world.enactor("e1")
    world.publish()  # generation 5
    assert world.run(e) == Sleep(CONFIG.poll_interval_seconds, SleepReason.RUN_COMPLETE)
    events = e.drain_events()

    assert [(s.batch.step, s.batch.zone) for s in world.submitted] == [
        (Step.INSTALL, DUAL.zone), (Step.FLIP, DUAL.zone), (Step.INSTALL, LEGACY.zone), (Step.FLIP, LEGACY.zone),
        (Step.CLEANUP, DUAL.zone), (Step.CLEANUP, LEGACY.zone)]
    assert all(isinstance(s.result, Accepted) and s.batch.generation == 5 for s in world.submitted)
    assert events[0] == RunStarted(events[0].at, 5, 4)
    assert isinstance(events[-1], RunFinished) and events[-1].generation == 5
    flips = [ev for ev in of_type(events, BatchCommitted) if ev.step is Step.FLIP]
    assert [ev.replaced_generation for ev in flips] == [4, 4]
    cleanups = [ev for ev in of_type(events, BatchCommitted) if ev.step is Step.CLEANUP]
    assert [ev.deleted_generations for ev in cleanups] == [(1, 2), (1, 2)]  # older than 5 - threshold 2
    for endpoint in (DUAL, LEGACY):
        assert world.active_generation(endpoint) == 5
        assert world.tree_generations(endpoint) == [3, 4, 5]
        assert tree.rollback_tree(world.snapshot(endpoint), endpoint.name) == root_of(world, 4, endpoint)
        addresses = {r.addresses(RRType.A) for _, r in resolve_in(world.snapshot(endpoint), endpoint.name,
                                                                  RRType.A).choices}
        assert addresses == {("10.0.0.1",), ("10.0.0.2",)}
    assert e.applied_generation == 5 and world.fetches["e1"] == 1


def test_a_clean_up_deletes_as_many_whole_trees_as_route53s_quota_allows_oldest_first():
    """At us-east-1's size a tree holds 1 + 2 x 300 values (dual stack, 300 LBs): two of them are
    over the 1,000-value quota, so each clean-up batch deletes one whole tree, the oldest, and the
    next run takes the next; no batch is ever over the quota."""
    world = World(endpoints=(DUAL,))
    for i in range(3, 301):
        world.planner.register(LoadBalancer(f"lb-{i}", f"10.0.{i // 250}.{i % 250}", f"fd00::{i:x}",
                                            f"use1-az{1 + i % 3}"))
    world.bootstrap(4)
    e = world.enactor("e1")
    world.publish()  # generation 5: generations 1 and 2 are older than the threshold
    world.run(e)
    cleanups = [ev for ev in of_type(e.drain_events(), BatchCommitted) if ev.step is Step.CLEANUP]
    assert [ev.deleted_generations for ev in cleanups] == [(1,)]
    assert world.tree_generations(DUAL) == [2, 3, 4, 5]
    world.publish()  # generation 6: 2 and 3 are due; one fits
    world.run(e)
    assert world.tree_generations(DUAL) == [3, 4, 5, 6]
    assert all(batch_values(s.batch.changes) <= MAX_BATCH_RECORDS for s in world.submitted)
    assert all(isinstance(s.result, Accepted) for s in world.submitted)


def test_with_no_newer_plan_the_enactor_writes_nothing():
    world = World()
    world.bootstrap(2)
    e = world.enactor("e1")
    for _ in range(3):
        assert world.run(e) == Sleep(CONFIG.poll_interval_seconds, SleepReason.NO_NEWER_PLAN)
    assert world.submitted == [] and e.drain_events() == []
    assert world.fetches["e1"] == 3


def test_with_no_plan_at_all_the_enactor_waits():
    world = World()
    e = world.enactor("e1")
    assert world.run(e).reason is SleepReason.NO_NEWER_PLAN
    assert world.submitted == []


def test_a_plan_already_installed_by_another_enactor_is_not_installed_twice():
    world = World()
    world.bootstrap(1)
    e1, e2 = world.enactor("e1"), world.enactor("e2")
    world.publish()
    world.run(e1)
    world.now += LOCKS_EXPIRE
    world.run(e2)
    assert world.batches("e2", Step.INSTALL) == [] and world.batches("e2", Step.FLIP) == []
    assert e2.applied_generation == 2


# ---- the lock at the head of every batch ----

def test_every_batch_begins_with_the_lock_changes():
    world = World()
    world.bootstrap(3)
    e = world.enactor("e1")
    world.publish()
    world.run(e)
    assert len(world.submitted) == 6
    for s in world.submitted:
        seen, _ = read_lock(s.read)
        head = lock_changes(s.batch.zone, seen, "e1", s.at, CONFIG.lock_lease_seconds)
        assert list(s.batch.changes[:len(head)]) == head
        assert [c.action for c in head] == ([Action.DELETE, Action.CREATE] if seen else [Action.CREATE])
    first_on_each_zone = [world.batches(zone=ep.zone)[0] for ep in (DUAL, LEGACY)]
    assert all(read_lock(s.read)[0] is None for s in first_on_each_zone)  # bootstrap left no lock
    later = [s for s in world.submitted if s not in first_on_each_zone]
    assert later and all(s.batch.changes[0].action is Action.DELETE for s in later)


def test_lock_changes_delete_exactly_what_was_seen_and_create_holder_expiry_and_the_next_serial():
    seen = RecordSet(lock_name("z.example"), RRType.TXT, 0, ("other 1234 41",))
    first = RecordSet("_lock.z.example", RRType.TXT, 0, ("e1 1111 1",))
    assert lock_changes("z.example", None, "e1", 1100.2, 10.0) == [create(first)]
    renewed = RecordSet("_lock.z.example", RRType.TXT, 0, ("e1 1111 42",))
    assert lock_changes("z.example", seen, "e1", 1100.2, 10.0) == [delete(seen), create(renewed)]
    assert Lock.parse(renewed) == Lock("e1", 1111, 42)
    assert Lock.parse(RecordSet("_lock.z.example", RRType.TXT, 0, ("e1 1111",))) == Lock("e1", 1111, 0)


def test_a_holder_renewing_within_the_same_second_writes_a_different_value():
    """Same holder, same expiry: the serial still tells the two writes apart, so a batch built on a read
    from before the renewal fails (the ABA the explorer found with every fix on, seed 17989)."""
    zone = HostedZone("z.example")
    zone.apply(lock_changes("z.example", None, "e3", 3.3, 1.0))
    read_before = read_lock(zone.snapshot)[0]
    zone.apply(lock_changes("z.example", read_before, "e3", 3.9, 1.0))  # renewed: expiry 5 again
    assert read_lock(zone.snapshot)[0].values != read_before.values
    with pytest.raises(BatchRejected):
        zone.apply(lock_changes("z.example", read_before, "e1", 5.7, 1.0))


@pytest.mark.parametrize("value", ["", "holder", "holder 12 extra", "holder abc", "holder -5", "holder 1.5",
                                   "holder 12abc", "12", "holder 12 3 4", "holder 12 -3"])
def test_a_malformed_lock_value_parses_to_none(value):
    assert Lock.parse(RecordSet(lock_name("z.example"), RRType.TXT, 0, (value,))) is None


def test_a_lock_record_without_values_parses_to_none():
    assert Lock.parse(RecordSet(lock_name("z.example"), RRType.TXT, 0, ())) is None


def test_a_lock_with_a_superscript_digit_parses_to_none():
    assert Lock.parse(RecordSet(lock_name("z.example"), RRType.TXT, 0, ("holder ²",))) is None


@pytest.mark.parametrize("lock, who, now, blocks", [
    (Lock("other", 100), "me", 99.0, True),
    (Lock("other", 100), "me", 100.0, False),  # expired at its expiry
    (Lock("me", 100), "me", 50.0, False),  # one's own lock never blocks
])
def test_a_lock_blocks_only_others_until_it_expires(lock, who, now, blocks):
    assert lock.blocks(who, now) is blocks


def test_a_lock_held_by_another_makes_the_enactor_back_off_until_it_expires():
    world = World(endpoints=(LEGACY,))
    world.bootstrap(1)
    zone = world.zones[LEGACY.zone]
    expiry = world.now + 40
    others_lock = lock_changes(LEGACY.zone, None, "other", world.now, 40)[-1].record_set
    zone.apply([create(others_lock)])
    e = world.enactor("e1")
    world.publish()
    world.run(e)
    busy = of_type(e.drain_events(), LockBusy)
    assert len(busy) >= 6
    assert [ev.attempt for ev in busy] == list(range(1, len(busy) + 1))
    assert all(ev.holder == "other" and ev.zone == LEGACY.zone for ev in busy)
    for ev in busy:
        ceiling = min(CONFIG.backoff_cap_seconds, CONFIG.backoff_base_seconds * CONFIG.backoff_multiplier ** (ev.attempt - 1))
        assert ceiling / 2 <= ev.backoff_seconds <= ceiling
    delays = [ev.backoff_seconds for ev in busy]
    assert delays[:4] == sorted(delays[:4])  # growing while below the cap
    assert delays[3] > delays[0] * 2
    assert max(delays) <= CONFIG.backoff_cap_seconds
    sleeps = [s for who, s in world.sleeps if s.reason is SleepReason.LOCK_BUSY and s.detail == "other"]
    assert [s.seconds for s in sleeps] == delays
    first = world.submitted[0]
    assert first.at >= expiry  # nothing written while the other's lock was live
    assert others_lock.values == (f"other {math.ceil(expiry)} 1",)
    assert first.batch.changes[:2] == (delete(others_lock), create(RecordSet(
        lock_name(LEGACY.zone), RRType.TXT, 0, (f"e1 {math.ceil(first.at + CONFIG.lock_lease_seconds)} 2",))))
    assert isinstance(first.result, Accepted)


def test_a_zone_that_changes_under_every_read_is_contention_backed_off_never_given_up():
    """A paged read overtaken by batches again and again: the enactor backs off as after a lost lock,
    longer each time, and goes on once a read holds still; failures would give the endpoint up after 5."""
    world = World(endpoints=(LEGACY,))
    world.bootstrap(1)
    e = world.enactor("e1")
    plan = world.publish()
    world.zone_changing_reads = CONFIG.abandon_after_failures + 3
    world.run(e)
    events = e.drain_events()
    busy = of_type(events, LockBusy)
    assert [ev.attempt for ev in busy] == list(range(1, CONFIG.abandon_after_failures + 4))
    assert all(ev.holder == "" and ev.zone == LEGACY.zone for ev in busy)
    assert [s.reason for _, s in world.sleeps if s.reason.backoff] == [SleepReason.ZONE_CHANGING] * len(busy)
    assert [s.seconds for _, s in world.sleeps if s.reason.backoff] == [ev.backoff_seconds for ev in busy]
    assert not of_type(events, EndpointAbandoned) and not of_type(events, BatchFailed)
    assert world.active_generation(LEGACY) == plan.generation


def test_a_write_between_read_and_submit_loses_the_lock_and_the_same_batch_is_retried():
    world = World(endpoints=(LEGACY,))
    world.bootstrap(1)
    zone = world.zones[LEGACY.zone]

    def intruder_takes_the_lock_once(who: str, batch: SubmitBatch) -> None:
        world.before_submit = None
        seen, _ = read_lock(zone.snapshot)
        zone.apply(lock_changes(LEGACY.zone, seen, "intruder", world.now - 100, 1))  # already expired

    world.before_submit = intruder_takes_the_lock_once
    e = world.enactor("e1")
    world.publish()
    world.run(e)
    events = e.drain_events()
    lost = of_type(events, LockLost)
    assert [(ev.step, ev.attempt, ev.generation) for ev in lost] == [(Step.INSTALL, 1, 2)]
    assert of_type(events, BatchFailed) == []
    assert ("e1", Sleep(lost[0].backoff_seconds, SleepReason.LOCK_LOST)) in world.sleeps
    rejected, retried = world.batches(step=Step.INSTALL)
    assert isinstance(rejected.result, BatchRejected) and rejected.result.touches(0)
    assert rejected.result.codes == {"ALREADY_EXISTS"}  # the lock it meant to create was there by then
    assert isinstance(retried.result, Accepted)
    assert retried.batch.changes[2:] == rejected.batch.changes[1:]  # the same body...
    assert retried.batch.changes[0].record_set.values[0].startswith("intruder ")  # ...after the intruder's lock
    assert world.active_generation(LEGACY) == 2


# ---- freshness: checked once per run ----

def test_the_freshness_check_happens_once_so_a_run_finishes_its_old_plan():
    world = World()
    world.bootstrap(1)
    e = world.enactor("e1")
    world.publish()  # generation 2
    world.run(e, until=about_to_read(e, LEGACY))  # done with the dual-stack endpoint
    world.publish()  # generation 3 appears mid-run
    world.run(e)
    assert world.fetches["e1"] == 1
    assert {s.batch.generation for s in world.submitted} == {2}
    assert world.active_generation(LEGACY) == 2 and e.applied_generation == 2
    world.run(e)  # the next run takes 3
    assert world.active_generation(LEGACY) == 3 and world.active_generation(DUAL) == 3


def test_a_slow_enactor_flips_an_endpoint_back_to_an_older_generation():
    world = World()
    world.bootstrap(1)
    slow, fast = world.enactor("slow"), world.enactor("fast")
    world.publish()  # 2
    world.run(slow, until=about_to_read(slow, LEGACY))
    world.publish()  # 3
    world.run(fast)
    assert world.active_generation(LEGACY) == 3
    world.now += LOCKS_EXPIRE
    world.run(slow)
    stale = [ev for ev in of_type(slow.drain_events(), BatchCommitted) if ev.step is Step.FLIP and ev.zone == LEGACY.zone]
    assert [(ev.generation, ev.replaced_generation) for ev in stale] == [(2, 3)]
    assert world.active_generation(LEGACY) == 2 and world.active_generation(DUAL) == 3


# ---- the race of INCIDENT.md §2, by hand ----

def play_the_race(fixes=frozenset()) -> tuple[World, Enactor, Enactor]:
    """E1 takes plan 2 and stalls before the legacy endpoint; E2 takes plan 5, flips everything and,
    just after E1's stale flip of the legacy endpoint, cleans up trees older than 5 - 2."""
    world = World()
    world.bootstrap(1)
    e1, e2 = world.enactor("e1", fixes), world.enactor("e2", fixes)
    world.publish()  # 2
    world.run(e1, until=about_to_read(e1, LEGACY))
    world.publish(3)  # 3, 4, 5
    world.run(e2, until=about_to_read(e2, DUAL, phase="cleanup"))
    world.now += LOCKS_EXPIRE
    world.run(e1)
    world.now += LOCKS_EXPIRE
    world.run(e2)
    return world, e1, e2


def test_the_race_empties_the_legacy_endpoint():
    world, e1, e2 = play_the_race()
    e1_flips = [ev for ev in of_type(e1.drain_events(), BatchCommitted) if ev.step is Step.FLIP]
    assert [(ev.zone, ev.generation, ev.replaced_generation) for ev in e1_flips] == \
        [(DUAL.zone, 2, 1), (LEGACY.zone, 2, 5)]
    cleanups = [ev for ev in of_type(e2.drain_events(), BatchCommitted) if ev.step is Step.CLEANUP]
    assert [(ev.zone, ev.deleted_generations) for ev in cleanups] == [(DUAL.zone, (1, 2)), (LEGACY.zone, (1, 2))]
    assert tree.active_tree(world.snapshot(LEGACY), LEGACY.name) == root_of(world, 2, LEGACY)
    assert world.active_generation(LEGACY) is None  # the alias points at a deleted tree
    assert world.resolves_empty(LEGACY)
    assert world.active_generation(DUAL) == 5 and not world.resolves_empty(DUAL)


def test_with_fencing_the_stale_flip_is_skipped_and_nothing_goes_backwards():
    world, e1, _ = play_the_race({Fix.FENCING})
    events = e1.drain_events()
    assert [(ev.endpoint, ev.generation, ev.active_generation) for ev in of_type(events, StalePlanSkipped)] == \
        [(LEGACY.name, 2, 5)]
    assert world.batches("e1", zone=LEGACY.zone) == []  # neither install nor flip of the stale plan
    for s in world.batches(step=Step.FLIP):
        before = tree.active_generation(s.read, s.batch.endpoint)
        assert before is None or s.batch.generation > before
    assert world.active_generation(LEGACY) == 5 and not world.resolves_empty(LEGACY)


def test_with_protect_active_the_race_goes_backwards_but_never_empties():
    world, _, e2 = play_the_race({Fix.PROTECT_ACTIVE})
    cleanups = [ev for ev in of_type(e2.drain_events(), BatchCommitted) if ev.step is Step.CLEANUP]
    # dual-stack: tree 2 is now its rollback; legacy: tree 2 is active. Both are kept.
    assert [(ev.zone, ev.deleted_generations) for ev in cleanups] == [(DUAL.zone, (1,)), (LEGACY.zone, (1,))]
    assert world.active_generation(LEGACY) == 2  # stale, but answering
    assert not world.resolves_empty(LEGACY)


@pytest.mark.parametrize("fixes, deleted, empty", [
    (frozenset(), (1, 2), True),
    (frozenset({Fix.PROTECT_ACTIVE}), None, False),  # active (1) and rollback (2) are kept: nothing to delete
])
def test_protect_active_keeps_the_active_and_rollback_trees_in_cleanup(fixes, deleted, empty):
    world = World(endpoints=(LEGACY,))
    world.bootstrap(4)
    e = world.enactor("e1", fixes)
    world.publish()  # 5: clean-up removes trees older than 3
    world.run(e, until=lambda effect: e.phase.value == "cleanup")
    # Between the flip and the clean-up, someone points the endpoint at tree 1 and the rollback at tree 2.
    world.zones[LEGACY.zone].apply(tree.activation_changes(
        LEGACY.name, False, root_of(world, 1, LEGACY), root_of(world, 2, LEGACY)))
    world.run(e)
    cleanups = [ev for ev in of_type(e.drain_events(), BatchCommitted) if ev.step is Step.CLEANUP]
    assert [ev.deleted_generations for ev in cleanups] == ([deleted] if deleted else [])
    assert world.resolves_empty(LEGACY) is empty
    if not empty:
        assert world.tree_generations(LEGACY) == [1, 2, 3, 4, 5]


# ---- stuck: the rollback record pointed at a tree that is gone ----

def break_the_endpoint(world: World, endpoint: Endpoint) -> str:
    """Delete the active tree of an endpoint (Route 53 allows it): its alias now points at nothing."""
    zone = world.zones[endpoint.zone]
    missing = tree.active_tree(zone.snapshot, endpoint.name)
    zone.apply(tree.deletion_changes(zone.snapshot, [missing]))
    assert world.resolves_empty(endpoint)
    return missing


def assert_flip_rejected_for_the_rollback(s: Submitted, endpoint: Endpoint, missing: str) -> None:
    """Rejected because the rollback record was pointed at the missing (still active) tree."""
    assert isinstance(s.result, BatchRejected)
    assert s.result.codes == {"ALIAS_TARGET_MISSING"}
    assert s.result.errors
    for err in s.result.errors:
        rejected = s.batch.changes[err.index].record_set
        assert (rejected.name, rejected.alias_target) == (tree.rollback_name(endpoint.name), missing)


@pytest.mark.parametrize("abandon_after", [1, 3, 5])
def test_with_the_active_tree_deleted_every_flip_fails_and_the_endpoint_is_given_up(abandon_after):
    world = World(endpoints=(LEGACY,), config=replace(CONFIG, abandon_after_failures=abandon_after))
    world.bootstrap(1)
    missing = break_the_endpoint(world, LEGACY)
    e = world.enactor("e1")
    world.publish()
    assert world.run(e).reason is SleepReason.RUN_COMPLETE  # the run goes on past the endpoint it gave up
    events = e.drain_events()
    flips = world.batches(step=Step.FLIP)
    assert len(flips) == abandon_after
    for s in flips:
        assert_flip_rejected_for_the_rollback(s, LEGACY, missing)
    failed = of_type(events, BatchFailed)
    assert [(ev.step, ev.attempt, ev.codes) for ev in failed] == \
        [(Step.FLIP, n, frozenset({"ALIAS_TARGET_MISSING"})) for n in range(1, abandon_after + 1)]
    assert [(ev.endpoint, ev.step) for ev in of_type(events, EndpointAbandoned)] == [(LEGACY.name, Step.FLIP)]
    assert [ev.abandoned for ev in of_type(events, RunFinished)] == [(LEGACY.name,)]
    assert world.resolves_empty(LEGACY)


def test_the_stuck_state_persists_across_runs_and_enactors():
    world = World(endpoints=(LEGACY,))
    world.bootstrap(1)
    missing = break_the_endpoint(world, LEGACY)
    e1, e2 = world.enactor("e1"), world.enactor("e2")
    world.publish()
    world.run(e1)
    world.publish()
    world.now += LOCKS_EXPIRE
    world.run(e1)  # the next run, a newer plan: same failure
    world.now += LOCKS_EXPIRE
    world.run(e2)  # another enactor: same failure
    runs = [ev for ev in e1.drain_events() + e2.drain_events() if isinstance(ev, (RunStarted, EndpointAbandoned))]
    assert [(type(ev), ev.generation) for ev in runs] == [
        (RunStarted, 2), (EndpointAbandoned, 2), (RunStarted, 3), (EndpointAbandoned, 3),
        (RunStarted, 3), (EndpointAbandoned, 3)]
    flips = world.batches(step=Step.FLIP)
    assert len(flips) == 3 * CONFIG.abandon_after_failures
    for s in flips:
        assert_flip_rejected_for_the_rollback(s, LEGACY, missing)
    assert world.resolves_empty(LEGACY)


def test_the_race_leaves_the_automation_stuck():
    world, _, e2 = play_the_race()
    e2.drain_events()
    world.publish()  # 6
    world.run(e2)
    assert [ev.endpoint for ev in of_type(e2.drain_events(), EndpointAbandoned)] == [LEGACY.name]
    assert world.resolves_empty(LEGACY)


def test_with_heal_rollback_the_flip_succeeds_and_reports_the_heal():
    world = World(endpoints=(LEGACY,))
    world.bootstrap(1)
    missing = break_the_endpoint(world, LEGACY)
    e = world.enactor("e1", {Fix.HEAL_ROLLBACK})
    world.publish()
    assert world.run(e).reason is SleepReason.RUN_COMPLETE
    events = e.drain_events()
    assert [(ev.endpoint, ev.missing_tree) for ev in of_type(events, RollbackHealed)] == [(LEGACY.name, missing)]
    assert of_type(events, BatchFailed) == []
    assert world.active_generation(LEGACY) == 2 and not world.resolves_empty(LEGACY)
    assert tree.rollback_tree(world.snapshot(LEGACY), LEGACY.name) == root_of(world, 2, LEGACY)


def test_heal_rollback_unsticks_the_automation_after_the_race():
    world, _, e2 = play_the_race({Fix.HEAL_ROLLBACK})
    assert world.resolves_empty(LEGACY)  # heal-rollback alone does not prevent the race...
    e2.drain_events()
    world.publish()
    world.run(e2)
    events = e2.drain_events()
    assert of_type(events, EndpointAbandoned) == [] and len(of_type(events, RollbackHealed)) == 1
    assert world.active_generation(LEGACY) == 6 and not world.resolves_empty(LEGACY)  # ...but ends it


def test_an_unreachable_control_api_counts_as_failures_and_each_step_is_given_up():
    world = World(endpoints=(LEGACY,))
    world.bootstrap(1)
    world.control_api_down = True
    e = world.enactor("e1")
    world.publish()
    assert world.run(e).reason is SleepReason.RUN_COMPLETE
    events = e.drain_events()
    failed = of_type(events, BatchFailed)
    assert [ev.codes for ev in failed] == [frozenset({"UNAVAILABLE"})] * (2 * CONFIG.abandon_after_failures)
    assert [ev.step for ev in of_type(events, EndpointAbandoned)] == [Step.INSTALL, Step.CLEANUP]
    assert world.submitted == []
