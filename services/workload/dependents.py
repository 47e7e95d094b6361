"""The services that depend on DynamoDB and EC2, as live callers (INCIDENT.md §3, "Others").

Wired as services/lab/twin/cascade.py wires the twin, except that nothing here is
told whether DynamoDB answers: each dependent has its own resolver (its own
cache, negative answers included) and really calls.

- lambda_update: Lambda's control plane writes a function's new version to
  DynamoDB through the regional name.
- lambda_sqs: Lambda's SQS poller; a poll is a DynamoDB read. After
  `dependents.sqs_wedge_after` failed polls in a row it wedges ("stuck") until
  the operators restart it (Control restart-sqs-poller).
- sts, iam_signin: internal services: their backend reads DynamoDB through the
  regional name until the operators' mitigate-internal, then through the
  dual-stack name. STS's front door is behind an NLB (sts-nlb): resolve its
  name, connect through one of its nodes.
- app: a customer app behind app-nlb: resolve, connect.
- support_center: its backend reads DynamoDB through the regional name; the
  core decides whether its answer falls back to the dual-stack name (on failed
  responses only, as built: a NODATA answer is served as an invalid one).
- redshift: a customer looks at one of the Redshift clusters: ok unless it is
  stuck "modifying". Clusters whose host failed ask DWFM for replacement hosts
  (`launch_batch` hosts a RunInstances call).
- ecs_task: each new instance of an NLB app runs an ECS task, started if its
  target is healthy at the end of its start grace period (DescribeTargetHealth),
  stopped if not; a refused launch is a task that never ran. Counted per task.
- ec2_launch: EC2 customers: churn (terminations) and the launches that replace
  them, and each NLB app's own churn and growth, whose instances are registered
  with (and deregistered from) the NLB. The app targets of the start stand for
  instances in service long before the night.

Calls are open loop at CALLS_PER_SECOND per dependent per WALL second, each a
`dependent.call` span of its own trace.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Awaitable, Callable, Mapping

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from racelab.v1 import dwfm_pb2, dwfm_pb2_grpc, dynamodb_pb2, nlb_pb2, nlb_pb2_grpc, workload_pb2
from services.core.cascade import Ec2Customers, build_poller, build_redshift, build_support_center, build_tasks
from services.core.dependents import OK_RESPONSE, REDSHIFT, backend_response
from services.core.nlbdns import nlb_name
from services.core.plans import DUALSTACK_ENDPOINT, LEGACY_ENDPOINT
from services.runtime.ddbcall import OK, LoadBalancers, call_dynamodb
from services.runtime.dnsclient import DnsError, Resolver
from services.runtime.scenario import Scenario
from services.runtime.telemetry import unsampled
from services.workload.clients import OUTCOME_WORDS, WINDOW_SECONDS, KindStats, _percent, _wait, wall_deadline

log = logging.getLogger("racelab.workload")

DEPENDENTS = ("lambda_update", "lambda_sqs", "sts", "iam_signin", "app", "ec2_launch", "support_center", "redshift",
              "ecs_task")
DESCRIPTIONS = {"lambda_update": "Lambda function updates", "lambda_sqs": "Lambda's SQS poller", "sts": "STS",
                "iam_signin": "IAM console sign-in", "app": "the customer app behind app-nlb",
                "ec2_launch": "EC2 launches", "support_center": "Support Center", "redshift": "Redshift clusters",
                "ecs_task": "ECS/EKS/Fargate task launches"}
NOT_CALLED = ("ec2_launch", "ecs_task")  # acted on by the launch tick, not by a call loop
NO_DNS = ("ec2_launch", "redshift", "ecs_task")  # never resolve DynamoDB's names
RESULTS = ("ok", "dns_nodata", "dns_nxdomain", "dns_error", "connect_error", "timeout", "error", "stuck",
           "insufficient_capacity", "request_limit_exceeded", "invalid", "modifying", "task_stopped")
WORDS = {**OUTCOME_WORDS, "stuck": "poller stuck", "insufficient_capacity": "insufficient capacity",
         "request_limit_exceeded": "request limit exceeded", "invalid": "invalid responses",
         "modifying": "stuck modifying", "task_stopped": "tasks stopped unhealthy"}
CALLS_PER_SECOND = 4.0  # wall, per calling dependent: real load on 2 shared cores
LAUNCH_TICK_SECONDS = 0.25  # wall: EC2 customers act this often
MAX_IN_FLIGHT = 20  # per dependent
DETAIL_SAMPLE = 0.25  # share of calls traced with their DNS and gRPC child spans (every call has its own span)
MIN_CALL_TIMEOUT = 0.25  # wall seconds
APP_NLB, STS_NLB = "app-nlb", "sts-nlb"
TABLE = "dependents"
RUN_ERRORS = {dwfm_pb2.INSUFFICIENT_CAPACITY: "insufficient_capacity",
              dwfm_pb2.REQUEST_LIMIT_EXCEEDED: "request_limit_exceeded"}


class Metrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self.requests = Counter("racelab_dependent_requests", "Dependents' requests by result",
                                ["dependent", "result"], registry=registry)
        self.duration = Histogram("racelab_dependent_request_duration_seconds",
                                  "Wall time of one dependent's request", ["dependent"],
                                  buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5), registry=registry)
        self.success_ratio = Gauge("racelab_dependent_success_ratio",
                                   f"Share of a dependent's requests that succeeded over the last "
                                   f"{WINDOW_SECONDS:g} wall seconds", ["dependent"], registry=registry)
        self.support_responses = Counter("racelab_support_center_backend_responses",
                                         "Support Center's backend answers by kind (ok, invalid, failed) and "
                                         "whether its fallback was taken", ["response", "fallback"],
                                         registry=registry)
        self.redshift = Gauge("racelab_redshift_clusters", "Redshift clusters by state (available, modifying)",
                              ["state"], registry=registry)
        self.tasks_starting = Gauge("racelab_ecs_tasks_starting",
                                    "ECS tasks launched and still in their start grace period", registry=registry)


class Dependents:
    def __init__(self, *, scenario: Scenario, resolver_for: Callable[[str], Resolver], lbs: LoadBalancers,
                 dwfm: dwfm_pb2_grpc.DropletWorkflowStub | None, nlb: nlb_pb2_grpc.LoadBalancingStub | None,
                 sim_now: Callable[[], float], sim_rate: Callable[[], float], rng: random.Random,
                 registry: CollectorRegistry = REGISTRY, tracer: trace.Tracer | None = None,
                 publish: Callable[[str, str, Mapping[str, object]], None] | None = None,
                 wall: Callable[[], float] = time.monotonic, call_timeout_seconds: float = 2.0):
        self.scenario = scenario
        self.lbs = lbs
        self.dwfm = dwfm
        self.nlb = nlb
        self.sim_now = sim_now
        self.sim_rate = sim_rate
        self.rng = rng
        self.tracer = tracer or trace.get_tracer("racelab.workload")
        self.publish = publish
        self.wall = wall
        self.call_timeout_seconds = call_timeout_seconds
        self.metrics = Metrics(registry)
        nlbs = set(scenario.nlb.names)
        # A dependent runs when what it calls is there: the NLB apps need the nlb service and their NLB.
        self.active = [d for d in DEPENDENTS if not (
            (d == "app" and (nlb is None or APP_NLB not in nlbs)) or (d in ("ec2_launch", "redshift") and dwfm is None)
            or (d == "ecs_task" and (dwfm is None or nlb is None or not nlbs)))]
        self.resolvers = {d: resolver_for(d) for d in self.active if d not in NO_DNS}
        self.sts_front_door = nlb is not None and STS_NLB in nlbs
        self.stats = {d: KindStats() for d in self.active}
        self.poller = build_poller(scenario.dependents)
        self.support = build_support_center(scenario.fixes)
        self.redshift = build_redshift(scenario.dependents, scenario.seed, sim_now())
        self._last_launch_tick: tuple[float, float] | None = None  # (simulated, wall) of the last launch tick
        self.tasks = build_tasks(scenario.dependents)
        self.mitigated = False  # internal callers use the dual-stack name
        self.app_nlbs = [n for n in scenario.nlb.names if nlb is not None and dwfm is not None]
        # The EC2 customers' decisions (churn, launches, where targets go) are the core's, as in the twin.
        self.customers = Ec2Customers.build(scenario.dependents, scenario.fleet.availability_zones, self.app_nlbs,
                                            scenario.seed, sim_now())
        self._in_flight: dict[str, set[asyncio.Task]] = {d: set() for d in self.active}
        for d in self.active:
            for result in RESULTS:
                self.metrics.requests.labels(d, result)
        m = self.metrics
        for response in (OK_RESPONSE, "invalid", "failed"):
            for taken in ("taken", "not_taken"):
                m.support_responses.labels(response, taken)
        m.redshift.labels("available").set_function(self.redshift.available)
        m.redshift.labels("modifying").set_function(lambda: self.redshift.count - self.redshift.available())
        m.tasks_starting.set_function(lambda: len(self.tasks.pending))

    # ---- start ----

    async def start(self, stopping: asyncio.Event) -> None:
        """Launch each NLB app's standing targets and register them, in service (the twin does the same)."""
        count = self.customers.standing_targets
        for name in self.app_nlbs:
            while not stopping.is_set():
                try:
                    reply = await self.dwfm.RunInstances(dwfm_pb2.RunInstancesRequest(
                        count=count, group=name, preexisting=True, client_token=f"standing-{name}"), timeout=5)
                    if reply.error:
                        raise RuntimeError(reply.error_message)
                    for iid in reply.instance_ids:
                        if iid not in self.customers.targets[name]:  # a retry after a partial registration
                            await self._register(name, iid, in_service=True)
                    log.info("%s: %d standing targets launched and registered", name, len(reply.instance_ids))
                    break
                except (grpc.RpcError, RuntimeError) as exc:
                    log.warning("%s: cannot set up its standing targets yet (%s); retrying", name, _text(exc))
                    await _wait(stopping, 1.0)

    async def _register(self, name: str, iid: str, in_service: bool = False) -> None:
        zone = self.customers.place(name, iid)
        try:
            await self.nlb.RegisterTarget(nlb_pb2.RegisterTargetRequest(
                nlb_id=name, instance_id=iid, address=f"{iid}:80", availability_zone=zone, in_service=in_service),
                timeout=5)
        except grpc.RpcError:
            self.customers.targets[name].remove(iid)  # not a target of the app until registered
            raise

    # ---- running ----

    async def run(self, stopping: asyncio.Event) -> None:
        loops = [self._call_loop(d, stopping) for d in self.active if d not in NOT_CALLED]
        if "ec2_launch" in self.active:
            loops.append(self._launch_loop(stopping))
        loops.append(self._ratio_loop(stopping))
        tasks = [asyncio.ensure_future(x) for x in loops]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            pending = {t for s in self._in_flight.values() for t in s}
            if pending:
                await asyncio.wait(pending, timeout=2.0)

    async def _call_loop(self, dependent: str, stopping: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not stopping.is_set():
            next_at = max(next_at + self.rng.expovariate(CALLS_PER_SECOND), loop.time() - 1.0)
            await _wait(stopping, next_at - loop.time())
            if stopping.is_set():
                break
            flying = self._in_flight[dependent]
            if len(flying) >= MAX_IN_FLIGHT:
                continue  # open loop under back-pressure: the arrival is dropped
            task = asyncio.ensure_future(self.call(dependent))
            flying.add(task)
            task.add_done_callback(flying.discard)

    async def call(self, dependent: str) -> str:
        """One call of a dependent, as a `dependent.call` span of its own trace; returns the result."""
        work = {"lambda_update": self._lambda_update, "lambda_sqs": self._lambda_sqs, "sts": self._sts,
                "iam_signin": self._iam_signin, "app": self._app, "support_center": self._support_center,
                "redshift": self._redshift}[dependent]
        return await self._traced(dependent, work)

    async def _traced(self, dependent: str, work: Callable[[], Awaitable[tuple[str, str]]]) -> str:
        start = time.perf_counter()
        with self.tracer.start_as_current_span("dependent.call", context=otel_context.Context(),
                                               kind=trace.SpanKind.CLIENT) as span:
            span.set_attribute("racelab.dependent", dependent)
            if self.rng.random() < DETAIL_SAMPLE:
                result, detail = await work()
            else:
                with unsampled():
                    result, detail = await work()
            span.set_attribute("racelab.result", result)
            if result != OK:
                span.set_attribute("error.type", result)
                span.set_status(trace.Status(trace.StatusCode.ERROR, detail))
            trace_id = format(span.get_span_context().trace_id, "032x")
        self.metrics.requests.labels(dependent, result).inc()
        self.metrics.duration.labels(dependent).observe(time.perf_counter() - start, exemplar={"trace_id": trace_id})
        self.stats[dependent].record(result, detail, self.wall(), self.sim_now())
        return result

    def _outcome(self, dependent: str, result: str, detail: str = "", n: int = 1) -> None:
        """`n` outcomes a tick settled rather than a call made (ECS tasks)."""
        if n <= 0:
            return
        self.metrics.requests.labels(dependent, result).inc(n)
        for _ in range(n):
            self.stats[dependent].record(result, detail, self.wall(), self.sim_now())

    def call_timeout(self) -> float:
        return wall_deadline(self.call_timeout_seconds, self.sim_rate(), MIN_CALL_TIMEOUT)

    def _key(self) -> dynamodb_pb2.ItemKey:
        return dynamodb_pb2.ItemKey(partition_key=f"item-{self.rng.randrange(1000)}")

    async def _read(self, dependent: str, name: str) -> tuple[str, str]:
        request = dynamodb_pb2.GetItemRequest(table=TABLE, key=self._key())
        timeout = self.call_timeout()
        return await call_dynamodb(self.resolvers[dependent], self.lbs, name, self.rng,
                                   lambda stub: stub.GetItem(request, timeout=timeout))

    async def _lambda_update(self) -> tuple[str, str]:
        request = dynamodb_pb2.PutItemRequest(table=TABLE, key=self._key(), attributes={"function": "update"})
        timeout = self.call_timeout()
        return await call_dynamodb(self.resolvers["lambda_update"], self.lbs, LEGACY_ENDPOINT, self.rng,
                                   lambda stub: stub.PutItem(request, timeout=timeout))

    async def _lambda_sqs(self) -> tuple[str, str]:
        if self.poller.wedged:
            self.poller.record(False)
            return "stuck", "the SQS poller is wedged and polls no more"
        result, detail = await self._read("lambda_sqs", LEGACY_ENDPOINT)
        if self.poller.record(result == OK):
            self._publish(f"Lambda's SQS poller wedged after {self.poller.failures_in_a_row} failed polls in a row; "
                          f"it will not recover by itself", {"dependent": "lambda_sqs", "state": "wedged",
                                                             "error": result})
        return result, detail

    def _internal_endpoint(self) -> str:
        return DUALSTACK_ENDPOINT if self.mitigated else LEGACY_ENDPOINT

    async def _sts(self) -> tuple[str, str]:
        result, detail = await self._read("sts", self._internal_endpoint())
        if result != OK or not self.sts_front_door:
            return result, detail
        return await self._connect("sts", STS_NLB)

    async def _iam_signin(self) -> tuple[str, str]:
        return await self._read("iam_signin", self._internal_endpoint())

    async def _support_center(self) -> tuple[str, str]:
        result, detail = await self._read("support_center", LEGACY_ENDPOINT)
        response = backend_response(result)
        taken = self.support.falls_back(response)
        self.metrics.support_responses.labels(response, "taken" if taken else "not_taken").inc()
        if taken:
            return await self._read("support_center", DUALSTACK_ENDPOINT)
        if response == OK_RESPONSE:
            return OK, ""
        return "invalid", f"served an empty record ({detail}): the fallback triggers on failed responses only"

    async def _redshift(self) -> tuple[str, str]:
        cluster = self.rng.randrange(self.redshift.count)
        state = self.redshift.describe(cluster)
        if state == "available":
            return OK, ""
        return state, f"cluster {cluster} is modifying: its replacement host has not launched"

    async def _app(self) -> tuple[str, str]:
        return await self._connect("app", APP_NLB)

    async def _connect(self, dependent: str, nlb: str) -> tuple[str, str]:
        """Resolve the NLB's name, connect through one of its nodes."""
        name = nlb_name(nlb)
        try:
            answer = await self.resolvers[dependent].lookup(name, "A")
        except DnsError as exc:
            return exc.outcome, str(exc)
        address = self.rng.choice(answer.addresses)
        try:
            reply = await self.nlb.Connect(nlb_pb2.ConnectRequest(nlb_id=nlb, address=address),
                                           timeout=self.call_timeout())
        except grpc.RpcError as exc:
            return "error", f"nlb service: {_text(exc)}"
        if reply.ok:
            return OK, ""
        return reply.error or "connect_error", f"{reply.error} through {nlb}'s node in {reply.availability_zone}"

    # ---- EC2 customers ----

    async def _launch_loop(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            began = self.wall()
            try:
                await self.launch_tick(stopping)
            except grpc.RpcError as exc:
                log.warning("EC2 customers: %s", _text(exc))
            await _wait(stopping, max(0.0, LAUNCH_TICK_SECONDS - (self.wall() - began)))

    async def launch_tick(self, stopping: asyncio.Event | None = None) -> None:
        """Churn for every group, then the launch calls each group makes in the simulated time since the
        last tick. The calls and the general fleet's terminations fell due at their own times in that
        interval (the core interleaves them); they are made with the same spacing over this tick, so
        the launch throttle and Network Manager see them one by one, as the twin's, not all at once."""
        now, wall = self.sim_now(), self.wall()
        since, since_wall = self._last_launch_tick or (now, wall)
        self._last_launch_tick = (now, wall)
        fleet = await self.dwfm.DescribeFleet(dwfm_pb2.DescribeFleetRequest(), timeout=2)
        step = self.customers.step(now, fleet.instances_running)
        for name, gone in step.terminate_targets.items():
            for iid in gone:
                try:
                    await self.nlb.DeregisterTarget(nlb_pb2.DeregisterTargetRequest(nlb_id=name, instance_id=iid),
                                                    timeout=2)
                except grpc.RpcError as exc:
                    if exc.code() is not grpc.StatusCode.NOT_FOUND:
                        raise
            await self.dwfm.TerminateInstances(dwfm_pb2.TerminateInstancesRequest(
                instance_ids=dwfm_pb2.InstanceIds(ids=gone)), timeout=2)
        # Over most of one tick at most, whatever the last one took: the calls' own time must not
        # make the next tick longer, and that one's calls spread wider still.
        spread = 0.8 * min(wall - since_wall, LAUNCH_TICK_SECONDS)
        for at, launch, group, count in step.calls():  # terminations first at a tie
            if now > since:
                lag = (at - since) / (now - since) * spread - (self.wall() - wall)
                if lag > 0:
                    await _wait(stopping or asyncio.Event(), lag)
            if launch:
                await self._traced("ec2_launch", lambda: self._launch(group, count))
            else:
                await self.dwfm.TerminateInstances(dwfm_pb2.TerminateInstancesRequest(count=count), timeout=2)
        if "redshift" in self.active:
            await self._replace_redshift_hosts(now)
        if "ecs_task" in self.active:
            await self._settle_tasks(now)

    async def _replace_redshift_hosts(self, now: float) -> None:
        """The replacement hosts of every cluster that asks now, a batch a RunInstances call."""
        for asking in self.redshift.advance(now):
            await self._replace_hosts(asking)

    async def _replace_hosts(self, asking: list[int]) -> None:
        with self.tracer.start_as_current_span("redshift.replace_hosts", context=otel_context.Context()) as span:
            span.set_attribute("racelab.instances.count", len(asking))
            try:
                reply = await self.dwfm.RunInstances(dwfm_pb2.RunInstancesRequest(count=len(asking), group=REDSHIFT),
                                                     timeout=2)
            except grpc.RpcError as exc:
                result, message = "error", f"dwfm: {_text(exc)}"
            else:
                result = RUN_ERRORS.get(reply.error, "error") if reply.error else OK
                message = reply.error_message
                for cluster, _iid in zip(asking, reply.instance_ids):
                    self.redshift.launched(cluster)
            span.set_attribute("racelab.result", result)
            if result != OK:
                span.set_attribute("error.type", result)
                span.set_status(trace.Status(trace.StatusCode.ERROR, message))

    async def _settle_tasks(self, now: float) -> None:
        """Tasks past their start grace period: started if their target is healthy now, stopped if not."""
        due = self.tasks.due(now)
        if not due:
            return
        healthy: dict[str, bool] = {}
        for name in self.app_nlbs:
            try:
                reply = await self.nlb.DescribeTargetHealth(nlb_pb2.DescribeTargetHealthRequest(nlb_id=name),
                                                            timeout=2)
            except grpc.RpcError as exc:
                log.warning("ECS tasks: %s's target health unknown (%s); settled next tick", name, _text(exc))
                return
            healthy.update((t.instance_id, t.state == nlb_pb2.HEALTHY) for t in reply.targets)
        started, stopped = self.tasks.settle(due, healthy.get)
        self._outcome("ecs_task", OK, n=started)
        self._outcome("ecs_task", "task_stopped", "its target was not healthy when the start grace period ended",
                      n=stopped)

    async def _launch(self, group: str | None, count: int) -> tuple[str, str]:
        try:
            reply = await self.dwfm.RunInstances(dwfm_pb2.RunInstancesRequest(count=count, group=group or ""),
                                                 timeout=2)
        except grpc.RpcError as exc:
            return "error", f"dwfm: {_text(exc)}"
        if reply.error:
            if group is not None and "ecs_task" in self.active:  # tasks that never ran
                self._outcome("ecs_task", RUN_ERRORS.get(reply.error, "error"), reply.error_message, n=count)
            return RUN_ERRORS.get(reply.error, "error"), reply.error_message
        self.customers.launched(group, len(reply.instance_ids))
        if group is not None:
            for iid in reply.instance_ids:
                await self._register(group, iid)
            self.tasks.launched(reply.instance_ids, self.sim_now())
        return OK, ""

    # ---- the success ratio and its events ----

    async def _ratio_loop(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            self.check_ratios()
            await _wait(stopping, 0.5)

    def check_ratios(self) -> None:
        """Update the success-ratio gauges; publish `dependent.errors` when a dependent crosses 50%."""
        horizon = self.wall() - WINDOW_SECONDS
        for d in self.active:
            ratio, crossing, outcomes = self.stats[d].check(horizon)
            if ratio is None:
                continue
            self.metrics.success_ratio.labels(d).set(ratio)
            if crossing == "failing":
                errors = {o: n for o, n in outcomes.items() if o != OK}
                worst = max(errors, key=errors.__getitem__)
                self._publish(f"{DESCRIPTIONS[d]}: {_percent(1 - ratio)}% errors ({WORDS[worst]})",
                              {"dependent": d, "state": "failing", "success_ratio": f"{ratio:.3f}", "error": worst})
            elif crossing == "recovered":
                self._publish(f"{DESCRIPTIONS[d]} recovered: {_percent(ratio)}% ok",
                              {"dependent": d, "state": "recovered", "success_ratio": f"{ratio:.3f}"})

    def _publish(self, message: str, attributes: Mapping[str, object]) -> None:
        if self.publish is not None:
            self.publish("dependent.errors", message, attributes)

    # ---- the operators ----

    def control(self, action: str) -> str:
        if action == "mitigate-internal":
            self.mitigated = True
            return f"internal callers (STS, IAM sign-in) now reach DynamoDB through {DUALSTACK_ENDPOINT}"
        if action == "restart-sqs-poller":
            was = self.poller.wedged
            self.poller.restart()
            return "Lambda's SQS poller restarted" + (" (it was wedged)" if was else " (it was not wedged)")
        raise ValueError(f"unknown action {action!r}; known: mitigate-internal, restart-sqs-poller")

    def describe(self) -> list[workload_pb2.ClientStats]:
        out = []
        for d in self.active:
            s = self.stats[d]
            msg = workload_pb2.ClientStats(kind=d, success_total=s.success_total, error_total=s.error_total,
                                           last_error=s.last_error)
            if s.last_error_sim_seconds is not None:
                msg.last_error_sim_seconds = s.last_error_sim_seconds
            out.append(msg)
        return out


def _text(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc)
