"""EC2's DropletWorkflow Manager as a live service around the core Fleet.

Wired as services/lab/twin/cascade.py wires the twin, except that DynamoDB's
reachability is not an input: every tick the fleet advances in simulated time,
and each host's state-check round reads that host's lease items from DynamoDB
(Query on its partition), lets the core decide which to write (`Fleet.check`)
and writes them in BatchWriteItem calls, each call to a load balancer it finds
by resolving the regional name through the authority with its own resolver
(its own cache: hosts' negative answers expire at different times). Whether
the read and the writes went through is what `record_writes` gets. Terminations
the fleet releases, launches and terminations go to Network Manager.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
from typing import Callable, Iterable, Mapping

import grpc
from opentelemetry import trace
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from racelab.v1 import common_pb2, dwfm_pb2, dwfm_pb2_grpc, dynamodb_pb2, netmgr_pb2, netmgr_pb2_grpc
from services.core.cascade import Watches, build_fleet
from services.core.leases import LEASE_TABLE, HostRound, InsufficientCapacity, LeaseItem, LeaseWrite, \
    RequestLimitExceeded
from services.core.plans import LEGACY_ENDPOINT
from services.core.propagation import admission_room
from services.runtime.ddbcall import OK, LoadBalancers, call_dynamodb
from services.runtime.dnsclient import Resolver
from services.runtime.scenario import Scenario
from services.runtime.telemetry import unsampled

log = logging.getLogger("racelab.dwfm")

MAX_BATCH = 1000  # items per BatchWriteItem
QUERY_PAGE = 1000  # lease items per Query page (the server's maximum)
WRITE_TIMEOUT = 1.0  # wall seconds: DynamoDB down shows as NODATA or a refused connection, not as slowness
NETMGR_TIMEOUT = 2.0
OK_ROUND_SAMPLE = 0.1  # share of plain renewal rounds traced (failed and establishing rounds: all)
MAX_LAUNCH = 1000
MAX_TOKENS = 1000  # RunInstances idempotency tokens remembered


class Metrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self.droplets = Gauge("racelab_dwfm_droplets", "Droplets by lease state", ["state"], registry=registry)
        self.queue_depth = Gauge("racelab_dwfm_queue_depth", "Lease work items waiting, in flight or unwritten",
                                 registry=registry)
        self.in_flight = Gauge("racelab_dwfm_work_in_flight", "Lease work items being processed", registry=registry)
        self.timeouts = Counter("racelab_dwfm_work_timeouts", "Lease work items that timed out (and were re-queued)",
                                registry=registry)
        self.established = Counter("racelab_dwfm_leases_established", "Leases (re-)established", registry=registry)
        self.expired = Counter("racelab_dwfm_leases_expired", "Leases that timed out", registry=registry)
        self.state_checks = Counter("racelab_dwfm_state_checks",
                                    "Hosts' state-check rounds (a read and a write of its lease items in DynamoDB), "
                                    "by result", ["result"], registry=registry)
        self.lease_items = Counter("racelab_dwfm_lease_items",
                                   "Lease items read from and written to DynamoDB by state checks that got that far",
                                   ["operation"], registry=registry)
        self.run_instances = Counter("racelab_dwfm_run_instances", "RunInstances calls by result", ["result"],
                                     registry=registry)
        self.throttle = Gauge("racelab_dwfm_throttle_requests_per_second",
                              "Lease work each host admits per simulated second under the operators' throttle "
                              "(0: no throttle)", registry=registry)
        self.launch_throttle = Gauge("racelab_dwfm_throttle_launches_per_second",
                                     "Launches admitted per simulated second under the throttle (0: none)",
                                     registry=registry)
        for result in ("ok", "failed"):
            self.state_checks.labels(result)
        for operation in ("read", "written"):
            self.lease_items.labels(operation)
        for result in ("ok", "insufficient_capacity", "request_limit_exceeded"):
            self.run_instances.labels(result)


class Dwfm:
    """Everything DWFM does apart from listening on a port."""

    # What a restart keeps (services/runtime/snapshot.py): the fleet with its leases, queues and
    # instances, and what is waiting for Network Manager. DNS caches and connections start afresh.
    DURABLE = ("fleet", "reachable", "outbox", "tokens", "_seen", "leases", "collapse")

    def __init__(self, scenario: Scenario, now: float, *, resolvers: Mapping[str, Resolver], lbs: LoadBalancers,
                 netmgr: netmgr_pb2_grpc.NetworkManagerStub | None, rng: random.Random,
                 registry: CollectorRegistry = REGISTRY, tracer: trace.Tracer | None = None,
                 publish: Callable[[str, str, Mapping[str, object]], None] = lambda kind, message, attrs: None,
                 restored: Mapping[str, object] | None = None):
        self.fleet = build_fleet(scenario.dwfm, scenario.fixes, scenario.seed, now)
        missing = {h.name for h in self.fleet.hosts} - set(resolvers)
        if missing:
            raise ValueError(f"no resolver for host(s) {', '.join(sorted(missing))}")
        self.zones = scenario.fleet.availability_zones
        self.resolvers = resolvers
        self.lbs = lbs
        self.netmgr = netmgr
        self.rng = rng
        self.tracer = tracer or trace.get_tracer("racelab.dwfm")
        self.publish = publish
        self.metrics = Metrics(registry)
        self.reachable: dict[str, bool] = {}  # host -> did its last write go through
        self.outbox: dict[tuple[int, bool], list[str]] = collections.defaultdict(list)  # (kind, ready) -> ids
        self.propagation = scenario.netmgr
        self.netmgr_waiting: int | None = None  # Network Manager's queue as last seen (queue-throttle only)
        self.tokens: collections.OrderedDict[str, dwfm_pb2.RunInstancesResponse] = collections.OrderedDict()
        self._seen = {"timeouts": 0, "established": 0, "expired": 0}
        watches = Watches.build(scenario.dwfm, scenario.nlb)  # the fleet's named states, judged in the core
        self.leases, self.collapse = watches.leases, watches.collapse
        if restored:  # before the gauges below bind to the fleet
            self.__dict__.update({k: restored[k] for k in self.DURABLE})
        m = self.metrics
        m.droplets.labels("leased").set_function(self.fleet.leased)
        m.droplets.labels("expired").set_function(lambda: self.fleet.config.droplets - self.fleet.leased())
        m.queue_depth.set_function(self.fleet.queue_depth)
        m.in_flight.set_function(self.fleet.in_flight)
        m.throttle.set_function(lambda: self.fleet.admit_rate or 0.0)
        m.launch_throttle.set_function(lambda: self.fleet.launch_rate or 0.0)

    def state(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.DURABLE}

    # ---- the tick ----

    async def tick(self, now: float) -> None:
        """Advance the fleet to `now`; each host's round is one DynamoDB write; report the outcomes."""
        since = self.fleet.now  # the leases this tick re-establishes came due over (since, now]
        tick = self.fleet.advance(now)
        # Spans for what `advance` found, before anything is awaited: an operator's call served during
        # the writes below (a restart, say) must not look as if it came before them.
        for host, n in tick.expired.items():
            with self.tracer.start_as_current_span("dwfm.leases_expired", context=None) as span:
                span.set_attribute("racelab.dwfm.host", host)
                span.set_attribute("racelab.droplets.count", n)
        for host, n in tick.timeouts.items():
            with self.tracer.start_as_current_span("dwfm.work_timeout", context=None) as span:
                span.set_attribute("racelab.dwfm.host", host)
                span.set_attribute("racelab.work.count", n)
        results = await asyncio.gather(*(self._state_check(r, now) for r in tick.rounds))
        for r, (write, ok) in zip(tick.rounds, results):
            released = self.fleet.record_writes(r.host, now, write.renewed, write.established, ok)
            if ok and r.established:
                with self.tracer.start_as_current_span("dwfm.leases_established", context=None) as span:
                    span.set_attribute("racelab.dwfm.host", r.host)
                    span.set_attribute("racelab.droplets.count", len(r.established))
            self.outbox[(netmgr_pb2.TERMINATED, False)].extend(released)
        self._count_totals(now)
        self._watch_leases()
        await self.flush_propagations(since)
        if self.fleet.queue_throttle:
            await self._look_at_netmgr_queue()

    async def _look_at_netmgr_queue(self) -> None:
        """The queue-throttle fix admits launches by Network Manager's queue: look at it every tick."""
        if self.netmgr is None:
            return
        try:
            b = await self.netmgr.DescribeBacklog(netmgr_pb2.DescribeBacklogRequest(), timeout=NETMGR_TIMEOUT)
        except grpc.RpcError as exc:
            log.warning("network manager's backlog unknown: %s", exc.code().name)
            return
        self.netmgr_waiting = b.pending_new + b.pending_terminated

    async def _state_check(self, r: HostRound, now: float) -> tuple[LeaseWrite, bool]:
        """One host's state-check round: read its lease items, write what the core decides, in DynamoDB."""
        traced = bool(r.established) or not self.reachable.get(r.host, True) or self.rng.random() < OK_ROUND_SAMPLE
        if not traced:
            with unsampled():
                return await self._check(r, now, None)
        with self.tracer.start_as_current_span("dwfm.state_check", context=None) as span:
            span.set_attribute("racelab.dwfm.host", r.host)
            span.set_attribute("racelab.droplets.count", len(r.checked) + len(r.established))
            return await self._check(r, now, span)

    async def _check(self, r: HostRound, now: float, span: trace.Span | None) -> tuple[LeaseWrite, bool]:
        stored, (outcome, detail) = await self._read_leases(r.host)
        if outcome == OK:
            write = self.fleet.check(r, now, stored)
            outcome, detail = await self._write_leases(r.host, write.items)
        else:  # nothing read, nothing decided: the round fails as a whole
            write = LeaseWrite(r.host, [], list(r.established), [])
        ok = self.reachable[r.host] = outcome == OK
        self.metrics.state_checks.labels("ok" if ok else "failed").inc()
        if span is not None:
            span.set_attribute("racelab.result", "ok" if ok else "failed")
            if not ok:
                span.set_attribute("error.type", outcome)
                span.set_status(trace.Status(trace.StatusCode.ERROR, detail))
        return write, ok

    async def _read_leases(self, host: str) -> tuple[list[LeaseItem], tuple[str, str]]:
        """The host's lease items, a Query page at a time; a malformed item is logged and left out (the
        check then writes a good one)."""
        items: list[LeaseItem] = []
        start = ""
        while True:
            request = dynamodb_pb2.QueryRequest(table=LEASE_TABLE, partition_key=host, limit=QUERY_PAGE,
                                                start_after_sort_key=start)
            pages: list[dynamodb_pb2.QueryResponse] = []

            async def query(stub, request=request, pages=pages):
                pages.append(await stub.Query(request, timeout=WRITE_TIMEOUT))

            outcome = await call_dynamodb(self.resolvers[host], self.lbs, LEGACY_ENDPOINT, self.rng, query)
            if outcome[0] != OK:
                return items, outcome
            for it in pages[0].items:
                try:
                    items.append(LeaseItem.parse(host, it.key.sort_key, dict(it.attributes)))
                except ValueError as exc:
                    log.warning("%s", exc)
            self.metrics.lease_items.labels("read").inc(len(pages[0].items))
            start = pages[0].last_evaluated_sort_key
            if not start:
                return items, outcome

    async def _write_leases(self, host: str, items: list[LeaseItem]) -> tuple[str, str]:
        puts = [dynamodb_pb2.PutRequest(key=dynamodb_pb2.ItemKey(partition_key=host, sort_key=i.sort_key),
                                        attributes=i.attributes()) for i in items]
        outcome = (OK, "")
        for start in range(0, len(puts), MAX_BATCH):
            request = dynamodb_pb2.BatchWriteItemRequest(table=LEASE_TABLE, puts=puts[start:start + MAX_BATCH])
            outcome = await call_dynamodb(self.resolvers[host], self.lbs, LEGACY_ENDPOINT, self.rng,
                                          lambda stub: stub.BatchWriteItem(request, timeout=WRITE_TIMEOUT))
            if outcome[0] != OK:
                break
            self.metrics.lease_items.labels("written").inc(len(request.puts))
        return outcome

    async def flush_propagations(self, since: float | None = None) -> None:
        """Send what Network Manager has not taken yet: what came due since `since`, one by one over
        that interval (the twin queues the same terminations at the same times)."""
        for key in list(self.outbox):
            batch = self.outbox.pop(key)
            if batch:
                await self._propagate(batch, *key, since=since)

    async def _propagate(self, ids: list[str], kind: int, ready: bool = False, since: float | None = None) -> None:
        """Tell Network Manager now; what it does not take waits in the outbox for the next tick."""
        if self.netmgr is None:
            return
        try:
            await self.netmgr.PropagateInstance(netmgr_pb2.PropagateInstanceRequest(
                instance_ids=ids, kind=kind, already_propagated=ready, due_since_sim_seconds=since or 0.0),
                timeout=NETMGR_TIMEOUT)
        except grpc.RpcError as exc:
            log.warning("network manager did not take %d propagations: %s", len(ids), exc.code().name)
            self.outbox[(kind, ready)].extend(ids)

    # ---- telemetry ----

    def _count_totals(self, now: float) -> None:
        f = self.fleet
        for name, total, counter in (("timeouts", f.timeouts_total, self.metrics.timeouts),
                                     ("established", f.established_total, self.metrics.established),
                                     ("expired", f.expired_total, self.metrics.expired)):
            if total != self._seen[name]:
                counter.inc(total - self._seen[name])
                self._seen[name] = total
        change = self.collapse.observe(now, f.timeouts_total, f.established_total, f.queue_depth())
        if change:
            self.publish(change.kind, change.message, change.attrs)

    def _watch_leases(self) -> None:
        change = self.leases.observe(self.fleet.leased(), self.fleet.config.droplets)
        if change:
            self.publish(change.kind, change.message, change.attrs)

    # ---- launches ----

    async def run_instances(self, count: int, group: str, preexisting: bool,
                            now: float | None = None) -> dwfm_pb2.RunInstancesResponse:
        with self.tracer.start_as_current_span("ec2.run_instances") as span:
            span.set_attribute("racelab.instances.count", count)
            try:
                room = None if self.netmgr_waiting is None else admission_room(self.propagation, self.netmgr_waiting)
                ids = self.fleet.run_instances(count, room, now, group)
            except InsufficientCapacity as exc:
                return self._refused(span, "insufficient_capacity", dwfm_pb2.INSUFFICIENT_CAPACITY, str(exc))
            except RequestLimitExceeded as exc:
                return self._refused(span, "request_limit_exceeded", dwfm_pb2.REQUEST_LIMIT_EXCEEDED, str(exc))
            span.set_attribute("racelab.result", "ok")
            self.metrics.run_instances.labels("ok").inc()
            # Network Manager hears of the launch at once: its clock for the instance starts now.
            await self._propagate(ids, netmgr_pb2.NEW, preexisting)
            if self.netmgr_waiting is not None:
                self.netmgr_waiting += len(ids)
            return dwfm_pb2.RunInstancesResponse(instance_ids=ids)

    def _refused(self, span: trace.Span, result: str, error: int, message: str) -> dwfm_pb2.RunInstancesResponse:
        span.set_attribute("racelab.result", result)
        span.set_attribute("error.type", result)
        self.metrics.run_instances.labels(result).inc()
        return dwfm_pb2.RunInstancesResponse(error=error, error_message=message)

    async def terminate(self, ids: Iterable[str] | None, count: int, group: str) -> tuple[list[str], int]:
        if ids is None:
            ids = self.fleet.pick(group, count, self.rng)
        known = [i for i in dict.fromkeys(ids) if i in self.fleet.instances]
        now_, held = self.fleet.terminate(known)
        if now_:
            await self._propagate(now_, netmgr_pb2.TERMINATED)
        return known, len(held)

    # ---- operators ----

    def describe(self) -> dwfm_pb2.DescribeFleetResponse:
        f = self.fleet
        leased = f.leased()
        return dwfm_pb2.DescribeFleetResponse(
            droplets_total=f.config.droplets, droplets_leased=leased, droplets_expired=f.config.droplets - leased,
            queue_depth=f.queue_depth(), timeouts_total=f.timeouts_total, hosts=len(f.hosts),
            throttle=self.throttle(), instances_running=len(f.instances), work_in_flight=f.in_flight(),
            launches_per_second=f.launch_rate or 0.0)

    def throttle(self) -> common_pb2.Throttle:
        rate = self.fleet.admit_rate
        return common_pb2.Throttle(enabled=rate is not None, requests_per_second=rate or 0.0)


