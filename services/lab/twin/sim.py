"""A deterministic world for the core objects: virtual time, seeded timing.

The very Planner, Enactor and HostedZone the services run are driven here by a
discrete-event loop. Every source of nondeterminism - network latency, stalls,
back-off jitter, plan timing - comes from one seed, so a schedule is replayed
exactly by its seed. Nothing here decides the outcome: it only sets the
conditions (who is slow, when plans arrive) and watches the invariants.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field, replace
from typing import Callable

from services.core import tree
from services.core.enactor import (
    Accepted,
    BatchCommitted,
    BatchFailed,
    Enactor,
    EnactorConfig,
    EndpointAbandoned,
    Event,
    FetchLatestPlan,
    LockBusy,
    LockLost,
    Phase,
    ReadZone,
    RollbackHealed,
    RunFinished,
    RunStarted,
    Sleep,
    StalePlanSkipped,
    Step,
    SubmitBatch,
)
from services.core.effects import ZoneChanging
from services.core.fixes import Fix
from services.core.invariants import (
    Emptying,
    Finding,
    InvariantChecker,
    Violation,
    stuck_endpoints,
)
from services.core.operators import repair_time
from services.core.planner import Planner
from services.core.plans import (
    DUALSTACK_ENDPOINT,
    LEGACY_ENDPOINT,
    Endpoint,
    LoadBalancer,
    Plan,
    lb_address,
)
from services.core.records import RRType, normalize_name
from services.core.repair import (
    LeftAlone,
    Repair,
    RepairEvent,
    RepairFailed,
    RepairStarted,
    Restored,
)
from services.core.seeds import derive
from services.core.zone import BatchRejected, HostedZone, ZoneSnapshot
from services.runtime.clock import Schedule
from services.runtime.wire import DONE, NEXT_PAGE, ZoneKeptChanging, ZoneListing, pages_of
from services.runtime.scenario import Condition, Scenario, condition_delay


@dataclass(frozen=True)
class WorldConfig:
    endpoints: tuple[Endpoint, ...] = (Endpoint(DUALSTACK_ENDPOINT, dual_stack=True), Endpoint(LEGACY_ENDPOINT))
    enactors: int = 3
    load_balancers: int = 2
    start_generation: int = 110  # "all three enactors are on plan 110"
    plans: int = 6  # new plans the planner publishes during a schedule
    plan_interval_seconds: tuple[float, float] = (0.5, 2.0)
    settle_seconds: float = 60.0  # after the last plan: time to converge
    # Latency to the control API and plan store, per call: base one-way delay
    # drawn per enactor per schedule, plus exponential jitter. With a `clock`, these are wall
    # seconds, scaled by the live clock's rate at the moment (a live call that takes 5 ms of wall
    # time takes 0.2 simulated seconds at 40x and 0.5 at 100x).
    latency_seconds: tuple[float, float] = (0.005, 0.2)
    clock: Schedule | None = None
    # "Unusually high delays": the chance that one enactor is stalled for a
    # while (slow host, slow network path) - every call it makes in the window
    # takes that much longer.
    stall_probability: float = 0.5
    stall_seconds: tuple[float, float] = (1.0, 20.0)
    delays: tuple[Condition, ...] = ()  # the scenario's conditions, as the live enactor driver applies them
    # Route 53 takes longer over bigger batches: server-side time per change.
    change_seconds: float = 0.0
    shared_load_balancers: int = 0  # as FleetSettings: LBs beyond this serve only the legacy name
    enactor: EnactorConfig = EnactorConfig(lock_lease_seconds=1.0, backoff_base_seconds=0.2,
                                           backoff_cap_seconds=8.0, poll_interval_seconds=0.5,
                                           cleanup_threshold_generations=2)
    # The operators' restore-dns (services/core/repair.py) at this time; None: no operators. The
    # planner keeps publishing after it, so enactors holding older plans can race again.
    repair_at: float | None = None


@dataclass(frozen=True)
class Entry:
    """One line of the timeline."""

    at: float
    actor: str
    kind: str
    text: str
    zone: str = ""


@dataclass
class ScheduleResult:
    seed: int
    fixes: frozenset[Fix]
    findings: list[Finding]
    timeline: list[Entry]
    empty_windows: list[tuple[str, float, float]]
    latest_generation: int
    batches_committed: int = 0
    batches_failed: int = 0
    events: int = 0
    conditions: dict[str, str] = field(default_factory=dict)
    ended_at: float = 0.0
    # Each emptying with the stale flip behind it, as a live run's summary.json lists them.
    emptyings: list[Emptying] = field(default_factory=list)

    @property
    def violations(self) -> set[Violation]:
        return {f.violation for f in self.findings}


class World:
    def __init__(self, config: WorldConfig, seed: int, fixes: frozenset[Fix] = frozenset()):
        self.config = config
        self.seed = seed
        self.fixes = fixes
        self.rng = derive(seed, "world")  # what the world decides: plan times, latency, stalls
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self.zones = {ep.zone: HostedZone(ep.zone) for ep in config.endpoints}
        self._zone_busy = {ep.zone: 0.0 for ep in config.endpoints}  # when Route 53 is done with its batches
        self.dual_stack = {ep.zone: ep.dual_stack for ep in config.endpoints}
        # The live planner's and enactors' own paths of the seed tree: the same tree ids and the same
        # enactor draws as a live run of this seed.
        self.planner = Planner(config.endpoints, derive(seed, "planner", str(config.start_generation - 1)),
                               last_generation=config.start_generation - 1)
        for i in range(config.load_balancers):
            regional_only = config.shared_load_balancers and i >= config.shared_load_balancers
            self.planner.register(LoadBalancer(f"lb-{i + 1:03d}", lb_address("127.0.1.", i + 1), f"fd00::1:{i + 1}",
                                               f"use1-az{i % 3 + 1}",
                                               endpoints=(LEGACY_ENDPOINT,) if regional_only else ()))
        self.plans: list[Plan] = []
        self.checker = InvariantChecker()
        self.findings: list[Finding] = []
        self.emptyings: list[Emptying] = []
        self._stale_flips: dict[str, tuple[float, int, int]] = {}  # endpoint -> last stale flip: at, generation, over
        self.timeline: list[Entry] = []
        self.committed = self.failed = self.events = 0
        self.conditions: dict[str, str] = {}
        self.enactors = [Enactor(f"enactor-az{i + 1}", config.enactor, fixes,
                                 derive(seed, "enactor", f"enactor-az{i + 1}"))
                         for i in range(config.enactors)]
        self._latency = {e.enactor_id: self.rng.uniform(*config.latency_seconds) for e in self.enactors}
        # The live driver's stream for its conditions' delays: the same path of the seed tree.
        self._condition_rng = {e.enactor_id: derive(seed, "enactor", e.enactor_id, "conditions")
                               for e in self.enactors}
        self._stalls: dict[str, tuple[float, float, float]] = {}
        self.operators: Repair | None = None
        self.repaired_at: float | None = None  # the repair's first committed batch
        self.operators_done = False
        if config.repair_at is not None:
            self.operators = Repair(config.enactor)
            self._latency[self.operators.name] = self.rng.uniform(*config.latency_seconds)
        self._bootstrap()

    # ---- setup ----

    def _bootstrap(self) -> None:
        """Every endpoint already on the start generation, as applied by every enactor."""
        plan = self._publish(quiet=True)
        for ep in plan.endpoints:
            zone = self.zones[ep.zone]
            zone.apply(tree.install_changes(ep, plan.generation, self.config.enactor.record_ttl_seconds))
            zone.apply(tree.activation_changes(ep.endpoint, ep.dual_stack, tree.tree_root(ep), None))
            self.checker.observe(ep.endpoint, ep.dual_stack, zone.snapshot, zone.snapshot, 0.0)
        for e in self.enactors:
            e.applied_generation = plan.generation
        c = self.config
        t = 0.0
        for _ in range(c.plans):
            t += self.rng.uniform(*c.plan_interval_seconds)
            self._at(t, self._publish)
        self.horizon = t + c.settle_seconds
        if self.rng.random() < c.stall_probability:
            victim = self.rng.choice(self.enactors).enactor_id
            start = self.rng.uniform(0, t)
            extra = self.rng.uniform(*c.stall_seconds)
            self._stalls[victim] = (start, start + extra, extra)
            self.conditions["stall"] = f"{victim} stalled {extra:.1f}s from t={start:.2f}s"
        for e in self.enactors:
            self.conditions[f"latency {e.enactor_id}"] = f"{self._latency[e.enactor_id] * 1000:.0f}ms"
            self._at(self.rng.uniform(0, c.enactor.poll_interval_seconds), self._starter(e))
        if self.operators is not None:
            self.conditions["repair"] = f"restore-dns at t={c.repair_at:.0f}s"
            self.horizon = max(self.horizon, c.repair_at + c.settle_seconds)
            self._at(c.repair_at, self._starter(self.operators))

    def _publish(self, quiet: bool = False) -> Plan:
        plan = self.planner.next_plan(self.now)
        self.plans.append(plan)
        if not quiet:
            self._log("planner", "plan", f"published generation {plan.generation}")
        return plan

    # ---- the event loop ----

    def _at(self, when: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (when, self._seq, fn))

    def run(self) -> ScheduleResult:
        while self._queue and not self._converged():
            when, _, fn = heapq.heappop(self._queue)
            if when > self.horizon:
                break
            self.now = when
            fn()
            self.events += 1
        self.now = self.horizon
        self.checker.close(self.now)
        latest = self.plans[-1].generation
        snaps = {zone: z.snapshot for zone, z in self.zones.items()}
        for endpoint, generation in stuck_endpoints(snaps, latest).items():
            state = "resolves to nothing" if generation is None else f"is on generation {generation}"
            finding = Finding(Violation.AUTOMATION_STUCK, self.now, endpoint,
                              f"{self.config.settle_seconds:.0f}s after the last plan ({latest}), "
                              f"the endpoint {state}")
            self.findings.append(finding)
            self._log("checker", "violation", f"VIOLATION {finding.violation.value}: {endpoint}: {finding.detail}",
                      endpoint)
        return ScheduleResult(self.seed, self.fixes, self.findings, self.timeline, self.checker.empty_windows,
                              latest, self.committed, self.failed, self.events, self.conditions, self.now,
                              self.emptyings)

    def _converged(self) -> bool:
        """Nothing more can happen: every plan is out, applied everywhere, cleaned up (and the
        operators, if any, have acted)."""
        if len(self.plans) <= self.config.plans:
            return False
        if self.operators is not None and not self.operators_done:
            return False
        latest = self.plans[-1].generation
        return (all(e.applied_generation == latest and e.phase is Phase.IDLE for e in self.enactors)
                and all(tree.active_generation(z.snapshot, z.origin) == latest for z in self.zones.values()))

    def _delay(self, who: str) -> float:
        d = self._latency[who] * (0.5 + self.rng.expovariate(2.0))
        if self.config.clock is not None:
            d *= self.config.clock.rate_at(self.config.clock.wall_at(self.now))
        stall = self._stalls.get(who)
        if stall and stall[0] <= self.now < stall[1]:
            d += stall[2]
        return d

    def _condition_delay(self, who: str) -> float:
        """The scenario's conditions on `who`, before a zone read or a batch (services/enactor/driver.py)."""
        rng = self._condition_rng.get(who)
        return condition_delay(self.config.delays, who, self.now, rng) if rng else 0.0

    def _starter(self, e: Machine) -> Callable[[], None]:
        return lambda: self._perform(e, e.start(self.now))

    def _resume(self, e: Machine, result: object) -> Callable[[], None]:
        return lambda: self._perform(e, e.advance(result, self.now))

    def _perform(self, e: Machine, effect: object) -> None:
        who = _name(e)
        for event in e.drain_events():
            self._narrate(who, event)
        if effect is None:  # the operators' repair is done
            self.operators_done = True
            return
        if isinstance(effect, Sleep):
            self._at(self.now + effect.seconds, self._resume(e, None))
            return
        if isinstance(effect, ReadZone):
            self._read_page(e, who, effect.zone, ZoneListing(effect.zone))
            return
        there = self.now + self._delay(who)
        if isinstance(effect, SubmitBatch):
            there += self._condition_delay(who)
        if isinstance(effect, SubmitBatch):
            # Route 53 works through a zone's batches one at a time, a big one longer than a small one
            # (services/authority/state.py): a batch waits for those ahead of it, then is checked.
            there = self._zone_busy[effect.zone] = (max(there, self._zone_busy[effect.zone])
                                                   + len(effect.changes) * self.config.change_seconds)
        back = self._delay(who)

        def serve() -> None:
            result = self._serve(who, effect)
            self._at(self.now + back, self._resume(e, result))
        self._at(there, serve)

    def _read_page(self, e: Machine, who: str, zone: str, listing: ZoneListing, page: int = 0) -> None:
        """One ListResourceRecordSets call of a paged read, the listing's rule deciding what comes next
        (services/runtime/wire.ZoneListing, as the live enactor reads): a page at another version than
        the first starts it again, and a zone that never holds still reads as ZoneChanging. Each page
        is a call, with its latency and the scenario's conditions, as in the live enactor."""
        there = self.now + self._delay(who) + self._condition_delay(who)

        def serve() -> None:
            snap = self.zones[zone].snapshot
            back = self.now + self._delay(who)
            last = page + 1 >= pages_of(len(snap.records))
            try:
                # Records are not copied page by page: a listing that ends whole is this very snapshot.
                then = listing.accept(snap.version, (), truncated=not last)
            except ZoneKeptChanging as exc:
                self._at(back, self._resume(e, ZoneChanging(str(exc))))
                return
            if then == DONE:
                self._at(back, self._resume(e, snap))
            else:
                following = page + 1 if then == NEXT_PAGE else 0
                self._at(back, lambda: self._read_page(e, who, zone, listing, following))
        self._at(there, serve)

    def _serve(self, writer: str, effect: object) -> object:
        if isinstance(effect, FetchLatestPlan):
            return self.plans[-1] if self.plans else None
        assert isinstance(effect, SubmitBatch), effect
        zone = self.zones[effect.zone]
        before = zone.snapshot
        try:
            after = zone.apply(effect.changes)
        except BatchRejected as rejected:
            self.failed += 1
            return rejected
        self.committed += 1
        self._log_commit(writer, effect, before)
        if effect.step is Step.FLIP:
            was = tree.active_generation(before, effect.endpoint)
            if was is not None and effect.generation < was:
                self._stale_flips[effect.endpoint] = (self.now, effect.generation, was)
        if effect.step is Step.RESTORE and self.repaired_at is None:
            self.repaired_at = self.now
        written = frozenset(normalize_name(c.record_set.name) for c in effect.changes)
        findings = self.checker.observe(effect.endpoint, self.dual_stack[effect.zone], before, after, self.now,
                                        written)
        if self.repaired_at is not None:  # raced again after the operators' repair
            findings += [Finding(Violation.EMPTIED_AFTER_REPAIR, f.at, f.endpoint,
                                 f"empty again {f.at - self.repaired_at:.0f}s after the operators' repair")
                         for f in findings if f.violation is Violation.ENDPOINT_EMPTY]
        for finding in findings:
            if finding.violation is Violation.ENDPOINT_EMPTY:
                at, stale, over = self._stale_flips.get(finding.endpoint, (None, None, None))
                self.emptyings.append(Emptying(finding.endpoint, self.now, stale, over, at, effect.generation))
            self.findings.append(finding)
            self._log("checker", "violation", f"VIOLATION {finding.violation.value}: {finding.endpoint}: "
                      f"{finding.detail}", effect.zone)
        return Accepted(after.version)

    # ---- the timeline ----

    def _log(self, actor: str, kind: str, text: str, zone: str = "") -> None:
        self.timeline.append(Entry(self.now, actor, kind, text, zone))

    def _log_commit(self, who: str, effect: SubmitBatch, before: ZoneSnapshot) -> None:
        """Narrate a batch at the moment the zone commits it: that is the order that matters."""
        text = _committed_text(effect, before, self.plans[-1].generation)
        self._log(who, effect.step.value, text, effect.zone)

    def _narrate(self, who: str, ev: Event | RepairEvent) -> None:
        if isinstance(ev, RepairStarted):
            self._log(who, "repair", f"restore-dns: {ev.endpoint} to generation {ev.generation} by hand", ev.zone)
        elif isinstance(ev, Restored):
            self._log(who, "repair", f"restored {ev.endpoint} (attempt {ev.attempts})", ev.endpoint)
        elif isinstance(ev, LeftAlone):
            self._log(who, "repair", f"{ev.endpoint} still answers: left alone", ev.endpoint)
        elif isinstance(ev, RepairFailed):
            self._log(who, "repair", f"could not restore {ev.endpoint}: {ev.reason}", ev.endpoint)
        elif isinstance(ev, RunStarted):
            self._log(who, "run", f"took generation {ev.generation}: freshness check passed "
                                  f"({ev.generation} > {ev.previously_applied} applied); not checked again this run")
        elif isinstance(ev, LockBusy):
            why = f"lock on {ev.zone} held by {ev.holder}" if ev.holder else f"{ev.zone} changed under every read"
            self._log(who, "lock", f"{why}; backing off {ev.backoff_seconds:.2f}s (attempt {ev.attempt})", ev.zone)
        elif isinstance(ev, LockLost):
            self._log(who, "lock", f"lost the lock on {ev.zone} during {ev.step.value} of generation "
                                   f"{ev.generation}; backing off {ev.backoff_seconds:.2f}s (attempt {ev.attempt})",
                      ev.zone)
        elif isinstance(ev, BatchCommitted):
            pass  # logged when the zone committed it (_log_commit), not when the enactor heard back
        elif isinstance(ev, BatchFailed):
            self._log(who, "failed", f"{ev.step.value} batch of generation {ev.generation} on {ev.zone} "
                                     f"REJECTED: {ev.reason}", ev.zone)
        elif isinstance(ev, StalePlanSkipped):
            self._log(who, "fix", f"fencing: generation {ev.generation} is not newer than active "
                                  f"{ev.active_generation} on {ev.endpoint}; skipped", ev.endpoint)
        elif isinstance(ev, RollbackHealed):
            self._log(who, "fix", f"rollback target of {ev.endpoint} is missing; healed", ev.endpoint)
        elif isinstance(ev, EndpointAbandoned):
            self._log(who, "run", f"gave up on {ev.endpoint} for generation {ev.generation}: {ev.reason}",
                      ev.endpoint)
        elif isinstance(ev, RunFinished):
            left = f"; gave up on {', '.join(ev.abandoned)}" if ev.abandoned else ""
            self._log(who, "run", f"finished generation {ev.generation} ({ev.at - ev.started_at:.2f}s{left})")


