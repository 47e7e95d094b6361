"""Open-loop customer traffic against DynamoDB, finding it through DNS.

Arrivals are Poisson at `requests_per_second` per WALL second: this is real
load on real processes (the LB servers, the authority), so it is measured in
the only time those processes feel. Everything the scenario states in
simulated time (DNS TTLs, the call timeout) is simulated: the call deadline is
`call_timeout_seconds` converted to wall time at the schedule's current rate
(never under MIN_CALL_TIMEOUT, so a fast-forwarded hour still leaves room for a
real round trip on a loaded machine).

Arrivals never wait for earlier requests (open loop). At most MAX_IN_FLIGHT
requests run at once; an arrival beyond that is dropped and counted, which
is what an open-loop client under back-pressure does.

Client kinds, spread evenly:
- legacy: resolves dynamodb.us-east-1.amazonaws.com (A), the name emptied in 2025;
- dualstack: resolves dynamodb.us-east-1.api.aws (A, and an AAAA lookup counted
  alongside; the call goes over IPv4);
- account: resolves <account>.ddb.us-east-1.api.aws, a CNAME to the legacy name.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from racelab.v1 import dynamodb_pb2, dynamodb_pb2_grpc, workload_pb2, workload_pb2_grpc
from services.core.plans import ACCOUNT_ZONE, DUALSTACK_ENDPOINT, LEGACY_ENDPOINT
from services.runtime.dnsclient import DnsError, NoData, NXDomain, Resolver
from services.runtime.scenario import WorkloadSettings

log = logging.getLogger("racelab.workload")

OUTCOMES = ("ok", "dns_nodata", "dns_nxdomain", "dns_error", "connect_error", "timeout", "error")
OUTCOME_WORDS = {"dns_nodata": "NODATA", "dns_nxdomain": "NXDOMAIN", "dns_error": "DNS errors",
                 "connect_error": "connection errors", "timeout": "timeouts", "error": "errors"}
MAX_IN_FLIGHT = 1000
WINDOW_SECONDS = 3.0  # wall seconds of the success-ratio window: at 400-700x, 3 s is already 20-35 simulated minutes
MIN_SAMPLES = 5  # fewer requests than this in the window: the ratio says nothing yet
CONFIRM_CHECKS = 2  # a crossing must hold this many checks in a row (0.5 s apart): no flapping at 50%
# Wall seconds. Nothing in the incident makes a DynamoDB call slow in simulated time: a call that takes
# longer than this is the replica's own load. On 2 shared cores a round trip through an LB took 26 / 97 /
# 253 ms (p50 / p90 / p99) in a default run, and a floor of 50 ms made 11-24 % of every kind's calls
# time out in every run, showing even the never-emptied endpoints' clients failing.
MIN_CALL_TIMEOUT = 0.5
TABLE = "customers"


def wall_deadline(sim_seconds: float, rate: float, floor: float) -> float:
    """A timeout stated in simulated seconds as wall seconds at the schedule's current `rate`, never
    under `floor` (a real round trip's room on a loaded machine)."""
    return max(floor, sim_seconds / rate if rate > 0 else sim_seconds)


@dataclass(frozen=True)
class ClientKind:
    kind: str
    names: tuple[str, ...]  # names this kind resolves, one picked per request
    also_aaaa: bool = False

    @property
    def endpoint(self) -> str:
        """The name in plain words for events and spans."""
        if len(self.names) == 1:
            return self.names[0]
        return f"<account>.{ACCOUNT_ZONE}"


def client_kinds(accounts: tuple[str, ...]) -> tuple[ClientKind, ...]:
    return (ClientKind("legacy", (LEGACY_ENDPOINT,)),
            ClientKind("dualstack", (DUALSTACK_ENDPOINT,), also_aaaa=True),
            ClientKind("account", tuple(f"{a}.{ACCOUNT_ZONE}" for a in accounts) or (f"000000000000.{ACCOUNT_ZONE}",)))


class Metrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self.requests = Counter("racelab_client_requests", "Client requests by kind of client and outcome",
                                ["client", "outcome"], registry=registry)
        self.duration = Histogram("racelab_client_request_duration_seconds",
                                  "Wall time of one client request, DNS lookup included", ["client"],
                                  buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5),
                                  registry=registry)
        self.success_ratio = Gauge("racelab_client_success_ratio",
                                   f"Share of requests that succeeded over the last {WINDOW_SECONDS:g} wall seconds",
                                   ["client"], registry=registry)
        self.cache_entries = Gauge("racelab_dns_cache_entries", "Unexpired entries in the clients' DNS cache",
                                   ["state"], registry=registry)
        self.dns_lookups = Counter("racelab_client_dns_lookups", "DNS lookups made by clients",
                                   ["client", "qtype", "result"], registry=registry)
        self.dropped = Counter("racelab_client_dropped", "Arrivals dropped because too many requests were in flight",
                               registry=registry)
        self.in_flight = Gauge("racelab_client_in_flight", "Client requests in flight", registry=registry)


