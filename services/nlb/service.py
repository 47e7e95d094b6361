"""NLB health checking as a live service around the core HealthChecker.

Wired as services/lab/twin/cascade.py wires the twin: every tick the checker advances
with when each target's network propagated, asked from Network Manager in ONE
batched call per tick (and kept for the tick: Connect answers from it too). Each
NLB's name in the ELB zone is an A record set with one node per zone in
service; when that set changes (failover, restore, healthy capacity coming or
going) the nlb service UPSERTs it through the authority's control API, one
batch for every NLB that changed, and never to an empty set.
"""

from __future__ import annotations

import logging
import random
from typing import Callable, Mapping

import grpc
from opentelemetry import trace
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from racelab.v1 import authority_pb2, authority_pb2_grpc, netmgr_pb2, netmgr_pb2_grpc, nlb_pb2, nlb_pb2_grpc
from services.core.cascade import Watches, build_checker
from services.core.healthcheck import HEALTHY, INITIAL, UNHEALTHY, Nlb
from services.core.nlbdns import NLB_ZONE, node_addresses, record_set
from services.core.records import upsert
from services.runtime.scenario import Scenario
from services.runtime.wire import change_to_wire

log = logging.getLogger("racelab.nlb")

RPC_TIMEOUT = 2.0  # wall seconds
MAX_TRANSITION_SPANS = 50  # per tick: flapping can flip hundreds of targets at once
STATES = {INITIAL: nlb_pb2.INITIAL, HEALTHY: nlb_pb2.HEALTHY, UNHEALTHY: nlb_pb2.UNHEALTHY}


class Metrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self.targets = Gauge("racelab_nlb_targets", "Registered targets by health", ["nlb", "state"],
                             registry=registry)
        self.checks = Counter("racelab_nlb_health_checks", "Health checks by result", ["nlb", "result"],
                              registry=registry)
        self.transitions = Counter("racelab_nlb_target_transitions", "Healthy<->unhealthy flips (flapping)",
                                   ["nlb"], registry=registry)
        self.delay = Gauge("racelab_nlb_health_check_delay_seconds",
                           "Simulated seconds a health check waits before it runs", registry=registry)
        self.failovers = Counter("racelab_nlb_failovers", "Zones removed from DNS by automatic failover", ["nlb"],
                                 registry=registry)
        self.zones = Gauge("racelab_nlb_zones_in_service", "Zones in the NLB's DNS with a healthy target", ["nlb"],
                           registry=registry)
        self.capacity = Gauge("racelab_nlb_healthy_capacity_ratio",
                              "Healthy targets in zones in DNS over registered targets", ["nlb"], registry=registry)
        self.automatic = Gauge("racelab_nlb_automatic_failover_enabled", "1 while automatic AZ failover is on",
                               registry=registry)