Machine = Enactor | Repair  # what the world drives: start(), advance(), drain_events()


def _name(machine: Machine) -> str:
    return machine.enactor_id if isinstance(machine, Enactor) else machine.name


def _committed_text(effect: SubmitBatch, before: ZoneSnapshot, newest: int) -> str:
    if effect.step is Step.RESTORE:
        return f"operators flipped {effect.zone} to generation {effect.generation}, rollback to it too"
    if effect.step is Step.INSTALL:
        return f"installed the tree of generation {effect.generation} in {effect.zone}"
    if effect.step is Step.CLEANUP:
        roots = {c.record_set.name for c in effect.changes if c.record_set.rtype is RRType.TXT}
        gens = sorted(g for r in roots if (g := tree.tree_generation(before, r)) is not None)
        return (f"clean-up after generation {effect.generation} deleted the trees of generations "
                f"{', '.join(map(str, gens))} from {effect.zone}")
    was = tree.active_generation(before, effect.endpoint)
    stale = ""
    if was is not None and effect.generation < was:
        stale = f"  <- STALE: {was - effect.generation} generations back; newest is {newest}"
    was_text = "nothing" if was is None else str(was)
    return f"flipped {effect.zone} to generation {effect.generation} (was {was_text}){stale}"


AFTER_REPAIR = 1800.0  # simulated seconds the planner goes on publishing after the repair