@dataclass
class KindStats:
    success_total: int = 0
    error_total: int = 0
    last_error: str = ""
    last_error_sim_seconds: float | None = None
    window: collections.deque = field(default_factory=collections.deque)  # (wall, outcome)
    failing: bool = False
    pending: int = 0  # consecutive checks that saw the ratio across 50% the other way

    def record(self, outcome: str, detail: str, wall: float, sim: float) -> None:
        if outcome == "ok":
            self.success_total += 1
        else:
            self.error_total += 1
            self.last_error = detail or outcome
            self.last_error_sim_seconds = sim
        self.window.append((wall, outcome))

    def check(self, horizon: float) -> tuple[float | None, str | None, collections.Counter]:
        """Drop outcomes older than `horizon` (wall). Returns the success ratio of the window (None if
        empty), "failing" or "recovered" when it crossed 50% and held for CONFIRM_CHECKS checks, and the
        window's outcome counts."""
        while self.window and self.window[0][0] < horizon:
            self.window.popleft()
        outcomes = collections.Counter(o for _, o in self.window)
        total = len(self.window)
        if total == 0:
            return None, None, outcomes
        ratio = outcomes["ok"] / total
        if total < MIN_SAMPLES:
            return ratio, None, outcomes
        crossing = ratio < 0.5 if not self.failing else ratio >= 0.5
        self.pending = self.pending + 1 if crossing else 0
        if self.pending < CONFIRM_CHECKS:
            return ratio, None, outcomes
        self.pending = 0
        self.failing = not self.failing
        return ratio, "failing" if self.failing else "recovered", outcomes