class NlbService:
    """Everything the NLB health checker does apart from listening on a port."""

    # What a restart keeps (services/runtime/snapshot.py): the targets and their health, the zones
    # in service and in DNS, the checker's backlog, failover on or off.
    DURABLE = ("checker", "propagated_at", "published", "last_checked", "flaps")

    def __init__(self, scenario: Scenario, now: float, *, netmgr: netmgr_pb2_grpc.NetworkManagerStub | None,
                 authority: authority_pb2_grpc.RouteControlStub | None, rng: random.Random,
                 registry: CollectorRegistry = REGISTRY, tracer: trace.Tracer | None = None,
                 publish: Callable[[str, str, Mapping[str, object]], None] = lambda kind, message, attrs: None,
                 restored: Mapping[str, object] | None = None):
        zones = scenario.fleet.availability_zones
        self.zones = zones
        self.checker = build_checker(scenario.nlb, zones, scenario.fixes, scenario.seed, now)
        self.nodes = node_addresses(tuple(scenario.nlb.names), zones)
        self.zone_of = {(n, a): z for (n, z), a in self.nodes.items()}
        self.netmgr = netmgr
        self.authority = authority
        self.rng = rng
        self.tracer = tracer or trace.get_tracer("racelab.nlb")
        self.publish = publish
        self.metrics = Metrics(registry)
        # Targets with network and since when, as of this tick's answer from Network Manager.
        self.propagated_at: dict[str, float] = {}
        self.published: dict[str, tuple[str, ...]] = {}  # nlb -> zones its DNS record lists
        self.last_checked = 0.0
        self.flaps = Watches.build(scenario.dwfm, scenario.nlb).flaps  # judged in the core, as in the twin
        if restored:  # before the gauges below bind to the checker's NLBs
            self.__dict__.update({k: restored[k] for k in self.DURABLE})
        m = self.metrics
        for name, n in self.checker.nlbs.items():
            for state in (HEALTHY, UNHEALTHY, INITIAL):
                m.targets.labels(name, state).set_function(
                    lambda n=n, state=state: sum(1 for t in n.targets.values() if t.state == state))
            for result in ("pass", "fail"):
                m.checks.labels(name, result)
            m.transitions.labels(name)
            m.failovers.labels(name)
            m.zones.labels(name).set_function(lambda n=n: len(n.zones_in_dns()))
            if n.targets:
                self.export_capacity(name)
        m.delay.set_function(lambda: self.checker.delay)
        m.automatic.set_function(lambda: 1.0 if self.checker.automatic_failover else 0.0)

    def export_capacity(self, name: str) -> None:
        """Export an NLB's capacity ratio from its first target on: before that it has no capacity to
        lose, and a 0 while the workload is still registering its standing targets reads as an outage."""
        self.metrics.capacity.labels(name).set_function(self.checker.nlbs[name].capacity_ratio)

    def state(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.DURABLE}

    # ---- the tick ----

    async def tick(self, now: float) -> None:
        await self._refresh_readiness()
        rnd = self.checker.advance(now, self.propagated_at.get)
        m = self.metrics
        if rnd.passes or rnd.fails:
            self.last_checked = now
        for name, count in rnd.passes.items():
            m.checks.labels(name, "pass").inc(count)
        for name, count in rnd.fails.items():
            m.checks.labels(name, "fail").inc(count)
        for x in rnd.transitions[:MAX_TRANSITION_SPANS]:
            with self.tracer.start_as_current_span("nlb.target_transition", context=None) as span:
                span.set_attribute("racelab.nlb.id", x.nlb)
                span.set_attribute("racelab.instance.id", x.target.instance)
                span.set_attribute("racelab.target.state", x.state)
                span.set_attribute("racelab.target.flapped", x.flapped)
                span.set_attribute("racelab.reason", x.target.reason)
        for x in rnd.transitions:
            if x.flapped:
                m.transitions.labels(x.nlb).inc()
                self.flaps.flipped(x.nlb, now)
        for change in self.flaps.observe(now):
            self.publish(change.kind, change.message, change.attrs)
        self._failovers(rnd.failovers)
        await self.sync_dns()

    async def _refresh_readiness(self) -> None:
        ids = [i for n in self.checker.nlbs.values() for i in n.targets]
        if self.netmgr is None or not ids:
            return
        try:
            reply = await self.netmgr.GetInstancesNetwork(
                netmgr_pb2.GetInstancesNetworkRequest(instance_ids=ids), timeout=RPC_TIMEOUT)
        except grpc.RpcError as exc:
            log.debug("network manager did not answer (%s): keeping the last readiness", exc.code().name)
            return
        if not len(reply.ready) == len(reply.propagated_at_sim_seconds) == len(ids):
            log.warning("network manager answered %d readiness and %d times for %d targets: keeping the last readiness",
                        len(reply.ready), len(reply.propagated_at_sim_seconds), len(ids))
            return
        self.propagated_at = {i: at for i, ok, at in zip(ids, reply.ready, reply.propagated_at_sim_seconds) if ok}

    def _failovers(self, changes) -> None:
        for f in changes:
            n = self.checker.nlbs[f.nlb]
            if f.action == "remove":
                self.metrics.failovers.labels(f.nlb).inc()
            with self.tracer.start_as_current_span("nlb.failover", context=None) as span:
                span.set_attribute("racelab.nlb.id", f.nlb)
                span.set_attribute("racelab.az", f.zone)
                span.set_attribute("racelab.action", f.action)
                span.set_attribute("racelab.health_check.delay_seconds", f.delay)
            left = len(n.zones_in_dns())
            if f.action == "remove":
                message = (f"automatic failover took {f.zone} out of {f.nlb}'s DNS (health checks {f.delay:.0f} s "
                           f"late); {left} zone(s) left in service")
            else:
                message = f"{f.zone} back in {f.nlb}'s DNS; {left} zone(s) in service"
            self.publish("nlb.failover", message, {"nlb": f.nlb, "zone": f.zone, "action": f.action,
                                                   "delay_seconds": f"{f.delay:.0f}"})

    # ---- DNS ----

    def desired_zones(self, name: str) -> tuple[str, ...]:
        """The zones the NLB's DNS should list: those in service, or the last ones listed (never none)."""
        in_dns = tuple(self.checker.nlbs[name].zones_in_dns())
        return in_dns or self.published.get(name) or self.zones

    async def sync_dns(self) -> bool:
        """UPSERT, in one batch, every NLB record set that differs from what DNS holds. False if the
        authority did not take it (tried again next tick)."""
        want = {name: self.desired_zones(name) for name in self.checker.nlbs}
        changed = {name: zones for name, zones in want.items() if self.published.get(name) != zones}
        if not changed or self.authority is None:
            return True
        changes = [upsert(record_set(name, [self.nodes[(name, z)] for z in zones])) for name, zones in changed.items()]
        request = authority_pb2.ChangeResourceRecordSetsRequest(
            hosted_zone=NLB_ZONE, changes=[change_to_wire(c) for c in changes],
            comment="nlb " + "; ".join(f"{n}: {', '.join(z)}" for n, z in changed.items()))
        try:
            await self.authority.ChangeResourceRecordSets(request, timeout=RPC_TIMEOUT)
        except grpc.RpcError as exc:
            log.warning("the authority did not take the NLB records (%s: %s); trying again", exc.code().name,
                        exc.details())
            return False
        self.published.update(changed)
        return True

    # ---- operations ----

    def set_automatic_failover(self, enabled: bool, now: float) -> None:
        self._failovers(self.checker.set_automatic_failover(enabled, now))

    def connect(self, nlb: str, address: str) -> tuple[str, str]:
        """(outcome, zone) of a client connection through the node at `address`."""
        zone = self.zone_of[(nlb, address)]
        return self.checker.connect(nlb, zone, self.propagated_at.__contains__, self.rng), zone


