"""The operators' cascade actions: each one call to the owning service (fakes here), with the
scenario's parameters; a service the director was not given is a clear failure."""

from __future__ import annotations

import grpc
import pytest
import pytest_asyncio

from racelab.v1 import (dwfm_pb2, dwfm_pb2_grpc, netmgr_pb2, netmgr_pb2_grpc, nlb_pb2, nlb_pb2_grpc, planner_pb2,
                        planner_pb2_grpc, workload_pb2, workload_pb2_grpc)
from services.director.operators import ActionFailed, Operators
from services.runtime.scenario import load_scenario

pytestmark = pytest.mark.asyncio

SCENARIO = load_scenario("oct-2025")


class Recorder:
    def __init__(self):
        self.calls: list[tuple[str, object]] = []


class FakeDwfm(dwfm_pb2_grpc.DropletWorkflowServicer):
    def __init__(self, rec):
        self.rec = rec

    async def SetThrottle(self, request, context):
        self.rec.calls.append(("SetThrottle", request))
        return dwfm_pb2.SetWorkflowThrottleResponse(launches_per_second=request.launches_per_second)

    async def RestartHosts(self, request, context):
        self.rec.calls.append(("RestartHosts", request))
        if request.WhichOneof("selection") == "host_ids":
            return dwfm_pb2.RestartHostsResponse(restarted_host_ids=request.host_ids.ids, dropped_work_items=3)
        return dwfm_pb2.RestartHostsResponse(restarted_host_ids=["dwfm-1", "dwfm-2"], dropped_work_items=900)

    async def RelaxThrottle(self, request, context):
        self.rec.calls.append(("RelaxThrottle", request))
        return dwfm_pb2.RelaxThrottleResponse(launches_per_second=0.5)


class FakeNetmgr(netmgr_pb2_grpc.NetworkManagerServicer):
    def __init__(self, rec):
        self.rec = rec

    async def SetThrottle(self, request, context):
        self.rec.calls.append(("NetmgrThrottle", request))
        return netmgr_pb2.SetPropagationThrottleResponse()


class FakeNlb(nlb_pb2_grpc.LoadBalancingServicer):
    def __init__(self, rec):
        self.rec = rec

    async def SetAutomaticFailover(self, request, context):
        self.rec.calls.append(("SetAutomaticFailover", request))
        return nlb_pb2.SetAutomaticFailoverResponse(enabled=request.enabled)


