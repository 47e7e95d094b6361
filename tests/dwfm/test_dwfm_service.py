"""The dwfm service shell: its spans tell what the fleet did in the order it happened, and its state
checks read and write the lease items in a real DynamoDB load balancer, found through DNS."""

import asyncio
import random
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import grpc
from prometheus_client import CollectorRegistry

from racelab.v1 import dynamodb_pb2_grpc

from services.core.leases import LEASE_TABLE, LeaseItem, LeaseWrite
from services.dwfm.service import Dwfm
from services.dynamodb.service import LoadBalancerService
from services.dynamodb.store import TableStore
from services.runtime.ddbcall import LoadBalancers
from services.runtime.dnsclient import Answer, NoData
from services.runtime.scenario import load_scenario

SCENARIO = load_scenario("oct-2025")


def test_work_timeouts_found_in_a_tick_are_spans_before_a_restart_served_during_its_writes():
    # CI's seed-2 run: two hosts' collapse timeouts, found by the tick before the operators' 04:14 restart,
    # were reported after it (the restart was served while the tick awaited its DynamoDB writes), and read as
    # lease work still timing out once the hosts had been restarted.
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    resolvers = {f"dwfm-{h + 1}": None for h in range(SCENARIO.dwfm.hosts)}
    dwfm = Dwfm(SCENARIO, 0.0, resolvers=resolvers, lbs=LoadBalancers(1), netmgr=None, rng=random.Random(1),
                registry=CollectorRegistry(), tracer=provider.get_tracer("test"))
    fleet = dwfm.fleet
    t = 0.0
    while fleet.leased() > 0:  # DynamoDB unreachable: every lease expires
        t += 30
        for r in fleet.advance(t).rounds:
            fleet.record_writes(r.host, t, r.checked, r.established, False)
    for h in fleet.hosts:  # DynamoDB is back: the whole fleet's lease work is admitted at once
        fleet.record_writes(h.name, t, [], [], True)
    fleet.advance(t + 30)
    assert fleet.in_flight() == SCENARIO.dwfm.droplets
    restarted_ns = []

    async def state_check(r, now):
        if not restarted_ns:
            restarted_ns.append(time.time_ns())
            fleet.restart_hosts()  # the operators' call, served while the tick waits on DynamoDB
        return LeaseWrite(r.host, r.checked, r.established, []), True

    dwfm._state_check = state_check
    asyncio.run(dwfm.tick(t + 30 + SCENARIO.dwfm.lease_work_timeout_seconds + 60))
    timeouts = [s for s in exporter.get_finished_spans() if s.name == "dwfm.work_timeout"]
    assert restarted_ns and timeouts
    assert all(s.end_time < restarted_ns[0] for s in timeouts)


class OneAddress:
    """A resolver whose answer is one address, or NODATA while `empty` (the emptied regional name)."""

    def __init__(self):
        self.empty = False

    async def lookup(self, name, qtype):
        if self.empty:
            raise NoData(name, qtype)
        return Answer(name, qtype, ("127.0.0.1",), 5, False)


def test_state_checks_keep_the_leases_in_dynamodb_and_fail_with_it():
    async def scenario():
        store = TableStore()
        server = grpc.aio.server()
        dynamodb_pb2_grpc.add_DynamoDBServicer_to_server(LoadBalancerService("lb-001", store), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        lbs = LoadBalancers(port, lambda target: grpc.aio.insecure_channel(target))
        resolver = OneAddress()
        dwfm = Dwfm(SCENARIO, 0.0, resolvers={f"dwfm-{h + 1}": resolver for h in range(SCENARIO.dwfm.hosts)},
                    lbs=lbs, netmgr=None, rng=random.Random(1), registry=CollectorRegistry())
        fleet = dwfm.fleet
        try:
            t = 0.0
            while t < SCENARIO.dwfm.state_check_interval_seconds + 60:  # every droplet checked once
                t += 30
                await dwfm.tick(t)
            assert store.count == SCENARIO.dwfm.droplets  # one lease item per droplet, under its host
            item = store.get(LEASE_TABLE, "dwfm-1", "droplet-00000")
            lease = LeaseItem.parse("dwfm-1", item.sort_key, item.attributes)
            assert lease.expires_at > t and lease.state == "renewed"
            # The table is the record: a lease it shows lapsed is lost, whatever DWFM remembers.
            store.put(LEASE_TABLE, "dwfm-1", "droplet-00008", {"expires_at": "1", "state": "renewed"})
            leased = fleet.leased()
            while not fleet.needs_lease[8]:
                t += 30
                await dwfm.tick(t)
            assert fleet.leased() < leased and fleet.expired_total == 1
            # The regional name empty: no read, no write; the leases run out one by one.
            resolver.empty = True
            versions = store.get(LEASE_TABLE, "dwfm-2", "droplet-00001").version
            while fleet.leased() > 0:
                t += 30
                await dwfm.tick(t)
            assert store.get(LEASE_TABLE, "dwfm-2", "droplet-00001").version == versions
            assert dwfm.metrics.state_checks.labels("failed")._value.get() > 0
        finally:
            await lbs.close()
            await server.stop(None)

    asyncio.run(scenario())