class NlbServicer(nlb_pb2_grpc.LoadBalancingServicer):
    def __init__(self, service: NlbService, now: Callable[[], float]):
        self.service = service
        self.now = now

    async def _nlb(self, nlb_id: str, context) -> Nlb:
        n = self.service.checker.nlbs.get(nlb_id)
        if n is None:
            await context.abort(grpc.StatusCode.NOT_FOUND,
                                f"no NLB {nlb_id!r}; NLBs: {', '.join(self.service.checker.nlbs)}")
        return n

    async def RegisterTarget(self, request, context):
        await self._nlb(request.nlb_id, context)
        if not request.instance_id.strip():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "instance_id is empty")
        if not request.address.strip():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "address is empty")
        try:
            self.service.checker.register(request.nlb_id, request.instance_id, request.availability_zone,
                                          request.address, in_service=request.in_service, now=self.now())
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        self.service.export_capacity(request.nlb_id)
        if request.in_service:
            # In service since before the night, so its network propagated long ago: serve it now rather
            # than refuse connections until the next tick asks Network Manager (STS's first calls failed).
            self.service.propagated_at[request.instance_id] = float("-inf")
        return nlb_pb2.RegisterTargetResponse()

    async def DeregisterTarget(self, request, context):
        await self._nlb(request.nlb_id, context)
        if not self.service.checker.deregister(request.nlb_id, request.instance_id):
            await context.abort(grpc.StatusCode.NOT_FOUND,
                                f"{request.nlb_id} has no target {request.instance_id!r}")
        return nlb_pb2.DeregisterTargetResponse()

    async def DescribeTargetHealth(self, request, context):
        n = await self._nlb(request.nlb_id, context)
        return nlb_pb2.DescribeTargetHealthResponse(targets=[
            nlb_pb2.TargetHealth(instance_id=t.instance, address=t.address, availability_zone=t.zone,
                                 state=STATES[t.state], reason=t.reason, transitions=t.transitions,
                                 last_checked_sim_seconds=self.service.last_checked)
            for t in n.targets.values()])

    async def SetAutomaticFailover(self, request, context):
        self.service.set_automatic_failover(request.enabled, self.now())
        await self.service.sync_dns()
        log.info("automatic AZ failover %s", "on" if request.enabled else "off")
        return nlb_pb2.SetAutomaticFailoverResponse(enabled=self.service.checker.automatic_failover)

    async def DescribeCapacity(self, request, context):
        checker = self.service.checker
        zones = [nlb_pb2.ZoneCapacity(nlb_id=name, availability_zone=z,
                                      targets_registered=sum(1 for t in n.targets.values() if t.zone == z),
                                      targets_healthy=len(n.healthy(z)), failed_over=z in n.failed_over)
                 for name, n in checker.nlbs.items() for z in n.zones]
        return nlb_pb2.DescribeCapacityResponse(zones=zones, automatic_failover_enabled=checker.automatic_failover,
                                                health_check_delay_seconds=checker.delay)

    async def Connect(self, request, context):
        await self._nlb(request.nlb_id, context)
        if (request.nlb_id, request.address) not in self.service.zone_of:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"{request.address!r} is no node of {request.nlb_id}")
        outcome, zone = self.service.connect(request.nlb_id, request.address)
        return nlb_pb2.ConnectResponse(ok=outcome == "ok", error="" if outcome == "ok" else outcome,
                                       availability_zone=zone)
