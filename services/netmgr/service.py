"""EC2's Network Manager as a live service around the core Backlog.

A tick loop advances the backlog in simulated time; DWFM queues propagations
(new instances, and terminations once their droplet is leased again); the NLB
health checker asks, once per round, which of its targets have network.
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping

import grpc
from opentelemetry import trace
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from racelab.v1 import common_pb2, netmgr_pb2, netmgr_pb2_grpc
from services.core.cascade import build_backlog
from services.core.propagation import NEW, TERMINATED, PropagationConfig

log = logging.getLogger("racelab.netmgr")

KINDS = {netmgr_pb2.NEW: NEW, netmgr_pb2.TERMINATED: TERMINATED}
MAX_IDS = 10000  # per request


class Metrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self.backlog = Gauge("racelab_netmgr_backlog", "Propagations waiting, by kind", ["kind"], registry=registry)
        self.propagations = Counter("racelab_netmgr_propagations", "Propagations completed, by kind", ["kind"],
                                    registry=registry)
        self.oldest = Gauge("racelab_netmgr_oldest_pending_age_seconds",
                            "Simulated seconds the oldest waiting propagation has waited", registry=registry)
        self.delay = Gauge("racelab_netmgr_delay_seconds",
                           "Simulated seconds a new instance queued now would wait for its network",
                           registry=registry)
        self.without_network = Counter("racelab_netmgr_instances_without_network",
                                       "Instances that finished booting before their network state propagated",
                                       registry=registry)


class NetworkManager:
    """Everything Network Manager does apart from listening on a port."""

    # What a restart keeps (services/runtime/snapshot.py): the backlog, who is ready, the throttle.
    DURABLE = ("backlog", "behind", "_without_network_seen")

    def __init__(self, config: PropagationConfig, now: float, *, registry: CollectorRegistry = REGISTRY,
                 tracer: trace.Tracer | None = None,
                 publish: Callable[[str, str, Mapping[str, object]], None] = lambda kind, message, attrs: None,
                 restored: Mapping[str, object] | None = None):
        self.backlog = build_backlog(config, now)
        self.metrics = Metrics(registry)
        self.tracer = tracer or trace.get_tracer("racelab.netmgr")
        self.publish = publish
        self.behind = False  # new instances would boot before their network propagates
        self._without_network_seen = 0
        if restored:  # before the gauges below bind to the backlog
            self.__dict__.update({k: restored[k] for k in self.DURABLE})
        for kind in (NEW, TERMINATED):
            self.metrics.backlog.labels(kind).set_function(lambda kind=kind: self.backlog.pending(kind))
            self.metrics.propagations.labels(kind)
        self.metrics.oldest.set_function(lambda: self.backlog.oldest_age(self.backlog.now))
        self.metrics.delay.set_function(self.backlog.delay)

    def state(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.DURABLE}

    def propagate(self, instances: list[str], kind: str, now: float, already_propagated: bool = False,
                  since: float | None = None) -> int:
        """Queue propagations (or, for instances running since before the night, mark them ready);
        returns how many were ahead. `since`: they became due one by one over (since, now]."""
        if already_propagated:
            for iid in instances:
                self.backlog.ready_at[iid] = now
            return 0
        return self.backlog.add(instances, kind, now, since)

    def tick(self, now: float) -> None:
        done = self.backlog.advance(now)
        for kind in (NEW, TERMINATED):
            items = [p for p in done if p.kind == kind]
            if not items:
                continue
            self.metrics.propagations.labels(kind).inc(len(items))
            with self.tracer.start_as_current_span("netmgr.propagate", context=None) as span:
                span.set_attribute("racelab.propagation.kind", kind)
                span.set_attribute("racelab.instances.count", len(items))
                span.set_attribute("racelab.propagation.delay_seconds", max(now - p.queued_at for p in items))
        new_without = self.backlog.without_network_total - self._without_network_seen
        if new_without:
            self.metrics.without_network.inc(new_without)
            self._without_network_seen = self.backlog.without_network_total
        self._watch_delay()

    def _watch_delay(self) -> None:
        b = self.backlog
        boot = b.config.boot_seconds
        delay = b.delay()
        attrs = {"pending_new": b.pending(NEW), "pending_terminated": b.pending(TERMINATED),
                 "delay_seconds": f"{delay:.0f}"}
        if not self.behind and delay > boot:
            self.behind = True
            self.publish("netmgr.backlog",
                         f"network propagation is behind: {b.pending(NEW)} new and {b.pending(TERMINATED)} "
                         f"terminated instances waiting; a new instance would wait ~{delay / 60:.0f} min for its "
                         f"network, longer than its {boot / 60:.0f} min boot: it launches without network",
                         {**attrs, "state": "behind"})
        elif self.behind and delay < boot / 2:
            self.behind = False
            self.publish("netmgr.backlog",
                         f"network propagation caught up: {b.pending(NEW)} new instances waiting, "
                         f"~{delay / 60:.0f} min", {**attrs, "state": "caught_up"})

    def set_throttle(self, enabled: bool, per_second: float) -> common_pb2.Throttle:
        self.backlog.throttle = per_second if enabled else None
        return self.throttle()

    def throttle(self) -> common_pb2.Throttle:
        t = self.backlog.throttle
        return common_pb2.Throttle(enabled=t is not None, requests_per_second=t or 0.0)


class NetworkManagerServicer(netmgr_pb2_grpc.NetworkManagerServicer):
    def __init__(self, manager: NetworkManager, now: Callable[[], float]):
        self.manager = manager
        self.now = now

    async def PropagateInstance(self, request, context):
        ids = ([request.instance_id] if request.instance_id else []) + list(request.instance_ids)
        if not ids:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "instance_id or instance_ids is required")
        if len(ids) > MAX_IDS:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"at most {MAX_IDS} instances per request")
        if not all(i.strip() for i in ids):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "an instance id is empty")
        kind = KINDS.get(request.kind)
        if kind is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "kind must be NEW or TERMINATED")
        if request.already_propagated and kind != NEW:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "already_propagated applies to NEW instances only")
        now = self.now()
        since = request.due_since_sim_seconds or None
        if since is not None and not since <= now:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"due_since_sim_seconds {since:.1f} is in the future (now {now:.1f})")
        ahead = self.manager.propagate(ids, kind, now, request.already_propagated, since)
        return netmgr_pb2.PropagateInstanceResponse(queue_position=ahead)

    async def GetInstanceNetwork(self, request, context):
        if not request.instance_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "instance_id is empty")
        at = self.manager.backlog.ready_at.get(request.instance_id)
        reply = netmgr_pb2.GetInstanceNetworkResponse(ready=at is not None)
        if at is not None:
            reply.propagated_at_sim_seconds = at
        return reply

    async def GetInstancesNetwork(self, request, context):
        if len(request.instance_ids) > MAX_IDS:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"at most {MAX_IDS} instances per request")
        # Serve the backlog up to now first: the answer is as of this call, not as of the last tick
        # (up to 190 simulated seconds ago at 760x), so a target's network reaches its health checks
        # as soon as in the twin, where both advance in the same step.
        self.manager.tick(self.now())
        at = [self.manager.backlog.ready_at.get(i) for i in request.instance_ids]
        return netmgr_pb2.GetInstancesNetworkResponse(ready=[a is not None for a in at],
                                                      propagated_at_sim_seconds=[a or 0.0 for a in at])

    async def DescribeBacklog(self, request, context):
        b = self.manager.backlog
        return netmgr_pb2.DescribeBacklogResponse(
            pending_new=b.pending(NEW), pending_terminated=b.pending(TERMINATED),
            oldest_age_seconds=b.oldest_age(b.now), propagated_total=sum(b.propagated.values()),
            throttle=self.manager.throttle())

    async def SetThrottle(self, request, context):
        if request.enabled and not request.requests_per_second > 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "requests_per_second must be positive when enabled")
        throttle = self.manager.set_throttle(request.enabled, request.requests_per_second)
        log.info("propagation throttle %s", f"{throttle.requests_per_second:g}/s" if throttle.enabled else "off")
        return netmgr_pb2.SetPropagationThrottleResponse(throttle=throttle)
