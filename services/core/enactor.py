"""The DNS Enactor as a sans-IO step machine, as it ran in October 2025.

The enactor never does I/O. It yields an *effect* (fetch the newest plan, read
a zone, submit a batch, sleep) and its driver - the gRPC service or the
explorer - performs it and hands back the result with the current time:

    effect = enactor.start(now)
    while True:
        result = perform(effect)
        effect = enactor.advance(result, now)

One run (INCIDENT.md §1):
1. take the newest plan and check ONCE that it is newer than the last applied;
2. for each endpoint in turn: under the zone's lock, install the plan's tree,
   then flip the endpoint's alias to it (and the rollback record to the tree
   that was active) - each a Route 53 batch;
3. clean up trees "significantly older" than the plan just applied.
A lost lock means back off and retry the same batch: forward progress, not
throughput. A batch that keeps failing for other reasons is given up after a
few tries, for that endpoint only: the run goes on to the next one. With every fix off nothing here re-checks freshness after step 1,
and clean-up does not look at what is active.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from typing import Generator, Union

from . import tree
from .effects import (Accepted, Effect, FetchLatestPlan, ReadZone, Sleep, SleepReason, Step, SubmitBatch,
                      Unavailable, ZoneChanging)
from .fixes import Fix
from .lock import LOCK_VALUES, lock_changes, read_lock
from .plans import EndpointPlan, Plan
from .records import Change
from .zone import MAX_BATCH_RECORDS, BatchRejected, ZoneSnapshot, batch_values


class Phase(enum.Enum):
    """What an enactor is doing (gauges, the terminal view)."""

    STARTING = "starting"
    IDLE = "idle"
    APPLYING = "applying"
    CLEANUP = "cleanup"


# ---- events: what happened, for telemetry and the explorer's timeline ----

@dataclass(frozen=True, slots=True)
class RunStarted:
    at: float
    generation: int
    previously_applied: int  # the one freshness check: generation > previously_applied


@dataclass(frozen=True, slots=True)
class LockBusy:
    at: float
    zone: str
    holder: str  # "": no holder; the zone changed under every read of it
    backoff_seconds: float
    attempt: int


@dataclass(frozen=True, slots=True)
class LockLost:
    at: float
    zone: str
    step: Step
    generation: int
    backoff_seconds: float
    attempt: int


@dataclass(frozen=True, slots=True)
class BatchCommitted:
    at: float
    zone: str
    step: Step
    generation: int
    zone_version: int
    replaced_generation: int | None = None  # FLIP: the generation that was active
    deleted_generations: tuple[int, ...] = ()  # CLEANUP: trees removed


@dataclass(frozen=True, slots=True)
class BatchFailed:
    at: float
    zone: str
    step: Step
    generation: int
    reason: str
    codes: frozenset[str]
    attempt: int


@dataclass(frozen=True, slots=True)
class StalePlanSkipped:
    at: float
    endpoint: str
    generation: int
    active_generation: int


@dataclass(frozen=True, slots=True)
class RollbackHealed:
    at: float
    endpoint: str
    missing_tree: str | None


@dataclass(frozen=True, slots=True)
class EndpointAbandoned:
    """A batch for one endpoint failed too often: the run leaves that endpoint and goes on."""
    at: float
    generation: int
    endpoint: str
    step: Step
    reason: str


@dataclass(frozen=True, slots=True)
class RunFinished:
    at: float
    generation: int
    started_at: float
    abandoned: tuple[str, ...] = ()  # endpoints this run gave up on


Event = Union[RunStarted, LockBusy, LockLost, BatchCommitted, BatchFailed,
              StalePlanSkipped, RollbackHealed, EndpointAbandoned, RunFinished]


@dataclass(frozen=True)
class EnactorConfig:
    lock_lease_seconds: float = 10.0
    backoff_base_seconds: float = 0.5
    backoff_multiplier: float = 2.0
    backoff_cap_seconds: float = 60.0
    poll_interval_seconds: float = 1.0
    cleanup_threshold_generations: int = 10  # "significantly older"
    record_ttl_seconds: int = 5
    abandon_after_failures: int = 5  # batch failures (not lock losses) before an endpoint is given up


class _AbandonEndpoint(Exception):
    pass


@dataclass
class Enactor:
    enactor_id: str
    config: EnactorConfig
    fixes: frozenset[Fix]
    rng: random.Random
    applied_generation: int = 0  # in memory: the last plan this enactor applied in full

    # What the enactor is doing, for gauges and the terminal view.
    phase: Phase = field(default=Phase.STARTING, init=False)
    plan_generation: int | None = field(default=None, init=False)
    endpoint: str | None = field(default=None, init=False)
    now: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._events: list[Event] = []
        self._machine = self._run()

    # ---- driving ----

    def start(self, now: float) -> Effect:
        self.now = now
        return next(self._machine)

    def advance(self, result: object, now: float) -> Effect:
        self.now = now
        return self._machine.send(result)

    def drain_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    # ---- the algorithm ----

    def _run(self) -> Generator[Effect, object, None]:
        while True:
            self.phase, self.plan_generation, self.endpoint = Phase.IDLE, None, None
            plan = yield FetchLatestPlan()
            if not isinstance(plan, Plan) or plan.generation <= self.applied_generation:
                yield Sleep(self.config.poll_interval_seconds, SleepReason.NO_NEWER_PLAN)
                continue
            # The one freshness check. From here on the plan is trusted, however
            # long the run takes and however many newer plans appear meanwhile.
            started = self.now
            self.phase, self.plan_generation = Phase.APPLYING, plan.generation
            self._emit(RunStarted(self.now, plan.generation, self.applied_generation))
            abandoned: list[str] = []
            for ep in plan.endpoints:
                self.endpoint = ep.endpoint
                # Each endpoint is its own zone: one that keeps failing is left for the
                # next run, and the others still get the plan.
                if (yield from self._attempt(ep, plan, Step.INSTALL, Step.FLIP)):
                    abandoned.append(ep.endpoint)
            self.applied_generation = plan.generation
            self.phase, self.endpoint = Phase.CLEANUP, None
            for ep in plan.endpoints:
                yield from self._attempt(ep, plan, Step.CLEANUP)
            self._emit(RunFinished(self.now, plan.generation, started, tuple(abandoned)))
            self.phase = Phase.IDLE
            yield Sleep(self.config.poll_interval_seconds, SleepReason.RUN_COMPLETE)

    def _attempt(self, ep: EndpointPlan, plan: Plan, *steps: Step) -> Generator[Effect, object, bool]:
        """Run the steps for one endpoint; True if it had to be abandoned."""
        try:
            for step in steps:
                yield from self._locked_batch(ep, step, plan)
        except _AbandonEndpoint as why:
            self._emit(EndpointAbandoned(self.now, plan.generation, ep.endpoint, why.args[1], why.args[0]))
            return True
        return False

    def _locked_batch(self, ep: EndpointPlan, step: Step, plan: Plan) -> Generator[Effect, object, None]:
        """Read, take the lock, build one batch, submit; back off and retry on contention."""
        attempt = failures = 0
        while True:
            snap = yield ReadZone(ep.zone)
            if isinstance(snap, ZoneChanging):
                # Others kept writing the zone while it was read page by page: contention, as a
                # lost lock is. Back off and read again; never a reason to give the endpoint up.
                attempt += 1
                yield from self._contended(ep.zone, "", attempt, SleepReason.ZONE_CHANGING)
                continue
            if isinstance(snap, Unavailable):
                failures += 1
                yield from self._fail(ep, step, plan, snap.message, frozenset({"UNAVAILABLE"}), failures)
                continue
            assert isinstance(snap, ZoneSnapshot)
            seen, lock = read_lock(snap)
            if lock is not None and lock.blocks(self.enactor_id, self.now):
                attempt += 1
                yield from self._contended(ep.zone, lock.holder, attempt, SleepReason.LOCK_BUSY)
                continue
            built = self._build(snap, ep, step, plan)
            if built is None:
                return  # nothing to write: already done, or skipped by a fix
            changes, replaced, deleted = built
            head = lock_changes(ep.zone, seen, self.enactor_id, self.now, self.config.lock_lease_seconds)
            result = yield SubmitBatch(ep.zone, tuple(head + changes), step, plan.generation, ep.endpoint)
            if isinstance(result, Accepted):
                self._emit(BatchCommitted(self.now, ep.zone, step, plan.generation, result.zone_version,
                                          replaced, deleted))
                return
            if isinstance(result, BatchRejected) and any(result.touches(i) for i in range(len(head))):
                # Someone wrote the zone between our read and our write: we lost the lock.
                attempt += 1
                delay = self._backoff(attempt)
                self._emit(LockLost(self.now, ep.zone, step, plan.generation, delay, attempt))
                yield Sleep(delay, SleepReason.LOCK_LOST)
                continue
            failures += 1
            reason = str(result) if isinstance(result, BatchRejected) else getattr(result, "message", repr(result))
            codes = result.codes if isinstance(result, BatchRejected) else frozenset({"UNAVAILABLE"})
            yield from self._fail(ep, step, plan, reason, frozenset(codes), failures)

    def _contended(self, zone: str, holder: str, attempt: int, why: SleepReason) -> Generator[Effect, object, None]:
        """Someone else is writing the zone (`holder`: the lock's, or "" when only its version moved)."""
        delay = self._backoff(attempt)
        self._emit(LockBusy(self.now, zone, holder, delay, attempt))
        yield Sleep(delay, why, holder)

    def _fail(self, ep: EndpointPlan, step: Step, plan: Plan, reason: str, codes: frozenset[str],
              failures: int) -> Generator[Effect, object, None]:
        self._emit(BatchFailed(self.now, ep.zone, step, plan.generation, reason, codes, failures))
        if failures >= self.config.abandon_after_failures:
            raise _AbandonEndpoint(f"{step.value} on {ep.endpoint} failed {failures} times: {reason}", step)
        yield Sleep(self._backoff(failures), SleepReason.BATCH_FAILED)

    def _build(self, snap: ZoneSnapshot, ep: EndpointPlan, step: Step,
               plan: Plan) -> tuple[list[Change], int | None, tuple[int, ...]] | None:
        if step is Step.CLEANUP:
            return self._cleanup(snap, ep, plan)
        active = tree.active_tree(snap, ep.endpoint)
        active_generation = tree.tree_generation(snap, active)
        if Fix.FENCING in self.fixes and active_generation is not None and active_generation >= plan.generation:
            if step is Step.FLIP:
                self._emit(StalePlanSkipped(self.now, ep.endpoint, plan.generation, active_generation))
            return None
        root = tree.tree_root(ep)
        if step is Step.INSTALL:
            if tree.tree_generation(snap, root) is not None:
                return None  # another enactor installed this plan's tree already
            return tree.install_changes(ep, plan.generation, self.config.record_ttl_seconds), None, ()
        if active == root:
            return None
        # 2025: the rollback record is pointed at whatever the alias points at,
        # trusted to exist. If that tree is gone, Route 53 rejects the batch.
        rollback = active
        if Fix.HEAL_ROLLBACK in self.fixes and active is not None and active_generation is None:
            self._emit(RollbackHealed(self.now, ep.endpoint, active))
            rollback = root
        return tree.activation_changes(ep.endpoint, ep.dual_stack, root, rollback), active_generation, ()

    def _cleanup(self, snap: ZoneSnapshot, ep: EndpointPlan,
                 plan: Plan) -> tuple[list[Change], None, tuple[int, ...]] | None:
        horizon = plan.generation - self.config.cleanup_threshold_generations
        doomed = {root: gen for root, gen in tree.trees_in(snap).items() if gen < horizon}
        if Fix.PROTECT_ACTIVE in self.fixes:
            for keep in (tree.active_tree(snap, ep.endpoint), tree.rollback_tree(snap, ep.endpoint)):
                doomed.pop(keep, None)
        if not doomed:
            return None
        roots = sorted(doomed, key=doomed.__getitem__)
        # Oldest first, as many whole trees as one batch may hold beside the lock's two values
        # (Route 53's quota); the rest wait for the next clean-up. A tree is never split.
        changes: list[Change] = []
        taken: list[str] = []
        for root in roots:
            deletes = tree.deletion_changes(snap, [root])
            if taken and batch_values(changes + deletes) > MAX_BATCH_RECORDS - LOCK_VALUES:
                break
            changes += deletes
            taken.append(root)
        return changes, None, tuple(doomed[r] for r in taken)

    def _backoff(self, attempt: int) -> float:
        """Exponential back-off with equal jitter."""
        c = self.config
        ceiling = min(c.backoff_cap_seconds, c.backoff_base_seconds * c.backoff_multiplier ** (attempt - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def _emit(self, event: Event) -> None:
        self._events.append(event)