class Workload:
    def __init__(self, *, resolver: Resolver, settings: WorkloadSettings, lb_port: int,
                 sim_now: Callable[[], float], sim_rate: Callable[[], float], rng: random.Random,
                 tracer: trace.Tracer | None = None, registry: CollectorRegistry = REGISTRY,
                 publish: Callable[[str, str, Mapping[str, str]], None] | None = None,
                 channel_factory: Callable[[str], grpc.aio.Channel] | None = None,
                 wall: Callable[[], float] = time.monotonic):
        self.resolver = resolver
        self.settings = settings
        self.lb_port = lb_port
        self.sim_now = sim_now
        self.sim_rate = sim_rate
        self.rng = rng
        self.tracer = tracer or trace.get_tracer("racelab.workload")
        self.metrics = Metrics(registry)
        self.publish = publish
        self.wall = wall
        if channel_factory is None:
            from services.runtime.service import channel as channel_factory
        self._channel_factory = channel_factory
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, dynamodb_pb2_grpc.DynamoDBStub] = {}
        self.kinds = client_kinds(tuple(settings.accounts))
        self.stats = {k.kind: KindStats() for k in self.kinds}
        self._in_flight: set[asyncio.Task] = set()
        self.dropped = 0
        for state in ("positive", "negative"):
            self.metrics.cache_entries.labels(state).set_function(
                lambda state=state: self.resolver.cache_counts()[state])
        self.metrics.in_flight.set_function(lambda: len(self._in_flight))
        for k in self.kinds:  # every series exists from the start
            for outcome in OUTCOMES:
                self.metrics.requests.labels(k.kind, outcome)

    # ---- traffic ----

    async def run(self, stopping: asyncio.Event) -> None:
        """Poisson arrivals until `stopping` is set; then wait briefly for what is in flight."""
        ratios = asyncio.ensure_future(self._ratio_loop(stopping))
        loop = asyncio.get_running_loop()
        rate = self.settings.requests_per_second
        next_at = loop.time()
        try:
            while not stopping.is_set():
                if rate <= 0:
                    await _wait(stopping, 1.0)
                    continue
                next_at += self.rng.expovariate(rate)
                now = loop.time()
                if next_at < now - 1.0:
                    next_at = now  # the loop stalled: do not fire a second's backlog at once
                if next_at > now:
                    await _wait(stopping, next_at - now)
                    if stopping.is_set():
                        break
                self.spawn(self.rng.choice(self.kinds))
        finally:
            ratios.cancel()
            if self._in_flight:
                await asyncio.wait(set(self._in_flight), timeout=2.0)

    def spawn(self, kind: ClientKind) -> asyncio.Task | None:
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            self.dropped += 1
            self.metrics.dropped.inc()
            return None
        task = asyncio.ensure_future(self.request(kind))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return task

    async def request(self, kind: ClientKind) -> str:
        """One customer request: resolve, pick an address, call DynamoDB. Returns the outcome."""
        start = time.perf_counter()
        name = self.rng.choice(kind.names)
        # Each request is its own trace: a customer call, not part of ours.
        with self.tracer.start_as_current_span("client.request", context=otel_context.Context(),
                                               kind=trace.SpanKind.CLIENT) as span:
            span.set_attribute("racelab.client.kind", kind.kind)
            span.set_attribute("racelab.endpoint", name)
            outcome, detail = await self._do(kind, name, span)
            span.set_attribute("racelab.client.outcome", outcome)
            if outcome != "ok":
                span.set_attribute("error.type", outcome)
                span.set_status(trace.Status(trace.StatusCode.ERROR, detail))
            trace_id = format(span.get_span_context().trace_id, "032x")
        elapsed = time.perf_counter() - start
        self._record(kind, outcome, detail, elapsed, trace_id)
        return outcome

    async def _do(self, kind: ClientKind, name: str, span: trace.Span) -> tuple[str, str]:
        aaaa = asyncio.ensure_future(self._lookup_counted(kind, name, "AAAA")) if kind.also_aaaa else None
        try:
            try:
                answer = await self._lookup_counted(kind, name, "A", raise_errors=True)
            except NoData as exc:
                return "dns_nodata", f"NODATA for {name}" + (" (cached)" if exc.cached else "")
            except NXDomain as exc:
                return "dns_nxdomain", f"NXDOMAIN for {name}" + (" (cached)" if exc.cached else "")
            except DnsError as exc:
                return "dns_error", str(exc)
            address = self.rng.choice(answer.addresses)
            span.set_attribute("server.address", address)
            span.set_attribute("server.port", self.lb_port)
            timeout = self.call_timeout()
            stub = self._stub(address)
            key = dynamodb_pb2.ItemKey(partition_key=f"customer-{self.rng.randrange(1000)}")
            try:
                if self.rng.random() < 0.8:
                    await stub.GetItem(dynamodb_pb2.GetItemRequest(table=TABLE, key=key), timeout=timeout)
                else:
                    await stub.PutItem(dynamodb_pb2.PutItemRequest(table=TABLE, key=key,
                                                                   attributes={"client": kind.kind}),
                                       timeout=timeout)
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                text = f"{code.name if code else 'error'} from {address}:{self.lb_port}"
                if code is grpc.StatusCode.DEADLINE_EXCEEDED:
                    return "timeout", text
                if code is grpc.StatusCode.UNAVAILABLE:
                    return "connect_error", text
                return "error", text
            return "ok", ""
        finally:
            if aaaa is not None:
                await aaaa

    async def _lookup_counted(self, kind: ClientKind, name: str, qtype: str, raise_errors: bool = False):
        try:
            answer = await self.resolver.lookup(name, qtype)
        except DnsError as exc:
            self.metrics.dns_lookups.labels(kind.kind, qtype, exc.error_type).inc()
            if raise_errors:
                raise
            return None
        self.metrics.dns_lookups.labels(kind.kind, qtype, "NOERROR").inc()
        return answer

    def call_timeout(self) -> float:
        return wall_deadline(self.settings.call_timeout_seconds, self.sim_rate(), MIN_CALL_TIMEOUT)

    def _stub(self, address: str) -> dynamodb_pb2_grpc.DynamoDBStub:
        stub = self._stubs.get(address)
        if stub is None:
            target = f"[{address}]:{self.lb_port}" if ":" in address else f"{address}:{self.lb_port}"
            self._channels[address] = self._channel_factory(target)
            stub = self._stubs[address] = dynamodb_pb2_grpc.DynamoDBStub(self._channels[address])
        return stub

    # ---- accounting ----

    def _record(self, kind: ClientKind, outcome: str, detail: str, elapsed: float, trace_id: str) -> None:
        self.metrics.requests.labels(kind.kind, outcome).inc()
        self.metrics.duration.labels(kind.kind).observe(elapsed, exemplar={"trace_id": trace_id})
        self.stats[kind.kind].record(outcome, detail, self.wall(), self.sim_now())

    async def _ratio_loop(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            self.check_ratios()
            await _wait(stopping, 0.5)

    def check_ratios(self) -> None:
        """Update the success-ratio gauges; publish `clients.errors` when a kind crosses 50%.

        Called every half second. A crossing counts once it has held for CONFIRM_CHECKS checks.
        """
        horizon = self.wall() - WINDOW_SECONDS
        for kind in self.kinds:
            ratio, crossing, outcomes = self.stats[kind.kind].check(horizon)
            if ratio is None:
                continue
            self.metrics.success_ratio.labels(kind.kind).set(ratio)
            if crossing == "failing":
                errors = {o: n for o, n in outcomes.items() if o != "ok"}
                worst = max(errors, key=errors.__getitem__)
                self._publish(f"clients of {kind.endpoint}: {_percent(1 - ratio)}% errors ({OUTCOME_WORDS[worst]})",
                              {"client": kind.kind, "endpoint": kind.endpoint, "state": "failing",
                               "success_ratio": f"{ratio:.3f}", "error": worst})
            elif crossing == "recovered":
                self._publish(f"clients of {kind.endpoint} recovered: {_percent(ratio)}% ok",
                              {"client": kind.kind, "endpoint": kind.endpoint, "state": "recovered",
                               "success_ratio": f"{ratio:.3f}"})

    def _publish(self, message: str, attributes: Mapping[str, str]) -> None:
        if self.publish is not None:
            self.publish("clients.errors", message, attributes)

    # ---- the gRPC face ----

    def describe(self) -> workload_pb2.DescribeClientsResponse:
        clients = []
        for kind in self.kinds:
            s = self.stats[kind.kind]
            msg = workload_pb2.ClientStats(kind=kind.kind, success_total=s.success_total,
                                           error_total=s.error_total, last_error=s.last_error)
            if s.last_error_sim_seconds is not None:
                msg.last_error_sim_seconds = s.last_error_sim_seconds
            clients.append(msg)
        return workload_pb2.DescribeClientsResponse(clients=clients)

    async def close(self) -> None:
        for task in list(self._in_flight):
            task.cancel()
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()
        self._stubs.clear()


class WorkloadServicer(workload_pb2_grpc.WorkloadServicer):
    def __init__(self, workload: Workload, dependents=None):
        self.workload = workload
        self.dependents = dependents  # services.workload.dependents.Dependents, or None

    async def DescribeClients(self, request, context):
        reply = self.workload.describe()
        if self.dependents is not None:
            reply.clients.extend(self.dependents.describe())
        return reply

    async def Control(self, request, context):
        if self.dependents is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "this workload runs no dependents")
        action = request.action.strip().lower().replace("_", "-")
        try:
            message = self.dependents.control(action)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        log.info("operators: %s", message)
        return workload_pb2.ControlResponse(message=message)


def _percent(x: float) -> int:
    return int(math.floor(x * 100 + 0.5))


async def _wait(event: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except asyncio.TimeoutError:
        pass
