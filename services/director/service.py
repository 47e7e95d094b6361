"""The Director gRPC service: the clock, the phase, the event log and the operators' actions."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

import grpc
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from racelab.v1 import director_pb2, director_pb2_grpc
from services.core.fixes import Fix
from services.director.events import EventLog
from services.core.operators import Action, ActionError, parse_action, parse_params
from services.director.operators import ActionFailed, Operators
from services.director.phases import PHASE_NAMES, Timeline
from services.runtime.clock import SimClock
from services.runtime.scenario import Scenario

log = logging.getLogger("racelab.director")

SOURCE = "director"


class Metrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self.sim_time = Gauge("racelab_sim_time_seconds", "Simulated seconds since the scenario epoch",
                              registry=registry)
        self.sim_timestamp = Gauge("racelab_sim_timestamp_seconds",
                                   "Simulated time now as a Unix timestamp (the PDT clock of the scenario)",
                                   registry=registry)
        self.sim_speed = Gauge("racelab_sim_speed", "Simulated seconds per wall second right now",
                               registry=registry)
        self.operator_actions = Counter("racelab_operator_actions", "Operator actions performed", ["action"],
                                        registry=registry)
        self.phase = Gauge("racelab_phase_info", "The INCIDENT.md timeline row in effect (1) and the others (0)",
                           ["phase"], registry=registry)
        self.events = Counter("racelab_events", "Notable events recorded, by kind", ["kind"], registry=registry)
        for action in Action:
            self.operator_actions.labels(str(action))


class Director:
    """Everything the director does, apart from listening on a port."""

    def __init__(self, scenario: Scenario, clock: SimClock, *, event_log_path, planner, authority,
                 registry: CollectorRegistry = REGISTRY, wall: Callable[[], float] = time.time, tracer=None,
                 dwfm=None, netmgr=None, nlb=None, workload=None):
        self.scenario = scenario
        self.clock = clock
        self.wall = wall
        self.timeline = Timeline(scenario.epoch)
        self.metrics = Metrics(registry)
        self.metrics.sim_time.set_function(clock.now)
        self.metrics.sim_timestamp.set_function(clock.unix)
        self.metrics.sim_speed.set_function(self.speed)
        self.log = EventLog(event_log_path, clock.now, on_event=lambda e: self.metrics.events.labels(e.kind).inc())
        self.operators = Operators(
            scenario=scenario, sim_now=clock.now, sim_unix=clock.unix, sim_sleep=clock.sleep,
            planner=planner, authority=authority, publish=self.publish,
            count=lambda action: self.metrics.operator_actions.labels(action).inc(), tracer=tracer,
            dwfm=dwfm, netmgr=netmgr, nlb=nlb, workload=workload)
        self._phase: str | None = None

    def speed(self) -> float:
        return self.clock.schedule.rate_at(self.wall() - self.clock.wall_start)

    def publish(self, kind: str, message: str, **attributes: str) -> director_pb2.Event:
        return self.log.record(SOURCE, kind, message, **attributes)

    def phase(self) -> str:
        """The phase now; a change of phase is an event of its own."""
        phase = self.timeline.phase_at(self.clock.now())
        if phase != self._phase:
            for name in PHASE_NAMES:
                self.metrics.phase.labels(name).set(1 if name == phase else 0)
            if self._phase is not None:
                # The row of INCIDENT.md §3 that was in effect at this time in 2025: a reference for the
                # reader, not a claim about this run (whose race may not have emptied anything).
                self.publish("scenario.phase", f"{self.clock.pdt()}: in 2025 at {phase}", phase=phase)
            self._phase = phase
        return phase

    def action_done(self, action: str, at: float) -> bool:
        return any(e.kind == "operator.action" and e.attributes.get("action") == action
                   and e.attributes.get("scheduled_at") == f"{at:g}" and e.attributes.get("result") == "done"
                   for e in self.log.events)

    def status(self) -> director_pb2.GetStatusResponse:
        sim = self.clock.now()
        return director_pb2.GetStatusResponse(
            sim_time_seconds=sim, pdt_time=f"{self.clock.datetime(sim):%Y-%m-%d} {self.clock.pdt(sim)}",
            phase=self.phase(), scenario=self.scenario.name, seed=self.scenario.seed,
            fixes={f.value: f in self.scenario.fixes for f in Fix}, speed=self.speed())

    async def run(self, stopping: asyncio.Event) -> None:
        """The operators' schedule and the phase clock, until `stopping`."""
        schedule = asyncio.ensure_future(self.operators.run_schedule(stopping, self.action_done))
        try:
            while not stopping.is_set():
                self.phase()
                try:
                    await asyncio.wait_for(stopping.wait(), 0.25)
                except asyncio.TimeoutError:
                    pass
        finally:
            schedule.cancel()
            await asyncio.gather(schedule, return_exceptions=True)

    def close(self) -> None:
        self.log.close()


class DirectorServicer(director_pb2_grpc.DirectorServicer):
    def __init__(self, director: Director):
        self.director = director

    async def GetStatus(self, request, context):
        return self.director.status()

    async def PublishEvent(self, request, context):
        if not request.event.kind:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "an event needs a kind")
        self.director.log.append(request.event)
        return director_pb2.PublishEventResponse()

    async def WatchEvents(self, request, context):
        async for event in self.director.log.watch(request.since_sim_time_seconds, request.kinds):
            yield event

    async def PerformAction(self, request, context):
        try:
            action = parse_action(request.action)
            params = parse_params(action, dict(request.params))
        except ActionError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            message = await self.director.operators.perform(action, params)
        except ActionFailed as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        return director_pb2.PerformActionResponse(message=message)
