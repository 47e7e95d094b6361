"""DynamoDB's load-balancer fleet: N load balancers, each its own gRPC server on
its own address, all in front of one table store.

Each LB registers with the planner under the address it serves on (retrying
until the planner answers), then reports its health every 10 simulated
seconds; a planner that no longer knows it (NOT_FOUND, e.g. it lost its fleet)
gets a fresh registration.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import grpc
from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram

from racelab.v1 import dynamodb_pb2, dynamodb_pb2_grpc, planner_pb2, planner_pb2_grpc
from services.core.plans import lb_address
from services.dynamodb.store import Condition, ConditionFailed, StoredItem, TableStore
from services.runtime.service import Context
from services.runtime.telemetry import exemplar

log = logging.getLogger("racelab.dynamodb")

REQUESTS = Counter("racelab_dynamodb_requests_total", "Requests served, by load balancer, operation and result",
                   ["lb", "operation", "result"])
DURATION = Histogram("racelab_dynamodb_request_duration_seconds", "Time to serve a request (wall seconds)",
                     ["operation"], buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5))
ITEMS = Gauge("racelab_dynamodb_items", "Items stored across all tables")

HEALTH_INTERVAL_SECONDS = 10.0  # simulated
MIN_WALL_SLEEP = 2.0  # wall seconds: 24 LBs reporting every 10 simulated s were ~100 calls a wall second
DEFAULT_QUERY_LIMIT = 100
MAX_QUERY_LIMIT = 1000
MAX_BATCH_WRITE = 1000


@dataclass(frozen=True)
class LbSpec:
    index: int  # 1-based
    lb_id: str
    listen: str  # HOST:PORT the server binds
    ipv4: str  # what it registers under
    ipv6: str
    availability_zone: str
    capacity: int


def fleet_specs(count: int, prefix: str, port: int, zones: tuple[str, ...], capacity: int,
                advertise: str | None = None, first: int = 1) -> list[LbSpec]:
    """LBs number `first` .. `first + count - 1` of the fleet (a pod of a StatefulSet serves one)."""
    specs = []
    for i in range(first, first + count):
        ipv4 = advertise or lb_address(prefix, i)
        listen = f"0.0.0.0:{port}" if advertise else f"{ipv4}:{port}"
        specs.append(LbSpec(i, f"lb-{i:03d}", listen, ipv4, f"fd00::1:{i}", zones[(i - 1) % len(zones)], capacity))
    return specs


def _item(it: StoredItem) -> dynamodb_pb2.Item:
    return dynamodb_pb2.Item(key=dynamodb_pb2.ItemKey(partition_key=it.partition_key, sort_key=it.sort_key),
                             attributes=it.attributes, version=it.version)


def _condition(msg: dynamodb_pb2.WriteCondition, present: bool) -> Condition | None:
    if not present:
        return None
    which = msg.WhichOneof("condition")
    if which == "expected_version":
        return Condition(expected_version=msg.expected_version)
    if which == "must_not_exist" and msg.must_not_exist:
        return Condition(must_not_exist=True)
    return None


class LoadBalancerService(dynamodb_pb2_grpc.DynamoDBServicer):
    """One LB's face of the shared store."""

    def __init__(self, lb_id: str, store: TableStore):
        self.lb_id = lb_id
        self.store = store

    async def _serve(self, operation: str, context, fn):
        started = time.perf_counter()
        result = "ok"
        try:
            return fn()
        except ConditionFailed as exc:
            result = "condition_failed"
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"ConditionalCheckFailed: {exc}")
        except ValueError as exc:
            result = "invalid"
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        finally:
            REQUESTS.labels(self.lb_id, operation, result).inc()
            span = trace.get_current_span()
            DURATION.labels(operation).observe(time.perf_counter() - started, exemplar=exemplar(span))
            ITEMS.set(self.store.count)

    @staticmethod
    def _key(table: str, key: dynamodb_pb2.ItemKey) -> tuple[str, str, str]:
        if not table:
            raise ValueError("table is empty")
        if not key.partition_key:
            raise ValueError("key.partition_key is empty")
        return table, key.partition_key, key.sort_key

    async def GetItem(self, request, context):
        def fn():
            item = self.store.get(*self._key(request.table, request.key))
            if item is None:
                return dynamodb_pb2.GetItemResponse(found=False, lb_id=self.lb_id)
            return dynamodb_pb2.GetItemResponse(found=True, item=_item(item), lb_id=self.lb_id)
        return await self._serve("GetItem", context, fn)

    async def PutItem(self, request, context):
        def fn():
            item = self.store.put(*self._key(request.table, request.key), dict(request.attributes),
                                  _condition(request.condition, request.HasField("condition")))
            return dynamodb_pb2.PutItemResponse(item=_item(item), lb_id=self.lb_id)
        return await self._serve("PutItem", context, fn)

    async def DeleteItem(self, request, context):
        def fn():
            deleted = self.store.delete(*self._key(request.table, request.key),
                                        _condition(request.condition, request.HasField("condition")))
            return dynamodb_pb2.DeleteItemResponse(deleted=deleted, lb_id=self.lb_id)
        return await self._serve("DeleteItem", context, fn)

    async def Query(self, request, context):
        def fn():
            if not request.table:
                raise ValueError("table is empty")
            if not request.partition_key:
                raise ValueError("partition_key is empty")
            limit = min(request.limit or DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT)
            items, last = self.store.query(request.table, request.partition_key, limit, request.start_after_sort_key)
            return dynamodb_pb2.QueryResponse(items=[_item(i) for i in items], last_evaluated_sort_key=last,
                                              lb_id=self.lb_id)
        return await self._serve("Query", context, fn)

    async def BatchWriteItem(self, request, context):
        def fn():
            if not 1 <= len(request.puts) <= MAX_BATCH_WRITE:
                raise ValueError(f"puts: expected 1 to {MAX_BATCH_WRITE} items, got {len(request.puts)}")
            # Every key is checked before anything is written: a bad item writes nothing.
            items = []
            for i, put in enumerate(request.puts):
                try:
                    _, pk, sk = self._key(request.table, put.key)
                except ValueError as exc:
                    raise ValueError(f"puts[{i}]: {exc}") from None
                items.append((pk, sk, dict(put.attributes)))
            written = self.store.put_many(request.table, items)
            return dynamodb_pb2.BatchWriteItemResponse(written=written, lb_id=self.lb_id)
        return await self._serve("BatchWriteItem", context, fn)