class FakeWorkload(workload_pb2_grpc.WorkloadServicer):
    def __init__(self, rec):
        self.rec = rec

    async def Control(self, request, context):
        self.rec.calls.append(("Control", request))
        if request.action not in ("mitigate-internal", "restart-sqs-poller"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown action {request.action!r}")
        return workload_pb2.ControlResponse(message=f"did {request.action}")


class FakePlanner(planner_pb2_grpc.PlannerServicer):
    def __init__(self, rec):
        self.rec = rec

    async def SetAutomation(self, request, context):
        self.rec.calls.append(("SetAutomation", request))
        return planner_pb2.SetAutomationResponse(enabled=request.enabled)


@pytest_asyncio.fixture
async def rig():
    rec = Recorder()
    server = grpc.aio.server()
    dwfm_pb2_grpc.add_DropletWorkflowServicer_to_server(FakeDwfm(rec), server)
    netmgr_pb2_grpc.add_NetworkManagerServicer_to_server(FakeNetmgr(rec), server)
    nlb_pb2_grpc.add_LoadBalancingServicer_to_server(FakeNlb(rec), server)
    workload_pb2_grpc.add_WorkloadServicer_to_server(FakeWorkload(rec), server)
    planner_pb2_grpc.add_PlannerServicer_to_server(FakePlanner(rec), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    ch = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    published = []

    def make(**services):
        return Operators(scenario=SCENARIO, sim_now=lambda: 0.0, sim_unix=lambda: 0.0, sim_sleep=None,
                         planner=planner_pb2_grpc.PlannerStub(ch), authority=None,
                         publish=lambda kind, message, **attrs: published.append((kind, message, attrs)),
                         **services)

    stubs = dict(dwfm=dwfm_pb2_grpc.DropletWorkflowStub(ch), netmgr=netmgr_pb2_grpc.NetworkManagerStub(ch),
                 nlb=nlb_pb2_grpc.LoadBalancingStub(ch), workload=workload_pb2_grpc.WorkloadStub(ch))
    yield rec, make, stubs, published
    await ch.close()
    await server.stop(None)


async def test_every_scheduled_cascade_action_reaches_its_service(rig):
    rec, make, stubs, published = rig
    ops = make(**stubs)
    for op in SCENARIO.operators:
        if op.action != "restore-dns":
            await ops.perform(op.action, op.params, scheduled_at=op.at)
    names = [name for name, _ in rec.calls]
    assert names == ["Control", "SetThrottle", "RestartHosts", "Control", "SetAutomation", "SetAutomaticFailover",
                     "RelaxThrottle", "SetAutomaticFailover"]
    throttle = rec.calls[1][1]
    params = next(op.params for op in SCENARIO.operators if op.action == "throttle-dwfm")
    assert throttle.enabled and throttle.requests_per_second == pytest.approx(params.admit_per_host_second)
    assert throttle.launches_per_second == pytest.approx(params.launches_per_second)
    assert rec.calls[2][1].WhichOneof("selection") is None  # every host
    assert [rec.calls[i][1].action for i in (0, 3)] == ["mitigate-internal", "restart-sqs-poller"]
    assert rec.calls[4][1].enabled is False
    assert [rec.calls[i][1].enabled for i in (5, 7)] == [False, True]
    assert rec.calls[6][1].relax_over_seconds == pytest.approx(8820)
    assert rec.calls[6][1].to_launches_per_second == pytest.approx(2.0)
    messages = [m for kind, m, a in published if a.get("result") == "done"]
    assert "2 DWFM host(s) (dwfm-1, dwfm-2): 900 work items dropped" in messages[2]
    assert messages[4].startswith("operators disabled DNS automation")


async def test_params_choose_hosts_and_throttle_network_manager(rig):
    rec, make, stubs, _ = rig
    ops = make(**stubs)
    await ops.perform("restart-dwfm-hosts", {"hosts": "dwfm-3, dwfm-5"})
    assert list(rec.calls[-1][1].host_ids.ids) == ["dwfm-3", "dwfm-5"]
    await ops.perform("restart-dwfm-hosts", {"count": "2"})
    assert rec.calls[-1][1].count == 2
    message = await ops.perform("throttle-dwfm", {"admit_per_host_second": "0.2", "propagations_per_second": "1.5"})
    assert [n for n, _ in rec.calls[-2:]] == ["SetThrottle", "NetmgrThrottle"]
    assert rec.calls[-1][1].requests_per_second == pytest.approx(1.5)
    assert "network propagation to 1.5" in message


@pytest.mark.parametrize("action, params, words", [
    ("throttle-dwfm", {"admit_per_host_second": "fast"}, "params.admit_per_host_second: not a number: 'fast'"),
    ("relax-ec2-throttle", {"over_seconds": "-5"}, "params.over_seconds: must be positive"),
    ("restart-dwfm-hosts", {"count": "0"}, "params.count: must be positive"),
])
async def test_bad_params_fail_clearly(rig, action, params, words):
    rec, make, stubs, published = rig
    with pytest.raises(ActionFailed) as err:
        await make(**stubs).perform(action, params)
    assert words in str(err.value)
    assert rec.calls == []
    assert published[-1][2]["result"] == "failed"


@pytest.mark.parametrize("action, setting", [
    ("throttle-dwfm", "--dwfm (RACELAB_DWFM)"), ("relax-ec2-throttle", "--dwfm"),
    ("mitigate-internal", "--workload (RACELAB_WORKLOAD)"), ("restart-sqs-poller", "--workload"),
    ("disable-nlb-failover", "--nlb (RACELAB_NLB)"),
])
async def test_an_action_without_its_service_names_the_missing_setting(rig, action, setting):
    _, make, _, _ = rig
    with pytest.raises(ActionFailed) as err:
        await make().perform(action)
    assert "the director was started without " + setting.split(" ")[0] in str(err.value)
    assert setting in str(err.value)
