"""The workload against a fake authority (UDP) and a fake DynamoDB load balancer (gRPC)."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys

import grpc
import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from racelab.v1 import workload_pb2, workload_pb2_grpc
from services.runtime.dnsclient import Resolver
from services.runtime.scenario import WorkloadSettings
from services.workload.clients import MIN_CALL_TIMEOUT, Workload, WorkloadServicer
from procs import auth_env
from workload_fakes import FakeClock, FakeDNS, FakeDynamoDB, start_fake_dynamodb

LEGACY = "dynamodb.us-east-1.amazonaws.com"
DUALSTACK = "dynamodb.us-east-1.api.aws"
ACCOUNT_ZONE = "ddb.us-east-1.api.aws"
ACCOUNT = "123456789012." + ACCOUNT_ZONE

pytestmark = pytest.mark.asyncio


class Harness:
    def __init__(self, dns, ddb, servicer, port, workload, clock, registry, events, wall):
        self.dns, self.ddb, self.servicer, self.port = dns, ddb, servicer, port
        self.workload, self.clock, self.registry, self.events, self.wall = workload, clock, registry, events, wall

    def count(self, client: str, outcome: str) -> float:
        return self.registry.get_sample_value("racelab_client_requests_total",
                                              {"client": client, "outcome": outcome}) or 0.0

    def kind(self, name: str):
        return next(k for k in self.workload.kinds if k.kind == name)


async def make_harness(settings=WorkloadSettings(requests_per_second=0, accounts=("123456789012",)),
                       servicer=None, lb_port=None, rate=1.0):
    dns = await FakeDNS().start()
    for zone in (LEGACY, DUALSTACK, ACCOUNT_ZONE):
        dns.zones[zone] = (900, 86400)
    dns.records[LEGACY] = {"A": (["127.0.0.1"], 5)}
    dns.records[DUALSTACK] = {"A": (["127.0.0.1"], 5), "AAAA": (["::1"], 5)}
    dns.records[ACCOUNT] = {"CNAME": (LEGACY, 300)}
    server, servicer, port = await start_fake_dynamodb(servicer=servicer)
    clock = FakeClock(0.0)
    wall = FakeClock(100.0)
    registry = CollectorRegistry()
    events = []
    resolver = Resolver(dns.address, clock, timeout=0.2, tries=1)
    workload = Workload(resolver=resolver, settings=settings, lb_port=lb_port or port, sim_now=clock,
                        sim_rate=lambda: rate, rng=random.Random(7), registry=registry,
                        publish=lambda kind, message, attrs: events.append((kind, message, dict(attrs))),
                        channel_factory=grpc.aio.insecure_channel, wall=wall)
    return Harness(dns, server, servicer, port, workload, clock, registry, events, wall)


@pytest_asyncio.fixture
async def h():
    harness = await make_harness()
    yield harness
    await harness.workload.close()
    await harness.workload.resolver.close()
    await harness.ddb.stop(None)
    harness.dns.close()


async def test_every_kind_succeeds_against_healthy_dns(h):
    for name in ("legacy", "dualstack", "account"):
        for _ in range(3):
            assert await h.workload.request(h.kind(name)) == "ok"
        assert h.count(name, "ok") == 3
    assert h.servicer.calls == 9
    assert h.registry.get_sample_value("racelab_client_dns_lookups_total",
                                       {"client": "dualstack", "qtype": "AAAA", "result": "NOERROR"}) == 3
    assert h.registry.get_sample_value("racelab_dns_cache_entries", {"state": "positive"}) >= 3


async def test_nodata_counted_for_legacy_and_account_not_dualstack(h):
    assert await h.workload.request(h.kind("legacy")) == "ok"
    h.dns.records[LEGACY] = {}  # 23:48: every IP of the regional endpoint gone
    h.clock.advance(6)  # the positive answer expires
    for _ in range(4):
        assert await h.workload.request(h.kind("legacy")) == "dns_nodata"
        assert await h.workload.request(h.kind("account")) == "dns_nodata"
        assert await h.workload.request(h.kind("dualstack")) == "ok"
    assert h.count("legacy", "dns_nodata") == 4 and h.count("account", "dns_nodata") == 4
    assert h.count("dualstack", "ok") == 4
    # cached negatively: the authority saw one A query for the legacy name after it emptied
    assert h.dns.count(LEGACY, "A") == 2
    assert h.registry.get_sample_value("racelab_dns_cache_entries", {"state": "negative"}) == 1

    stats = {c.kind: c for c in h.workload.describe().clients}
    assert stats["legacy"].error_total == 4 and stats["legacy"].success_total == 1
    assert stats["legacy"].last_error.startswith("NODATA for dynamodb.us-east-1.amazonaws.com")
    assert stats["legacy"].HasField("last_error_sim_seconds")
    assert not stats["dualstack"].HasField("last_error_sim_seconds")

    # restored by hand; the clients see it once the negative TTL (900 s simulated) runs out
    h.dns.records[LEGACY] = {"A": (["127.0.0.1"], 5)}
    h.clock.advance(600)
    assert await h.workload.request(h.kind("legacy")) == "dns_nodata"
    h.clock.advance(301)
    assert await h.workload.request(h.kind("legacy")) == "ok"


async def test_nxdomain_and_servfail_outcomes(h):
    h.dns.records.pop(ACCOUNT)  # an account name nobody created
    assert await h.workload.request(h.kind("account")) == "dns_nxdomain"
    h.dns.modes[DUALSTACK] = "SERVFAIL"
    assert await h.workload.request(h.kind("dualstack")) == "dns_error"


async def test_connect_error_when_nothing_listens():
    h = await make_harness(lb_port=1)  # nothing serves on port 1
    try:
        assert await h.workload.request(h.kind("legacy")) == "connect_error"
    finally:
        await h.workload.close()
        await h.ddb.stop(None)
        h.dns.close()


async def test_timeout_uses_simulated_deadline_at_current_rate():
    # 2 simulated seconds at 2x is 1 s of wall time; the LB takes 1.3 s.
    h = await make_harness(servicer=FakeDynamoDB(delay=1.3), rate=2.0)
    try:
        assert h.workload.call_timeout() == pytest.approx(1.0)
        assert await h.workload.request(h.kind("legacy")) == "timeout"
    finally:
        await h.workload.close()
        await h.ddb.stop(None)
        h.dns.close()


async def test_timeout_never_under_the_floor_when_time_flies():
    # 2 simulated seconds at 40x would be 50 ms: a busy machine's round trip, not the incident's. The LB
    # takes 300 ms and the call still succeeds.
    h = await make_harness(servicer=FakeDynamoDB(delay=0.3), rate=40.0)
    try:
        assert h.workload.call_timeout() == pytest.approx(MIN_CALL_TIMEOUT)
        assert await h.workload.request(h.kind("legacy")) == "ok"
    finally:
        await h.workload.close()
        await h.ddb.stop(None)
        h.dns.close()


async def test_clients_errors_published_on_crossing_only(h):
    for _ in range(6):
        await h.workload.request(h.kind("legacy"))
    h.workload.check_ratios()
    assert h.events == []
    assert h.registry.get_sample_value("racelab_client_success_ratio", {"client": "legacy"}) == 1.0
    h.dns.records[LEGACY] = {}
    h.clock.advance(6)
    h.wall.advance(11)  # the healthy requests leave the 10 s window
    for _ in range(6):
        await h.workload.request(h.kind("legacy"))
    h.workload.check_ratios()
    assert h.events == []  # a crossing must hold for two checks in a row
    h.workload.check_ratios()
    h.workload.check_ratios()  # no change, no second event
    assert [m for _, m, _ in h.events] == ["clients of dynamodb.us-east-1.amazonaws.com: 100% errors (NODATA)"]
    assert h.events[0][0] == "clients.errors"
    h.dns.records[LEGACY] = {"A": (["127.0.0.1"], 5)}
    h.clock.advance(901)
    h.wall.advance(11)
    for _ in range(6):
        await h.workload.request(h.kind("legacy"))
    h.workload.check_ratios()
    h.workload.check_ratios()
    assert h.events[-1][1] == "clients of dynamodb.us-east-1.amazonaws.com recovered: 100% ok"
    assert len(h.events) == 2


async def test_open_loop_poisson_arrivals_and_describe_over_grpc():
    h = await make_harness(settings=WorkloadSettings(requests_per_second=200, accounts=("123456789012",)))
    server = grpc.aio.server()
    workload_pb2_grpc.add_WorkloadServicer_to_server(WorkloadServicer(h.workload), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        stopping = asyncio.Event()
        runner = asyncio.ensure_future(h.workload.run(stopping))
        await asyncio.sleep(1.0)
        stopping.set()
        await runner
        total = sum(h.count(k, o) for k in ("legacy", "dualstack", "account")
                    for o in ("ok", "dns_nodata", "dns_nxdomain", "dns_error", "connect_error", "timeout", "error"))
        assert 120 <= total <= 300
        assert total == sum(h.count(k, "ok") for k in ("legacy", "dualstack", "account"))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            reply = await workload_pb2_grpc.WorkloadStub(ch).DescribeClients(workload_pb2.DescribeClientsRequest())
        assert [c.kind for c in reply.clients] == ["legacy", "dualstack", "account"]
        assert sum(c.success_total for c in reply.clients) == total
        assert all(c.success_total > 0 for c in reply.clients)
    finally:
        await server.stop(None)
        await h.workload.close()
        await h.ddb.stop(None)
        h.dns.close()


@pytest.mark.parametrize("args, words", [
    (["--listen", "127.0.0.1:0"], "--authority-dns"),
    (["--listen", "nonsense", "--authority-dns", "127.0.0.1:53"], "--listen"),
    (["--listen", "127.0.0.1:0", "--authority-dns", "127.0.0.1:53", "--lb-port", "x"], "--lb-port"),
])
async def test_bad_settings_exit_2_with_one_line(args, words):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.workload", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, **auth_env()})
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2, err.decode()
    assert len(lines) == 1 and words in lines[0]


async def test_request_span_has_dns_child_and_exemplar():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from prometheus_client.openmetrics.exposition import generate_latest

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    h = await make_harness()
    h.workload.tracer = h.workload.resolver.tracer = tracer
    try:
        assert await h.workload.request(h.kind("account")) == "ok"
    finally:
        await h.workload.close()
        await h.ddb.stop(None)
        h.dns.close()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    request, lookup = spans["client.request"], spans["dns.lookup"]
    assert request.parent is None
    assert lookup.parent.span_id == request.context.span_id
    assert request.attributes["racelab.client.kind"] == "account"
    assert request.attributes["racelab.endpoint"] == ACCOUNT
    assert request.attributes["racelab.client.outcome"] == "ok"
    assert lookup.attributes["racelab.dns.answer_count"] == 1
    exposition = generate_latest(h.registry).decode()
    assert f'trace_id="{request.context.trace_id:032x}"' in exposition
