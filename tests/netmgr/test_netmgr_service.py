"""Network Manager's gRPC face: what it answers about readiness, and the times a caller may give."""

import asyncio

import grpc
import pytest
from prometheus_client import CollectorRegistry

from racelab.v1 import netmgr_pb2
from services.core.propagation import PropagationConfig
from services.netmgr.service import NetworkManager, NetworkManagerServicer


class Aborted(Exception):
    pass


class Context:
    async def abort(self, code, details):
        self.code, self.details = code, details
        raise Aborted(details)


def servicer(clock: list[float]) -> tuple[NetworkManager, NetworkManagerServicer]:
    manager = NetworkManager(PropagationConfig(propagations_per_second=0.1, slowdown_items=1e9), 0.0,
                             registry=CollectorRegistry())
    return manager, NetworkManagerServicer(manager, lambda: clock[0])


def test_readiness_is_answered_as_of_the_call_with_when_each_network_came():
    clock = [100.0]
    manager, svc = servicer(clock)
    asyncio.run(svc.PropagateInstance(netmgr_pb2.PropagateInstanceRequest(
        instance_ids=["i-1", "i-2"], kind=netmgr_pb2.NEW), Context()))
    clock[0] = 115.0  # no tick since: the call itself serves the backlog up to now
    reply = asyncio.run(svc.GetInstancesNetwork(netmgr_pb2.GetInstancesNetworkRequest(
        instance_ids=["i-1", "i-2", "i-unknown"]), Context()))
    assert list(reply.ready) == [True, True, False]
    # The first at once (the server was idle), the second 10 s later at 0.1/s; 0 where not ready.
    assert list(reply.propagated_at_sim_seconds) == pytest.approx([100.0, 110.0, 0.0])


def test_a_batch_due_over_a_tick_is_queued_over_it_and_a_time_in_the_future_is_refused():
    clock = [200.0]
    manager, svc = servicer(clock)
    manager.tick(150.0)
    asyncio.run(svc.PropagateInstance(netmgr_pb2.PropagateInstanceRequest(
        instance_ids=["t-1", "t-2"], kind=netmgr_pb2.TERMINATED, due_since_sim_seconds=160.0), Context()))
    assert [p.queued_at for p in manager.backlog.queue] == [180.0, 200.0]
    ctx = Context()
    with pytest.raises(Aborted):
        asyncio.run(svc.PropagateInstance(netmgr_pb2.PropagateInstanceRequest(
            instance_ids=["t-3"], kind=netmgr_pb2.TERMINATED, due_since_sim_seconds=260.0), ctx))
    assert ctx.code == grpc.StatusCode.INVALID_ARGUMENT and "future" in ctx.details
    assert len(manager.backlog.queue) == 2  # nothing of the refused call was queued
