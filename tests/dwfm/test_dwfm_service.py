"""The dwfm service shell: its spans tell what the fleet did in the order it happened."""

import asyncio
import random
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from services.dwfm.service import Dwfm
from services.runtime.ddbcall import LoadBalancers
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

    async def write_round(r, now):
        if not restarted_ns:
            restarted_ns.append(time.time_ns())
            fleet.restart_hosts()  # the operators' call, served while the tick waits on DynamoDB
        return True

    dwfm._write_round = write_round
    asyncio.run(dwfm.tick(t + 30 + SCENARIO.dwfm.lease_work_timeout_seconds + 60))
    timeouts = [s for s in exporter.get_finished_spans() if s.name == "dwfm.work_timeout"]
    assert restarted_ns and timeouts
    assert all(s.end_time < restarted_ns[0] for s in timeouts)
