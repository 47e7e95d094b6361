"""The live driver of the core Enactor: its effects performed over gRPC.

This is the live twin of services/lab/twin/sim.py's World._perform/_serve: the very
same sans-IO Enactor, but FetchLatestPlan goes to the planner, ReadZone and
SubmitBatch go to the authority's control API, and Sleep is simulated time.
Time handed to the enactor is simulated Unix seconds (the lock's expiry is
written in them), so every enactor of a run agrees on whether a lock expired.

Scenario conditions ("unusually high delays") are applied here, as extra
simulated delay before each control-API call this enactor makes: every page
of a zone read and every batch (ControlPlane.before_call).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Link, Span, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import Counter, Gauge, Histogram

from racelab.v1 import authority_pb2_grpc, planner_pb2_grpc
from services.core import tree
from services.core.enactor import (
    Accepted,
    BatchCommitted,
    BatchFailed,
    Effect,
    Enactor,
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
    Unavailable,
)
from services.core.plans import Plan
from services.core.seeds import derive
from services.core.zone import ZoneSnapshot
from services.runtime.effects import ControlPlane
from services.runtime.events import EventPublisher
from services.runtime.scenario import condition_delay
from services.runtime.service import Context, channel

log = logging.getLogger("racelab.enactor")

PHASES = ("idle", "applying", "cleanup", "backoff")  # racelab_enactor_phase: the core's, and backing off
MIN_IDLE_WALL_SLEEP = 0.02  # wall seconds between polls for a newer plan, however fast time runs

PLAN_GENERATION = Gauge("racelab_enactor_plan_generation", "Generation of the plan being applied (0 when idle)",
                        ["enactor"])
APPLIED_GENERATION = Gauge("racelab_enactor_applied_generation", "Generation this enactor last applied in full",
                           ["enactor"])
PHASE = Gauge("racelab_enactor_phase", "1 for the enactor's current phase, 0 for the others", ["enactor", "phase"])
BATCHES = Counter("racelab_enactor_batches_total", "Change batches submitted, by endpoint, step and outcome",
                  ["enactor", "endpoint", "step", "result"])
LOCK_CONTENTION = Counter("racelab_enactor_lock_contention_total",
                          "Lock found held by another (busy), lost between read and write (lost), or the zone "
                          "changed under every paged read of it (zone_changing)",
                          ["enactor", "outcome"])
BACKOFF = Histogram("racelab_enactor_backoff_seconds", "Back-off sleeps, in simulated seconds", ["enactor"],
                    buckets=(0.25, 0.5, 1, 2, 4, 8, 16, 32, 64))
RUNS = Counter("racelab_enactor_runs_total", "Runs ended, by outcome (partial: some endpoint given up)",
               ["enactor", "outcome"])
ABANDONED = Counter("racelab_enactor_endpoints_abandoned_total",
                    "Endpoints a run gave up on after repeated batch failures", ["enactor", "endpoint"])
STALE_FLIPS = Counter("racelab_enactor_stale_flips_total",
                      "Accepted flips whose generation is lower than the one they replaced", ["enactor", "endpoint"])
BATCH_RESULTS = ("committed", "lock_lost", "rejected", "unavailable")

# Director events: at most one per key per this many simulated seconds.
EVENT_INTERVAL = {"enactor.run": 10.0, "enactor.flip": 30.0, "enactor.cleanup": 30.0, "enactor.stuck": 30.0}

T = TypeVar("T")


class Stopped(Exception):
    pass


class EnactorDriver:
    def __init__(self, ctx: Context, planner: str, authority: str, director: str | None = None,
                 rpc_timeout: float = 5.0):
        self.ctx = ctx
        self.id = ctx.instance
        self.clock = ctx.clock
        self.tracer = ctx.telemetry.tracer
        scenario = ctx.scenario
        self.enactor = Enactor(self.id, scenario.enactor, scenario.fixes,
                               derive(scenario.seed, "enactor", self.id))
        self._delay_rng = derive(scenario.seed, "enactor", self.id, "conditions")
        self.conditions = [c for c in scenario.conditions if c.enactor == self.id]
        self.rpc_timeout = rpc_timeout
        self._planner_channel = channel(planner)
        self._authority_channel = channel(authority)
        self.control = ControlPlane(planner_pb2_grpc.PlannerStub(self._planner_channel),
                                    authority_pb2_grpc.RouteControlStub(self._authority_channel), rpc_timeout, self.id,
                                    before_call=self._condition_delay)
        self.events = EventPublisher(director, self.id, ctx.clock.now)
        self._last_event: dict[tuple[str, str], float] = {}
        self.fetched: Plan | None = None  # the newest plan seen
        self.run_span: Span | None = None
        self.snapshots: dict[str, ZoneSnapshot] = {}  # last read of each zone
        self.phase = "idle"
        for phase in PHASES:
            PHASE.labels(self.id, phase).set(0)
        self._zero_counters(scenario)
        self._gauges(None)

    # ---- the loop ----

    async def run(self) -> None:
        log.info("%s starting (fixes: %s; conditions: %d)", self.id,
                 ", ".join(sorted(f.value for f in self.enactor.fixes)) or "none", len(self.conditions))
        try:
            effect = self.enactor.start(self.clock.unix())
            while not self.ctx.stopping.is_set():
                self._observe(self.enactor.drain_events())
                self._gauges(effect)
                if isinstance(effect, SubmitBatch):
                    effect = await self._batch(effect)
                    continue
                result = await self._perform(effect)
                effect = self.enactor.advance(result, self.clock.unix())
        except Stopped:
            pass
        finally:
            if self.run_span is not None:
                self.run_span.add_event("enactor.stopped")
                self.run_span.set_status(Status(StatusCode.ERROR, "stopped mid-run"))
                self.run_span.end()
                self.run_span = None
            await self.close()

    async def close(self) -> None:
        await self.events.close()
        await self._planner_channel.close()
        await self._authority_channel.close()

    async def _stoppable(self, aw: Awaitable[T]) -> T:
        task = asyncio.ensure_future(aw)
        stop = asyncio.ensure_future(self.ctx.stopping.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not task.done():
            task.cancel()
            raise Stopped()
        return task.result()

    async def _perform(self, effect: Effect) -> object:
        if isinstance(effect, Sleep):
            if effect.reason.backoff:
                BACKOFF.labels(self.id).observe(effect.seconds)
                await self._stoppable(self.clock.sleep(effect.seconds))
            else:
                # Idle polling: simulated seconds, but never a busy loop when time flies.
                deadline = self.clock.now() + effect.seconds
                await self._stoppable(asyncio.sleep(max(MIN_IDLE_WALL_SLEEP, self.clock.wall_until(deadline))))
            return None
        if isinstance(effect, FetchLatestPlan):
            return await self._stoppable(self._fetch())
        if isinstance(effect, ReadZone):
            return await self._stoppable(self._read(effect.zone))
        raise TypeError(f"unknown effect {effect!r}")

    async def _condition_delay(self) -> None:
        extra = condition_delay(self.conditions, self.id, self.clock.now(), self._delay_rng)
        if extra > 0:
            await self._stoppable(self.clock.sleep(extra))

    # ---- effects ----

    async def _fetch(self) -> Plan | Unavailable | None:
        was_off = self.control.automation_off
        plan = await self.control.fetch()
        if self.control.automation_off and not was_off:
            log.info("%s: the planner says DNS automation is disabled; idle", self.id)
        elif was_off and not self.control.automation_off:
            log.info("%s: DNS automation is back", self.id)
        if isinstance(plan, Plan):
            self.fetched = plan
        return plan

    async def _read(self, zone: str) -> ZoneSnapshot | Unavailable:
        snap = await self.control.read(zone)
        if isinstance(snap, ZoneSnapshot):
            self.snapshots[snap.origin] = snap
        return snap

    async def _batch(self, effect: SubmitBatch) -> Effect:
        """One SubmitBatch as an `enactor.batch` span; returns the enactor's next effect."""
        parent = trace.set_span_in_context(self.run_span) if self.run_span is not None else None
        span = self.tracer.start_span("enactor.batch", context=parent, attributes={
            "racelab.enactor.id": self.id, "racelab.zone": effect.zone, "racelab.endpoint": effect.endpoint,
            "racelab.batch.step": effect.step.value, "racelab.plan.generation": effect.generation,
            "racelab.tree.id": self._tree_id(effect), "racelab.batch.changes": len(effect.changes)})
        try:
            with trace.use_span(span, end_on_exit=False):
                result = await self._stoppable(self.control.submit(effect))
            nxt = self.enactor.advance(result, self.clock.unix())
            events = self.enactor.drain_events()
            outcome = self._batch_outcome(result, events)
            span.set_attribute("racelab.batch.result", outcome)
            BATCHES.labels(self.id, effect.endpoint, effect.step.value, outcome).inc()
            for ev in events:
                if isinstance(ev, BatchCommitted):
                    span.set_attribute("racelab.zone.version", ev.zone_version)
                    if ev.replaced_generation is not None:
                        span.set_attribute("racelab.endpoint.generation.replaced", ev.replaced_generation)
                    if ev.deleted_generations:
                        span.set_attribute("racelab.cleanup.deleted_generations", list(ev.deleted_generations))
                elif isinstance(ev, (LockLost, BatchFailed)):
                    span.set_attribute("racelab.lock.attempt", ev.attempt)
                    if isinstance(ev, BatchFailed):
                        span.set_status(Status(StatusCode.ERROR, ev.reason))
                        span.set_attribute("error.type", ",".join(sorted(ev.codes)))
            self._observe(events, effect)
            return nxt
        except Stopped:
            span.set_attribute("racelab.batch.result", "interrupted")
            raise
        finally:
            span.end()

    def _tree_id(self, effect: SubmitBatch) -> str:
        plan = self.fetched
        if plan is not None and plan.generation == effect.generation:
            try:
                return plan.for_endpoint(effect.endpoint).tree_id
            except KeyError:
                pass
        return ""

    @staticmethod
    def _batch_outcome(result: object, events: list[Event]) -> str:
        if isinstance(result, Accepted):
            return "committed"
        if any(isinstance(ev, LockLost) for ev in events):
            return "lock_lost"
        if isinstance(result, Unavailable):
            return "unavailable"
        return "rejected"

    # ---- telemetry ----

    def _zero_counters(self, scenario) -> None:
        """Every series exists from the start at 0: Prometheus's increase() cannot see a series's first sample
        as an increase, so a counter born at 1 would hide the first stale flip or failed batch."""
        for endpoint in scenario.endpoints:
            STALE_FLIPS.labels(self.id, endpoint.name)
            ABANDONED.labels(self.id, endpoint.name)
            for step in Step:
                for result in BATCH_RESULTS:
                    BATCHES.labels(self.id, endpoint.name, step.value, result)
        for outcome in ("busy", "lost", "zone_changing"):
            LOCK_CONTENTION.labels(self.id, outcome)
        BACKOFF.labels(self.id)

    def _gauges(self, effect: Effect | None) -> None:
        if isinstance(effect, Sleep) and effect.reason.backoff:
            phase = "backoff"
        else:
            phase = self.enactor.phase.value if self.enactor.phase.value in PHASES else "idle"
        if phase != self.phase:
            PHASE.labels(self.id, self.phase).set(0)
            self.phase = phase
        PHASE.labels(self.id, phase).set(1)
        # The core keeps the finished plan's number until its next poll; idle means 0 here.
        working = self.enactor.phase in (Phase.APPLYING, Phase.CLEANUP)
        PLAN_GENERATION.labels(self.id).set((self.enactor.plan_generation or 0) if working else 0)
        APPLIED_GENERATION.labels(self.id).set(self.enactor.applied_generation)

    def _publish(self, kind: str, key: str, message: str, force: bool = False, **attributes: object) -> None:
        now = self.clock.now()
        last = self._last_event.get((kind, key))
        if not force and last is not None and now - last < EVENT_INTERVAL.get(kind, 10.0):
            return
        self._last_event[(kind, key)] = now
        self.events.publish(kind, message, attributes)

    def _observe(self, events: list[Event], batch: SubmitBatch | None = None) -> None:
        for ev in events:
            if isinstance(ev, RunStarted):
                self._start_run(ev)
            elif isinstance(ev, LockBusy):
                LOCK_CONTENTION.labels(self.id, "busy" if ev.holder else "zone_changing").inc()
                self._span_event("lock.busy", {"racelab.zone": ev.zone, "racelab.lock.holder": ev.holder,
                                               "racelab.backoff_seconds": ev.backoff_seconds,
                                               "racelab.lock.attempt": ev.attempt})
            elif isinstance(ev, LockLost):
                LOCK_CONTENTION.labels(self.id, "lost").inc()
                self._span_event("lock.lost", {"racelab.zone": ev.zone, "racelab.batch.step": ev.step.value,
                                               "racelab.backoff_seconds": ev.backoff_seconds,
                                               "racelab.lock.attempt": ev.attempt})
            elif isinstance(ev, BatchCommitted):
                self._committed(ev, batch)
            elif isinstance(ev, BatchFailed):
                log.warning("%s: %s batch of generation %d on %s rejected (attempt %d): %s", self.id,
                            ev.step.value, ev.generation, ev.zone, ev.attempt, ev.reason)
            elif isinstance(ev, StalePlanSkipped):
                self._span_event("stale_plan.skipped", {"racelab.endpoint": ev.endpoint,
                                                        "racelab.plan.generation": ev.generation,
                                                        "racelab.endpoint.generation.active": ev.active_generation})
            elif isinstance(ev, RollbackHealed):
                self._span_event("rollback.healed", {"racelab.endpoint": ev.endpoint,
                                                     "racelab.tree.missing": ev.missing_tree or ""})
            elif isinstance(ev, EndpointAbandoned):
                self._abandoned(ev)
            elif isinstance(ev, RunFinished):
                self._end_run("partial" if ev.abandoned else "finished", ev.generation)

    def _span_event(self, name: str, attributes: dict) -> None:
        if self.run_span is not None:
            self.run_span.add_event(name, attributes)

    def _start_run(self, ev: RunStarted) -> None:
        if self.run_span is not None:
            self.run_span.end()
        links = []
        plan = self.fetched
        if plan is not None and plan.generation == ev.generation and plan.trace_parent:
            linked = trace.get_current_span(
                TraceContextTextMapPropagator().extract({"traceparent": plan.trace_parent})).get_span_context()
            if linked.is_valid:
                links.append(Link(linked, {"racelab.link": "plan.published"}))
        self.run_span = self.tracer.start_span("enactor.run", context=None, links=links, attributes={
            "racelab.enactor.id": self.id, "racelab.plan.generation": ev.generation,
            "racelab.plan.previous_generation": ev.previously_applied})
        log.info("%s took generation %d (freshness check passed: %d > %d)", self.id, ev.generation,
                 ev.generation, ev.previously_applied)
        self._publish("enactor.run", "", f"{self.id} took generation {ev.generation} (freshness check passed: "
                      f"{ev.generation} > {ev.previously_applied})",
                      generation=ev.generation, previous_generation=ev.previously_applied)

    def _abandoned(self, ev: EndpointAbandoned) -> None:
        ABANDONED.labels(self.id, ev.endpoint).inc()
        log.error("%s gave up on %s for generation %d: %s", self.id, ev.endpoint, ev.generation, ev.reason)
        if self.run_span is not None:
            self.run_span.add_event("endpoint.abandoned", {"racelab.endpoint": ev.endpoint,
                                                           "racelab.batch.step": ev.step.value,
                                                           "racelab.reason": ev.reason})
            self.run_span.set_status(Status(StatusCode.ERROR, ev.reason))
        self._publish("enactor.stuck", "", f"{self.id} gave up on {ev.endpoint} for generation {ev.generation}: "
                      f"{ev.reason}", generation=ev.generation, endpoint=ev.endpoint)

    def _end_run(self, outcome: str, generation: int) -> None:
        RUNS.labels(self.id, outcome).inc()
        span = self.run_span
        self.run_span = None
        if span is not None:
            span.set_attribute("racelab.run.outcome", outcome)
            span.end()

    def _committed(self, ev: BatchCommitted, batch: SubmitBatch | None) -> None:
        endpoint = batch.endpoint if batch is not None else ev.zone
        if ev.step is Step.FLIP:
            replaced = ev.replaced_generation
            stale = replaced is not None and ev.generation < replaced
            if stale:
                STALE_FLIPS.labels(self.id, endpoint).inc()
                log.warning("%s applied generation %d over %d on %s (STALE)", self.id, ev.generation, replaced,
                            endpoint)
            self._publish("enactor.flip", endpoint,
                          f"{self.id} applied generation {ev.generation} over "
                          f"{'nothing' if replaced is None else replaced} on {endpoint}", force=stale,
                          generation=ev.generation, replaced_generation="" if replaced is None else replaced,
                          endpoint=endpoint, stale=str(stale).lower())
        elif ev.step is Step.CLEANUP and ev.deleted_generations:
            snap = self.snapshots.get(ev.zone)
            active = tree.active_generation(snap, endpoint) if snap is not None else None
            hit_active = active is not None and active in ev.deleted_generations
            self._publish("enactor.cleanup", endpoint,
                          f"{self.id} clean-up deleted generations "
                          f"{', '.join(map(str, ev.deleted_generations))} from {endpoint}", force=hit_active,
                          generation=ev.generation, endpoint=endpoint,
                          deleted_generations=",".join(map(str, ev.deleted_generations)),
                          deleted_active=str(hit_active).lower())
