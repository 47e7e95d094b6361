"""The director: phases by simulated time, the event log, and the operators' restore-dns
against a fake Route 53 control API (core HostedZone semantics) and a fake planner."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from dataclasses import replace

import grpc
import pytest
import pytest_asyncio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from procs import auth_env
from prometheus_client import CollectorRegistry

from racelab.v1 import (
    authority_pb2,
    authority_pb2_grpc,
    director_pb2,
    director_pb2_grpc,
    planner_pb2,
    planner_pb2_grpc,
)
from services.core import tree
from services.core.lock import lock_changes, read_lock
from services.core.planner import Planner
from services.core.plans import LoadBalancer
from services.core.records import RRType
from services.core.resolve import Rcode, resolve_in
from services.core.zone import BatchRejected, HostedZone
from services.director.phases import BEFORE, Timeline
from services.director.service import Director, DirectorServicer
from services.runtime.clock import SimClock, parse_pdt
from services.runtime.scenario import OperatorAction, load_scenario
from services.runtime.wire import (
    BATCH_ERRORS_KEY,
    batch_errors_to_wire,
    change_from_wire,
    page_to_wire,
    plan_to_wire,
)

pytestmark = pytest.mark.asyncio

SCENARIO = load_scenario("oct-2025")
LEGACY = "dynamodb.us-east-1.amazonaws.com"
DUALSTACK = "dynamodb.us-east-1.api.aws"


def at(pdt: str) -> float:
    return parse_pdt(pdt, SCENARIO.epoch)


# ---- fakes ----

class FakeRouteControl(authority_pb2_grpc.RouteControlServicer):
    def __init__(self, zones: dict[str, HostedZone]):
        self.zones = zones
        self.batches = 0
        self.before_apply = None  # hook(zone): runs between the operator's read and its write

    async def ChangeResourceRecordSets(self, request, context):
        zone = self.zones.get(request.hosted_zone.rstrip("."))
        if zone is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no hosted zone {request.hosted_zone}")
        if self.before_apply is not None:
            hook, self.before_apply = self.before_apply, None
            hook(zone)
        self.batches += 1
        try:
            snap = zone.apply([change_from_wire(c) for c in request.changes])
        except BatchRejected as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc),
                                trailing_metadata=((BATCH_ERRORS_KEY, batch_errors_to_wire(exc)),))
        return authority_pb2.ChangeResourceRecordSetsResponse(change_id=f"c{self.batches}",
                                                              zone_version=snap.version)

    async def ListResourceRecordSets(self, request, context):
        zone = self.zones.get(request.hosted_zone.rstrip("."))
        if zone is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no hosted zone {request.hosted_zone}")
        snap = zone.snapshot
        return page_to_wire(snap, request)


class FakePlanner(planner_pb2_grpc.PlannerServicer):
    def __init__(self):
        self.plan = None
        self.automation = True

    async def SetAutomation(self, request, context):
        self.automation = request.enabled
        return planner_pb2.SetAutomationResponse(enabled=request.enabled)

    async def GetLatestPlan(self, request, context):
        if self.plan is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no plan yet")
        return planner_pb2.GetLatestPlanResponse(plan=plan_to_wire(self.plan))


class FakeWall:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_plans(n: int):
    planner = Planner(SCENARIO.endpoints, random.Random(3), last_generation=109)
    for i in range(6):
        planner.register(LoadBalancer(f"lb-{i + 1:03d}", f"127.0.1.{i + 1}", f"fd00::1:{i + 1}", f"use1-az{i % 3 + 1}"))
    return [planner.next_plan(float(k)) for k in range(n)]


def stuck_zones(plans):
    """The state at 02:25: every endpoint's alias points at generation 110's tree, which clean-up
    deleted; the rollback record points at it too."""
    old = plans[0]
    zones = {}
    for ep in old.endpoints:
        zone = HostedZone(ep.zone)
        zone.apply(tree.install_changes(ep, old.generation, 5))
        zone.apply(tree.activation_changes(ep.endpoint, ep.dual_stack, tree.tree_root(ep), tree.tree_root(ep)))
        zone.apply(lock_changes(ep.zone, None, "enactor-az2", 0, 2))
        zone.apply(tree.deletion_changes(zone.snapshot, [tree.tree_root(ep)]))
        assert resolve_in(zone.snapshot, ep.endpoint, RRType.A).always_empty
        zones[ep.zone] = zone
    return zones


class Rig:
    pass


@pytest_asyncio.fixture
async def rig(tmp_path):
    r = Rig()
    r.plans = make_plans(3)
    r.zones = stuck_zones(r.plans)
    r.route = FakeRouteControl(r.zones)
    r.planner = FakePlanner()
    r.planner.plan = r.plans[-1]
    r.server = grpc.aio.server()
    authority_pb2_grpc.add_RouteControlServicer_to_server(r.route, r.server)
    planner_pb2_grpc.add_PlannerServicer_to_server(r.planner, r.server)
    port = r.server.add_insecure_port("127.0.0.1:0")
    await r.server.start()
    r.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    r.wall = FakeWall(1_000_000.0)
    r.clock = SimClock(SCENARIO.schedule, SCENARIO.epoch, r.wall.t - SCENARIO.schedule.wall_at(at("02:25")),
                       wall=r.wall)
    r.registry = CollectorRegistry()
    r.state = tmp_path

    async def sim_sleep(seconds):  # the fake wall clock moves as far as the simulated sleep takes
        r.wall.t += r.clock.schedule.wall_at(r.clock.now() + seconds) - r.clock.schedule.wall_at(r.clock.now())

    def make(scenario=SCENARIO):
        director = Director(scenario, r.clock, event_log_path=tmp_path / "events.jsonl",
                            planner=planner_pb2_grpc.PlannerStub(r.channel),
                            authority=authority_pb2_grpc.RouteControlStub(r.channel),
                            registry=CollectorRegistry(), wall=r.wall)
        director.operators.sim_sleep = sim_sleep
        return director
    r.make = make
    r.director = make()
    yield r
    r.director.close()
    await r.channel.close()
    await r.server.stop(None)


# ---- phases and status ----

async def test_phase_by_simulated_time():
    timeline = Timeline(SCENARIO.epoch)
    assert timeline.phase_at(0) == BEFORE
    assert timeline.phase_at(at("23:47:59")) == BEFORE
    assert timeline.phase_at(at("23:48")) == "23:48 regional endpoint emptied"
    assert timeline.phase_at(at("00:10")) == "23:51 Lambda and STS errors begin"
    assert timeline.phase_at(at("02:25")).startswith("02:25 DNS restored by hand")
    assert timeline.phase_at(at("02:44")).startswith("02:40")
    assert timeline.phase_at(at("14:30")) == "14:20 event over"


async def test_status(rig):
    status = rig.director.status()
    assert status.sim_time_seconds == pytest.approx(at("02:25"))
    assert status.pdt_time == "2025-10-20 02:25:00 PDT"
    assert status.phase.startswith("02:25")
    assert status.scenario == "oct-2025" and status.seed == 1
    assert dict(status.fixes) == {"fencing": False, "protect-active": False, "heal-rollback": False,
                                  "nlb-velocity-control": False, "queue-throttle": False, "validating-fallback": False}
    assert status.speed == pytest.approx((at("02:45") - at("02:20")) / 15)
    assert rig.director.metrics.phase.labels(status.phase)._value.get() == 1
    assert rig.director.metrics.phase.labels(BEFORE)._value.get() == 0


# ---- events ----

async def test_events_stored_streamed_and_reloaded(rig):
    server = grpc.aio.server()
    director_pb2_grpc.add_DirectorServicer_to_server(DirectorServicer(rig.director), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = director_pb2_grpc.DirectorStub(ch)
            await stub.PublishEvent(director_pb2.PublishEventRequest(event=director_pb2.Event(
                source="enactor-az1", kind="enactor.flip", message="applied 110 over 145",
                attributes={"generation": "110"})))
            await stub.PublishEvent(director_pb2.PublishEventRequest(event=director_pb2.Event(
                sim_time_seconds=10.0, source="planner", kind="plan.published", message="published generation 120")))
            stream = stub.WatchEvents(director_pb2.WatchEventsRequest(since_sim_time_seconds=100.0))
            first = await asyncio.wait_for(stream.read(), 5)
            assert first.kind == "enactor.flip" and first.sim_time_seconds == pytest.approx(at("02:25"))
            await stub.PublishEvent(director_pb2.PublishEventRequest(event=director_pb2.Event(
                source="workload", kind="clients.errors", message="clients of x: 100% errors (NODATA)")))
            live = await asyncio.wait_for(stream.read(), 5)
            assert live.kind == "clients.errors"
            stream.cancel()
            only = stub.WatchEvents(director_pb2.WatchEventsRequest(kinds=["plan.published"]))
            assert (await asyncio.wait_for(only.read(), 5)).message == "published generation 120"
            only.cancel()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.PublishEvent(director_pb2.PublishEventRequest(event=director_pb2.Event(message="x")))
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.PerformAction(director_pb2.PerformActionRequest(action="reboot-the-region"))
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await server.stop(None)
    lines = [json.loads(line) for line in (rig.state / "events.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in lines] == ["enactor.flip", "plan.published", "clients.errors"]
    assert rig.registry is not None
    assert rig.director.metrics.events.labels("plan.published")._value.get() == 1
    rig.director.close()
    again = rig.make()
    assert [e.kind for e in again.log.events] == ["enactor.flip", "plan.published", "clients.errors"]
    assert again.log.events[0].attributes["generation"] == "110"
    again.close()


# ---- restore-dns ----

def addresses(zone: HostedZone, name: str, rtype: RRType) -> set[str]:
    outcomes = resolve_in(zone.snapshot, name, rtype)
    found = set()
    for _, response in outcomes.choices:
        assert response.rcode is Rcode.NOERROR and not response.is_nodata
        found |= set(response.addresses(rtype))
    return found


async def test_restore_dns_installs_tree_and_points_alias_and_rollback_at_it(rig):
    plan = rig.plans[-1]
    message = await rig.director.operators.perform("restore_dns")
    assert f"generation {plan.generation}" in message
    for ep in plan.endpoints:
        zone = rig.zones[ep.zone]
        want = {t.ipv4 for t in ep.targets if t.weight}
        assert addresses(zone, ep.endpoint, RRType.A) == want
        if ep.dual_stack:
            assert addresses(zone, ep.endpoint, RRType.AAAA) == {t.ipv6 for t in ep.targets if t.weight}
        assert tree.active_tree(zone.snapshot, ep.endpoint) == tree.tree_root(ep)
        assert tree.rollback_tree(zone.snapshot, ep.endpoint) == tree.tree_root(ep)
        assert read_lock(zone.snapshot)[1].holder == "operator"
    restored = [e for e in rig.director.log.events
                if e.kind == "operator.action" and e.attributes.get("result") == "restored"]
    assert len(restored) == len(plan.endpoints)
    assert restored[-1].message == f"operators restored {LEGACY} to generation {plan.generation} by hand"
    assert rig.director.metrics.operator_actions.labels("restore-dns")._value.get() == 1


def restored_events(rig):
    return [e for e in rig.director.log.events
            if e.kind == "operator.action" and e.attributes.get("result") == "restored"]


async def test_restore_dns_leaves_an_endpoint_that_still_answers_alone(rig):
    # An enactor already moved the dual-stack endpoint to a newer plan than the operators fetched:
    # restoring it to their plan could only move it backwards.
    older, newer = rig.plans[-2], rig.plans[-1]
    rig.planner.plan = older
    ep = newer.for_endpoint(DUALSTACK)
    zone = rig.zones[ep.zone]
    seen, _ = read_lock(zone.snapshot)
    zone.apply(lock_changes(ep.zone, seen, "enactor-az3", 0, 2) + tree.install_changes(ep, newer.generation, 5)
               + tree.activation_changes(ep.endpoint, ep.dual_stack, tree.tree_root(ep), tree.tree_root(ep)))
    version = zone.version
    message = await rig.director.operators.perform("restore_dns")
    assert "1 still answered and were left alone" in message
    assert zone.version == version and tree.active_generation(zone.snapshot, ep.endpoint) == newer.generation
    assert tree.active_generation(rig.zones[LEGACY].snapshot, LEGACY) == older.generation  # the broken one


async def test_restore_dns_reuses_an_installed_tree(rig):
    plan = rig.plans[-1]
    ep = plan.for_endpoint(LEGACY)
    zone = rig.zones[ep.zone]
    seen, _ = read_lock(zone.snapshot)
    zone.apply(lock_changes(ep.zone, seen, "enactor-az3", 0, 2) + tree.install_changes(ep, plan.generation, 5))
    await rig.director.operators.perform("restore-dns", {"endpoint": LEGACY})
    assert restored_events(rig)[-1].attributes["installed_tree"] == "false"
    assert tree.active_generation(zone.snapshot, LEGACY) == plan.generation


async def test_restore_dns_retries_after_losing_the_lock(rig):
    plan = rig.plans[-1]
    ep = plan.for_endpoint(LEGACY)

    def enactor_writes(zone):  # an enactor renews the lock between the operator's first read and write
        seen, _ = read_lock(zone.snapshot)
        zone.apply(lock_changes(zone.origin, seen, "enactor-az1", 0, 2))

    rig.route.before_apply = enactor_writes
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    rig.director.operators.tracer = provider.get_tracer("test")
    await rig.director.operators.perform("restore-dns", {"endpoint": LEGACY})
    [restore] = [s for s in spans.get_finished_spans() if s.name == "operator.restore"]
    assert restore.attributes["racelab.lock.attempt"] == 2  # lost the lock once, read again, wrote
    assert restore.attributes["racelab.batch.result"] == "committed"
    assert addresses(rig.zones[ep.zone], LEGACY, RRType.A) == {t.ipv4 for t in ep.targets if t.weight}


async def test_restore_dns_waits_out_an_unexpired_lock(rig):
    plan = rig.plans[-1]
    ep = plan.for_endpoint(LEGACY)
    zone = rig.zones[ep.zone]
    seen, _ = read_lock(zone.snapshot)
    zone.apply(lock_changes(ep.zone, seen, "enactor-az2", rig.clock.unix(), 2.0))
    slept = []

    async def sim_sleep(seconds):
        slept.append(seconds)
        rig.wall.t += rig.clock.schedule.wall_at(rig.clock.now() + seconds) - rig.clock.schedule.wall_at(rig.clock.now())

    rig.director.operators.sim_sleep = sim_sleep
    await rig.director.operators.perform("restore-dns", {"endpoint": LEGACY})
    assert slept and 0 < slept[0] <= 3.0
    assert read_lock(zone.snapshot)[1].holder == "operator"


async def test_restore_dns_without_a_plan_fails_plainly(rig):
    rig.planner.plan = None
    with pytest.raises(Exception) as err:
        await rig.director.operators.perform("restore-dns")
    assert "planner" in str(err.value)
    assert rig.director.log.events[-1].attributes["result"] == "failed"


async def test_scheduled_action_runs_once_even_across_restart(rig):
    scenario = replace(SCENARIO, operators=(OperatorAction(at("02:25") + 1, "restore-dns", {}),
                                            OperatorAction(at("02:25") + 2, "disable-dns-automation", {})))
    rig.director.close()
    director = rig.make(scenario)
    director.operators.sim_sleep = lambda s: asyncio.sleep(0.01)
    stopping = asyncio.Event()
    runner = asyncio.ensure_future(director.run(stopping))
    await asyncio.sleep(0.05)
    assert not any(e.kind == "operator.action" for e in director.log.events)
    rig.wall.t += 0.1  # 0.1 wall s is 10 simulated seconds here
    for _ in range(100):
        await asyncio.sleep(0.02)
        if sum(e.attributes.get("result") == "done" for e in director.log.events) == 2:
            break
    stopping.set()
    await runner
    done = [e for e in director.log.events if e.attributes.get("result") == "done"]
    assert [e.attributes["action"] for e in done] == ["restore-dns", "disable-dns-automation"]
    assert rig.route.batches == len(rig.plans[-1].endpoints)
    director.close()
    again = rig.make(scenario)
    assert again.action_done("restore-dns", at("02:25") + 1)
    stopping = asyncio.Event()
    runner = asyncio.ensure_future(again.run(stopping))
    await asyncio.sleep(0.1)
    stopping.set()
    await runner
    assert rig.route.batches == len(rig.plans[-1].endpoints)  # not repeated
    again.close()


# ---- settings ----

@pytest.mark.parametrize("args, words", [
    (["--listen", "127.0.0.1:0", "--authority", "127.0.0.1:1", "--state-dir", "/tmp"], "--planner"),
    (["--listen", "127.0.0.1:0", "--planner", "nope", "--authority", "127.0.0.1:1", "--state-dir", "/tmp"],
     "--planner"),
    (["--listen", "127.0.0.1:0", "--planner", "127.0.0.1:1", "--authority", "127.0.0.1:1"], "--state-dir"),
])
async def test_bad_settings_exit_2_with_one_line(args, words, monkeypatch):
    monkeypatch.delenv("RACELAB_STATE_DIR", raising=False)
    for name, value in auth_env().items():
        monkeypatch.setenv(name, value)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.director", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2, err.decode()
    assert len(lines) == 1 and words in lines[0], lines
