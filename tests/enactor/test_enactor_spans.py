"""Planner and one enactor in this process, spans to memory: a run links to the span that published its plan."""

from __future__ import annotations

import argparse
import asyncio
import time

import grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from racelab.v1 import planner_pb2_grpc
from services.core import tree
from services.core.plans import LoadBalancer
from services.enactor.driver import EnactorDriver
from services.planner.service import PlannerService
from services.runtime.clock import SimClock
from services.runtime.scenario import load_scenario
from services.runtime.service import Context
from services.runtime.telemetry import Telemetry
from procs import free_port, write_scenario
from enactor_fakes import FakeRouteControl, serve


def _ctx(service: str, instance: str, scenario, wall_start: float, tracer_provider, **args) -> Context:
    telemetry = Telemetry(tracer_provider.get_tracer(f"racelab.{service}"), tracer_provider, None)
    return Context(service, instance, argparse.Namespace(director=None, **args), scenario,
                   SimClock(scenario.schedule, scenario.epoch, wall_start), telemetry, asyncio.Event())


def test_run_links_to_the_plan_and_batches_are_its_children(tmp_path):
    scenario = load_scenario(str(write_scenario(tmp_path / "s.yaml", plan_interval=600)))
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    route = FakeRouteControl([e.name for e in scenario.endpoints])
    fake, fake_port = serve(route)
    wall_start = time.time()

    async def main() -> None:
        pctx = _ctx("planner", "planner", scenario, wall_start, provider, state_dir=str(tmp_path / "state"))
        planner = PlannerService(pctx, str(tmp_path / "state"))
        server = grpc.aio.server()
        planner_pb2_grpc.add_PlannerServicer_to_server(planner, server)
        port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
        await server.start()
        planner.core.register(LoadBalancer("lb-001", "127.0.1.1", "fd00::1:1", "use1-az1"))
        plan = await planner.publish("test")
        ectx = _ctx("enactor", "enactor-az1", scenario, wall_start, provider)
        driver = EnactorDriver(ectx, f"127.0.0.1:{port}", f"127.0.0.1:{fake_port}", None, 2.0)
        task = asyncio.ensure_future(driver.run())
        deadline = time.monotonic() + 10
        while not all(tree.active_generation(route.snapshot(ep.name), ep.name) == plan.generation
                      for ep in scenario.endpoints):
            assert time.monotonic() < deadline and not task.done(), "the enactor did not apply the plan"
            await asyncio.sleep(0.05)
        while driver.enactor.phase.value != "idle" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        ectx.stopping.set()
        await asyncio.wait_for(task, 5)
        pctx.stopping.set()
        await planner.close()
        await server.stop(None)

    try:
        asyncio.run(main())
    finally:
        fake.stop(None)
    spans = exporter.get_finished_spans()
    publish = [s for s in spans if s.name == "planner.publish"]
    runs = [s for s in spans if s.name == "enactor.run"]
    batches = [s for s in spans if s.name == "enactor.batch"]
    assert len(publish) == 1 and publish[0].attributes["racelab.plan.generation"] == 110
    assert len(runs) == 1
    run = runs[0]
    assert run.attributes["racelab.enactor.id"] == "enactor-az1"
    assert run.attributes["racelab.plan.generation"] == 110
    assert run.attributes["racelab.plan.previous_generation"] == 0
    assert run.attributes["racelab.run.outcome"] == "finished"
    assert [link.context.span_id for link in run.links] == [publish[0].context.span_id]
    assert all(b.parent.span_id == run.context.span_id for b in batches)
    steps = sorted((b.attributes["racelab.endpoint"], b.attributes["racelab.batch.step"]) for b in batches)
    assert steps == sorted((ep.name, step) for ep in scenario.endpoints for step in ("install", "flip"))
    assert {b.attributes["racelab.batch.result"] for b in batches} == {"committed"}
    assert all(b.attributes["racelab.tree.id"] for b in batches)
