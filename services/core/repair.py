"""The operators' 02:25 repair (INCIDENT.md §3: "all DNS records restored by installing a healthy
tree by hand") as a sans-IO machine, driven like the enactor: it yields the same effects (fetch
the newest plan, read a zone, submit a batch, sleep) and its driver - the director live, the
explorer's world simulated - performs them.

For every endpoint of the newest plan that answers empty, ONE batch built with the core's own
functions, through the same control API the enactors use:

    lock change (DELETE the lock record as read, CREATE the operators')
    the plan's record tree, if the zone does not hold it
    the alias flip, with the rollback record pointed at the NEW tree as well

The rollback record goes to the new tree because the one it would otherwise name - active when the
endpoint emptied - is gone; pointing it there is what every enactor batch failed on. The tooling as
built (`mended=False`) did just that, as an enactor does, because it assumed a working enactor: its
batch is rejected by the same rule, and the operators had to mend it first (INCIDENT.md §2, 01:15). A batch that
loses the lock compare-and-swap is read and built again. An unexpired enactor lock is waited out
for a few rounds, then overridden: a person with a runbook does not wait on a lock forever, and the
compare-and-swap still keeps the zone consistent. An endpoint that still answers is left alone
(restoring it to the plan fetched could only move it backwards).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generator, Union

from . import tree
from .effects import (Accepted, Effect, FetchLatestPlan, ReadZone, Sleep, SleepReason, Step, SubmitBatch,
                      Unavailable)
from .enactor import EnactorConfig
from .invariants import resolves_empty
from .lock import lock_changes, read_lock
from .plans import EndpointPlan, Plan
from .zone import BatchRejected, ZoneSnapshot

HOLDER = "operator"
MAX_ATTEMPTS = 20
LOCK_PATIENCE = 5  # rounds an unexpired enactor lock is waited out before the operators go ahead


@dataclass(frozen=True, slots=True)
class RepairStarted:
    """One endpoint's repair begins (a driver opens its span here)."""
    at: float
    endpoint: str
    zone: str
    generation: int
    tree_id: str


@dataclass(frozen=True, slots=True)
class Restored:
    at: float
    endpoint: str
    generation: int
    zone_version: int
    installed: bool  # the plan's tree had to be installed too
    attempts: int


@dataclass(frozen=True, slots=True)
class LeftAlone:
    """It still answered: nothing to repair."""
    at: float
    endpoint: str
    generation: int
    attempts: int


@dataclass(frozen=True, slots=True)
class RepairFailed:
    at: float
    endpoint: str
    reason: str
    attempts: int
    rejected: bool = False  # the control API refused the batch (not a lock or reachability problem)


RepairEvent = Union[RepairStarted, Restored, LeftAlone, RepairFailed]


class RepairError(Exception):
    """The repair could not start: no plan, the planner unreachable, no such endpoint."""


@dataclass
class Repair:
    """One restore-dns: start(), then advance() with each effect's result until it returns None."""

    config: EnactorConfig  # the lock lease and record TTL the enactors use
    only: str | None = None  # one endpoint; None: every endpoint of the newest plan
    name: str = HOLDER
    mended: bool = True  # False: the tooling as built, rollback to the tree that was active
    now: float = 0.0
    plan: Plan | None = None
    error: str | None = None  # set when the repair could not start at all
    _events: list[RepairEvent] = field(default_factory=list)  # not yet drained
    _log: list[RepairEvent] = field(default_factory=list)  # every event, for `outcomes`

    def __post_init__(self) -> None:
        self._machine = self._run()

    def start(self, now: float) -> Effect | None:
        self.now = now
        return next(self._machine, None)

    def advance(self, result: object, now: float) -> Effect | None:
        self.now = now
        try:
            return self._machine.send(result)
        except StopIteration:
            return None

    def drain_events(self) -> list[RepairEvent]:
        events, self._events = self._events, []
        return events

    @property
    def outcomes(self) -> list[RepairEvent]:
        return [e for e in self._log if not isinstance(e, RepairStarted)]

    # ---- the runbook ----

    def _run(self) -> Generator[Effect, object, None]:
        plan = yield FetchLatestPlan()
        if isinstance(plan, Unavailable):
            self.error = f"no plan from the planner: {plan.message}"
            return
        if not isinstance(plan, Plan):
            self.error = "the planner has no plan yet"
            return
        self.plan = plan
        endpoints = [ep for ep in plan.endpoints if not self.only or ep.endpoint == self.only]
        if not endpoints:
            self.error = f"generation {plan.generation} has no endpoint {self.only!r}"
            return
        for ep in endpoints:
            yield from self._restore(ep, plan.generation)

    def _restore(self, ep: EndpointPlan, generation: int) -> Generator[Effect, object, None]:
        self._emit(RepairStarted(self.now, ep.endpoint, ep.zone, generation, ep.tree_id))
        lease, root = self.config.lock_lease_seconds, tree.tree_root(ep)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            snap = yield ReadZone(ep.zone)
            if isinstance(snap, Unavailable):
                self._emit(RepairFailed(self.now, ep.endpoint, f"reading {ep.zone}: {snap.message}", attempt))
                return
            assert isinstance(snap, ZoneSnapshot)
            if not resolves_empty(snap, ep.endpoint, ep.dual_stack):
                self._emit(LeftAlone(self.now, ep.endpoint, generation, attempt))
                return
            seen, lock = read_lock(snap)
            if lock is not None and lock.blocks(HOLDER, self.now) and attempt <= LOCK_PATIENCE:
                yield Sleep(min(lock.expires_at - self.now, 2 * lease) + 0.001, SleepReason.LOCK_BUSY, lock.holder)
                continue
            head = lock_changes(ep.zone, seen, HOLDER, self.now, lease)
            install = tree.tree_generation(snap, root) is None
            changes = list(head)
            if install:
                changes += tree.install_changes(ep, generation, self.config.record_ttl_seconds)
            rollback = root if self.mended else tree.active_tree(snap, ep.endpoint)
            changes += tree.activation_changes(ep.endpoint, ep.dual_stack, root, rollback)
            result = yield SubmitBatch(ep.zone, tuple(changes), Step.RESTORE, generation, ep.endpoint)
            if isinstance(result, Accepted):
                self._emit(Restored(self.now, ep.endpoint, generation, result.zone_version, install, attempt))
                return
            if isinstance(result, BatchRejected) and any(result.touches(i) for i in range(len(head))):
                yield Sleep(min(0.02 * attempt, 0.2), SleepReason.LOCK_LOST)  # someone wrote first: read again
                continue
            reason = str(result) if isinstance(result, BatchRejected) else getattr(result, "message", repr(result))
            self._emit(RepairFailed(self.now, ep.endpoint, reason, attempt, rejected=isinstance(result, BatchRejected)))
            return
        self._emit(RepairFailed(self.now, ep.endpoint, f"lost the lock on {ep.zone} {MAX_ATTEMPTS} times",
                                MAX_ATTEMPTS))

    def _emit(self, event: RepairEvent) -> None:
        self._events.append(event)
        self._log.append(event)