# Wall seconds per control-API call in a live run on 2 cores, per enactor: chosen so the twin's
# enactor runs take as long as the live ones in the race (live, traces of seeds 1-2: a run of
# enactor-az2/az3 took 1.40 s wall at 40x, 56 s simulated; the twin: 55-60 s).
LIVE_CALL_SECONDS = (0.00125, 0.0075)


def world_from_scenario(scenario: Scenario, latency_seconds: tuple[float, float] = LIVE_CALL_SECONDS,
                        settle_seconds: float = 60.0, through_repair: bool = False) -> WorldConfig:
    """The simulator's twin of a live scenario's race phase: same endpoints, fleet, enactor
    settings, plan churn, Route 53 cost and conditions; latency stands in for the real network,
    in wall seconds on the scenario's clock, so a call takes as many simulated seconds as live.
    `through_repair`: the operators' restore-dns at its scenario time too, and plans for half an
    hour after it (a re-race after the repair shows as emptied-after-repair)."""
    conditions_end = max((c.end for c in scenario.conditions), default=0.0)
    repair_at = repair_time(scenario.operators) if through_repair else None
    if repair_at is not None:
        conditions_end = max(conditions_end, repair_at + AFTER_REPAIR)
    interval = scenario.planner.plan_interval_seconds
    return WorldConfig(
        endpoints=scenario.endpoints, load_balancers=scenario.fleet.load_balancers,
        shared_load_balancers=scenario.fleet.shared_load_balancers,
        start_generation=scenario.planner.start_generation,
        plans=max(1, int(conditions_end / interval)), plan_interval_seconds=(interval * 0.8, interval * 1.2),
        settle_seconds=settle_seconds, latency_seconds=latency_seconds, stall_probability=0.0,
        delays=scenario.conditions,
        change_seconds=scenario.dns.change_seconds_per_change, enactor=scenario.enactor, repair_at=repair_at,
        clock=scenario.schedule)


def run_schedule(seed: int, config: WorldConfig = WorldConfig(),
                 fixes: frozenset[Fix] = frozenset()) -> ScheduleResult:
    return World(config, seed, fixes).run()


def with_overrides(config: WorldConfig, **enactor_overrides: object) -> WorldConfig:
    return replace(config, enactor=replace(config.enactor, **enactor_overrides))


__all__ = ["Emptying", "world_from_scenario", "World", "WorldConfig", "ScheduleResult", "Entry", "run_schedule", "with_overrides"]
