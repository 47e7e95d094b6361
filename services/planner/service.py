"""The DNS Planner as a gRPC service around the core Planner.

Plans come out every `planner.plan_interval_seconds` of simulated time (and no
more often than every MIN_PLAN_WALL_SECONDS of wall time), and at
once when the fleet changes (a registration, a change of health or capacity, an
operator's shift of traffic or added capacity). Each plan is appended to the
durable log (fsync'd) before any client can see it; on restart the history is
reloaded and generations continue where they stopped.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import replace

import grpc
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import Counter, Gauge

from racelab.v1 import planner_pb2, planner_pb2_grpc
from services.core.planner import EndpointUnserved, Planner, UnknownLoadBalancer
from services.core.plans import LoadBalancer, Plan
from services.core.records import normalize_name
from services.core.seeds import derive
from services.planner.store import AutomationFile, FleetFile, PlanLog
from services.runtime import wire
from services.runtime.events import EventPublisher
from services.runtime.service import Context

log = logging.getLogger("racelab.planner")

GENERATION = Gauge("racelab_planner_generation", "Generation of the newest plan published")
PUBLISHED = Counter("racelab_plans_published_total", "Plans published")
LOAD_BALANCERS = Gauge("racelab_planner_load_balancers", "Registered load balancers by health", ["state"])
AUTOMATION = Gauge("racelab_planner_automation_enabled", "1 while DNS automation is on (plans published)")
AUTOMATION_DISABLED = "DNS automation disabled"

DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000
COALESCE_WALL_SECONDS = 0.05  # fleet changes this close together make one plan
# Plans come at most this often in wall time. At the build-up's speed (40x) the simulated interval is
# longer anyway; in the fast-forwarded hours (300-700x) it would be a plan every 10-25 ms, faster than
# the enactors' own gRPC round trips: every enactor would lag many generations behind and the race would
# happen again for that reason alone, after the operators' repair.
MIN_PLAN_WALL_SECONDS = 0.2
EVENT_EVERY = 10  # plan.published: every 10th plan only


class InvalidRequest(ValueError):
    pass


def _valid_ip(text: str, version: int, what: str) -> str:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidRequest(f"{what}: not an IP address: {text!r}") from None
    if addr.version != version:
        raise InvalidRequest(f"{what}: not an IPv{version} address: {text!r}")
    return str(addr)


def lb_from_wire(msg: planner_pb2.LoadBalancer) -> LoadBalancer:
    if not msg.lb_id.strip():
        raise InvalidRequest("load_balancer.lb_id is empty")
    if not msg.ipv4:
        raise InvalidRequest("load_balancer.ipv4 is empty")
    ipv4 = _valid_ip(msg.ipv4, 4, "load_balancer.ipv4")
    # Dual-stack endpoints write an AAAA leaf for every LB: an LB without one
    # would make every plan's tree unwritable.
    if not msg.ipv6:
        raise InvalidRequest("load_balancer.ipv6 is empty (dual-stack endpoints need one)")
    ipv6 = _valid_ip(msg.ipv6, 6, "load_balancer.ipv6")
    return LoadBalancer(msg.lb_id.strip(), ipv4, ipv6, msg.availability_zone, msg.capacity or 100, True,
                        tuple(normalize_name(e) for e in msg.endpoints if e.strip()))


class PlannerService(planner_pb2_grpc.PlannerServicer):
    def __init__(self, ctx: Context, state_dir: str):
        self.ctx = ctx
        self.clock = ctx.clock
        self.tracer = ctx.telemetry.tracer
        self.log = PlanLog(state_dir)
        self.fleet_file = FleetFile(state_dir)
        self.automation = AutomationFile(state_dir)
        self.automation_enabled = self.automation.enabled()
        AUTOMATION.set(int(self.automation_enabled))
        self.plans: list[Plan] = self.log.load()
        self.by_generation = {p.generation: p for p in self.plans}
        last = self.plans[-1].generation if self.plans else ctx.scenario.planner.start_generation - 1
        # A fresh stream of tree ids after every restart, reproducible from the seed.
        self.core = Planner(ctx.scenario.endpoints, derive(ctx.scenario.seed, "planner", str(last)),
                            last_generation=last)
        lbs, drained = self.fleet_file.load()
        for lb in lbs:
            self.core.register(lb)
        self.core.drained_zones |= drained
        self.requested: list[str] = []  # AddCapacity: LBs asked for, not yet registered
        self.events = EventPublisher(getattr(ctx.args, "director", None), ctx.instance, ctx.clock.now)
        self.dirty = asyncio.Event()
        self.new_plan = asyncio.Condition()
        self._publish_lock = asyncio.Lock()
        self._said_unserved = ""
        self._update_gauges()
        if self.plans:
            GENERATION.set(self.plans[-1].generation)
            log.info("loaded %d plans from %s; continuing after generation %d",
                     len(self.plans), self.log.path, self.plans[-1].generation)

    # ---- publishing ----

    async def run(self) -> None:
        """Publish on the interval and on fleet changes until stopping."""
        interval = self.ctx.scenario.planner.plan_interval_seconds
        stopping = self.ctx.stopping
        if self.core.fleet:
            await self.publish("restart")
        while not stopping.is_set():
            waits = [asyncio.ensure_future(self._paced(interval)), asyncio.ensure_future(self.dirty.wait()),
                     asyncio.ensure_future(stopping.wait())]
            try:
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
            if stopping.is_set():
                break
            reason = "fleet changed" if self.dirty.is_set() else "interval"
            if self.dirty.is_set():
                # A fleet coming up registers all at once: one plan for the burst, not one per LB.
                await asyncio.sleep(COALESCE_WALL_SECONDS)
            self.dirty.clear()
            await self.publish(reason)

    async def _paced(self, interval: float) -> None:
        """The simulated interval, and never faster than MIN_PLAN_WALL_SECONDS."""
        await asyncio.gather(self.clock.sleep(interval), asyncio.sleep(MIN_PLAN_WALL_SECONDS))

    async def publish(self, reason: str) -> Plan | None:
        async with self._publish_lock:
            if not self.automation_enabled:
                return None  # DNS stays frozen as it is
            try:
                plan = self.core.next_plan(self.clock.now())
            except EndpointUnserved as unserved:
                if str(unserved) != self._said_unserved:
                    log.info("%s: no plan until one does", unserved)
                    self._said_unserved = str(unserved)
                return None
            with self.tracer.start_as_current_span("planner.publish") as span:
                carrier: dict[str, str] = {}
                TraceContextTextMapPropagator().inject(carrier)
                plan = replace(plan, trace_parent=carrier.get("traceparent", ""))
                span.set_attribute("racelab.plan.generation", plan.generation)
                span.set_attribute("racelab.plan.endpoint_count", len(plan.endpoints))
                span.set_attribute("racelab.plan.load_balancer_count", len(self.core.fleet))
                span.set_attribute("racelab.plan.reason", reason)
                try:
                    await asyncio.to_thread(self.log.append, plan)
                except OSError as exc:
                    # Not durable, so not published; the next attempt reuses nothing of it.
                    span.record_exception(exc)
                    log.error("cannot append plan %d to %s: %s", plan.generation, self.log.path, exc)
                    return None
            self.plans.append(plan)
            self.by_generation[plan.generation] = plan
            GENERATION.set(plan.generation)
            PUBLISHED.inc()
            if plan.generation % EVENT_EVERY == 0:
                self.events.publish("plan.published", f"published generation {plan.generation}",
                                    {"generation": plan.generation})
        async with self.new_plan:
            self.new_plan.notify_all()
        return plan

    def _fleet_changed(self) -> None:
        self._update_gauges()
        try:
            self.fleet_file.save(list(self.core.fleet.values()), self.core.drained_zones)
        except OSError as exc:
            log.error("cannot save the fleet to %s: %s", self.fleet_file.path, exc)
        self.dirty.set()

    def _update_gauges(self) -> None:
        healthy = sum(1 for lb in self.core.fleet.values() if lb.healthy)
        LOAD_BALANCERS.labels(state="healthy").set(healthy)
        LOAD_BALANCERS.labels(state="unhealthy").set(len(self.core.fleet) - healthy)

    # ---- gRPC ----

    async def RegisterLoadBalancer(self, request, context):
        try:
            lb = lb_from_wire(request.load_balancer)
        except InvalidRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if self.core.fleet.get(lb.lb_id) != lb:
            self.core.register(lb)
            if lb.lb_id in self.requested:
                self.requested.remove(lb.lb_id)
            log.info("registered %s (%s, %s)", lb.lb_id, lb.ipv4, lb.availability_zone)
            self._fleet_changed()
        return planner_pb2.RegisterLoadBalancerResponse()

    async def ReportHealth(self, request, context):
        if not request.lb_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "lb_id is empty")
        before = self.core.fleet.get(request.lb_id)
        try:
            self.core.report_health(request.lb_id, request.healthy, request.capacity or None)
        except UnknownLoadBalancer:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no load balancer {request.lb_id!r} is registered")
        if self.core.fleet[request.lb_id] != before:
            log.info("%s is now %s (capacity %d)", request.lb_id,
                     "healthy" if request.healthy else "unhealthy", self.core.fleet[request.lb_id].capacity)
            self._fleet_changed()
        return planner_pb2.ReportHealthResponse()

    async def GetLatestPlan(self, request, context):
        if not self.automation_enabled:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, AUTOMATION_DISABLED)
        if not self.plans:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no plan has been published yet")
        return planner_pb2.GetLatestPlanResponse(plan=wire.plan_to_wire(self.plans[-1]))

    async def GetPlan(self, request, context):
        plan = self.by_generation.get(request.generation)
        if plan is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no plan of generation {request.generation}")
        return planner_pb2.GetPlanResponse(plan=wire.plan_to_wire(plan))

    async def ListPlans(self, request, context):
        limit = min(request.limit or DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
        chosen = [p for p in self.plans if p.generation > request.since_generation][:limit]
        return planner_pb2.ListPlansResponse(plans=[wire.plan_to_wire(p) for p in chosen],
                                             latest_generation=self.plans[-1].generation if self.plans else 0)

    async def WatchPlans(self, request, context):
        sent = 0
        if self.plans:
            sent = self.plans[-1].generation
            yield wire.plan_to_wire(self.plans[-1])
        while not self.ctx.stopping.is_set():
            async with self.new_plan:
                await self.new_plan.wait_for(lambda: self.ctx.stopping.is_set() or (
                    bool(self.plans) and self.plans[-1].generation > sent))
            if self.ctx.stopping.is_set():
                return
            fresh = [p for p in self.plans if p.generation > sent]
            for plan in fresh:
                yield wire.plan_to_wire(plan)
            sent = fresh[-1].generation

    async def AddCapacity(self, request, context):
        count = request.load_balancer_count
        if count == 0 or count > 100:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "load_balancer_count must be 1..100")
        zones = [request.availability_zone] if request.availability_zone else list(
            self.ctx.scenario.fleet.availability_zones)
        base = len(self.core.fleet) + len(self.requested)
        ids = [f"lb-{zones[i % len(zones)]}-{base + i + 1:03d}" for i in range(count)]
        # There is no provisioning system behind the planner: the ids are what a
        # new LB would register under. The request itself is worth a fresh plan.
        self.requested.extend(ids)
        log.info("operators asked for %d more load balancers: %s", count, ", ".join(ids))
        self.dirty.set()
        return planner_pb2.AddCapacityResponse(lb_ids=ids)

    async def ShiftTraffic(self, request, context):
        if not request.availability_zone:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "availability_zone is empty")
        self.core.shift_traffic(request.availability_zone, request.away)
        log.info("traffic shifted %s %s", "away from" if request.away else "back to", request.availability_zone)
        self._fleet_changed()
        self.dirty.clear()
        plan = await self.publish("traffic shifted")
        return planner_pb2.ShiftTrafficResponse(effective_generation=plan.generation if plan else 0)

    async def SetAutomation(self, request, context):
        try:
            await asyncio.to_thread(self.automation.save, request.enabled)
        except OSError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"cannot record the setting in {self.automation.path}: "
                                f"{exc.strerror}")
        if request.enabled != self.automation_enabled:
            self.automation_enabled = request.enabled
            AUTOMATION.set(int(request.enabled))
            log.info("DNS automation %s by the operators", "enabled" if request.enabled else "disabled")
            if request.enabled:
                self.dirty.set()  # a fresh plan at once
        return planner_pb2.SetAutomationResponse(enabled=self.automation_enabled)

    async def close(self) -> None:
        async with self.new_plan:
            self.new_plan.notify_all()
        await self.events.close()
        self.log.close()