class DwfmServicer(dwfm_pb2_grpc.DropletWorkflowServicer):
    def __init__(self, dwfm: Dwfm, now: Callable[[], float]):
        self.dwfm = dwfm
        self.now = now

    async def RunInstances(self, request, context):
        if not 1 <= request.count <= MAX_LAUNCH:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"count must be 1..{MAX_LAUNCH}, got {request.count}")
        if request.availability_zone and request.availability_zone not in self.dwfm.zones:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown availability_zone "
                                f"{request.availability_zone!r}; zones: {', '.join(self.dwfm.zones)}")
        tokens = self.dwfm.tokens
        if request.client_token and request.client_token in tokens:
            return tokens[request.client_token]
        reply = await self.dwfm.run_instances(request.count, request.group, request.preexisting, self.now())
        if request.client_token:
            tokens[request.client_token] = reply
            while len(tokens) > MAX_TOKENS:
                tokens.popitem(last=False)
        return reply

    async def TerminateInstances(self, request, context):
        which = request.WhichOneof("selection")
        if which is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "instance_ids or count is required")
        if which == "count" and request.count == 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "count must be positive")
        if which == "instance_ids" and request.group:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "group goes with count, not with instance_ids")
        ids = list(request.instance_ids.ids) if which == "instance_ids" else None
        terminated, held = await self.dwfm.terminate(ids, request.count, request.group)
        return dwfm_pb2.TerminateInstancesResponse(terminated_instance_ids=terminated, held=held)

    async def DescribeFleet(self, request, context):
        return self.dwfm.describe()

    async def SetThrottle(self, request, context):
        fleet = self.dwfm.fleet
        if request.enabled:
            if not request.requests_per_second > 0:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    "requests_per_second must be positive when enabled")
            if request.launches_per_second < 0:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "launches_per_second must not be negative")
            fleet.throttle(request.requests_per_second, request.launches_per_second or None, self.now())
        else:
            fleet.throttle(None, None, self.now())
        if request.enabled:
            log.info("throttle: %g lease items per host and %g launches per simulated second", fleet.admit_rate,
                     fleet.launch_rate or 0)
        else:
            log.info("throttle off")
        return dwfm_pb2.SetWorkflowThrottleResponse(throttle=self.dwfm.throttle(),
                                                    launches_per_second=fleet.launch_rate or 0.0)

    async def RelaxThrottle(self, request, context):
        if not request.relax_over_seconds > 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "relax_over_seconds must be positive")
        if not request.to_launches_per_second > 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "to_launches_per_second must be positive")
        fleet = self.dwfm.fleet
        fleet.relax(self.now(), request.relax_over_seconds, request.to_launches_per_second)
        return dwfm_pb2.RelaxThrottleResponse(launches_per_second=fleet.launch_rate or 0.0)

    async def RestartHosts(self, request, context):
        which = request.WhichOneof("selection")
        fleet = self.dwfm.fleet
        if which == "host_ids":
            names = list(request.host_ids.ids)
            known = {h.name for h in fleet.hosts}
            unknown = [n for n in names if n not in known]
            if not names or unknown:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown host id(s) {', '.join(unknown)}; "
                                    f"hosts: {', '.join(sorted(known))}" if unknown else "host_ids is empty")
            restarted, dropped = fleet.restart_hosts(names=names)
        else:
            if which == "count" and request.count == 0:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "count must be positive")
            restarted, dropped = fleet.restart_hosts(request.count or None)
        log.info("restarted %s: %d work items dropped back to their backlogs", ", ".join(restarted), dropped)
        return dwfm_pb2.RestartHostsResponse(restarted_host_ids=restarted, dropped_work_items=dropped)