class Registrar:
    """Keeps one LB known to the planner: register (until it answers), then report health."""

    def __init__(self, ctx: Context, planner: planner_pb2_grpc.PlannerStub, spec: LbSpec, endpoints: list[str]):
        self.ctx = ctx
        self.planner = planner
        self.spec = spec
        self.endpoints = endpoints
        self.registered = asyncio.Event()

    def _lb(self) -> planner_pb2.LoadBalancer:
        s = self.spec
        return planner_pb2.LoadBalancer(lb_id=s.lb_id, ipv4=s.ipv4, ipv6=s.ipv6, availability_zone=s.availability_zone,
                                        capacity=s.capacity, endpoints=self.endpoints)

    async def _sleep(self, sim_seconds: float) -> bool:
        """False if stopping."""
        try:
            await asyncio.wait_for(self.ctx.stopping.wait(), timeout=max(MIN_WALL_SLEEP, self.ctx.clock.wall_until(
                self.ctx.clock.now() + sim_seconds)))
            return False
        except asyncio.TimeoutError:
            return True

    async def run(self) -> None:
        warned = False
        while not self.ctx.stopping.is_set():
            if not self.registered.is_set():
                try:
                    await self.planner.RegisterLoadBalancer(
                        planner_pb2.RegisterLoadBalancerRequest(load_balancer=self._lb()), timeout=3)
                    self.registered.set()
                    log.info("%s registered with the planner as %s", self.spec.lb_id, self.spec.ipv4)
                    warned = False
                except grpc.RpcError as exc:
                    if exc.code() is grpc.StatusCode.INVALID_ARGUMENT:
                        log.error("the planner refuses %s: %s", self.spec.lb_id, exc.details())
                    elif not warned:
                        log.warning("%s: planner not answering (%s); retrying", self.spec.lb_id, exc.code().name)
                        warned = True
                    if not await self._sleep_wall(0.5):
                        return
                    continue
            if not await self._sleep(HEALTH_INTERVAL_SECONDS):
                return
            try:
                await self.planner.ReportHealth(planner_pb2.ReportHealthRequest(
                    lb_id=self.spec.lb_id, healthy=True, capacity=self.spec.capacity), timeout=3)
            except grpc.RpcError as exc:
                if exc.code() is grpc.StatusCode.NOT_FOUND:
                    log.warning("the planner forgot %s; registering again", self.spec.lb_id)
                    self.registered.clear()
                else:
                    log.debug("%s: health report failed: %s", self.spec.lb_id, exc.code().name)

    async def _sleep_wall(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.ctx.stopping.wait(), timeout=seconds)
            return False
        except asyncio.TimeoutError:
            return True
