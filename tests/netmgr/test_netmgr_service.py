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


def test_a_call_reported_late_is_queued_when_it_was_made_among_those_waiting_and_boots_from_then():
    # The workload reports a tick's launches after the tick: each carries the time it was made.
    clock = [100.0]
    manager = NetworkManager(PropagationConfig(propagations_per_second=0.001, slowdown_items=1e9,
                                               boot_seconds=600.0), 0.0, registry=CollectorRegistry())
    svc = NetworkManagerServicer(manager, lambda: clock[0])
    propagate = lambda ids, **kw: asyncio.run(svc.PropagateInstance(netmgr_pb2.PropagateInstanceRequest(
        instance_ids=ids, kind=netmgr_pb2.NEW, **kw), Context()))
    propagate(["i-1"])
    clock[0] = 300.0
    propagate(["i-2"])
    manager.tick(400.0)
    clock[0] = 450.0
    propagate(["i-late"], due_at_sim_seconds=200.0)
    assert [(p.instance, p.queued_at) for p in manager.backlog.queue] == [
        ("i-1", 100.0), ("i-late", 200.0), ("i-2", 300.0)]
    # Nothing has propagated at 1 per 1000 s; i-1 booted at 700 and i-late at 800 without network, and
    # i-2 (900) has not booted yet: the late call's boot is checked in its turn, not after i-2's.
    manager.tick(850.0)
    assert manager.backlog.without_network_total == 2


def test_a_time_of_making_a_little_ahead_is_now_and_one_further_ahead_or_with_a_spread_is_refused():
    clock = [1000.0]
    manager, svc = servicer(clock)
    asyncio.run(svc.PropagateInstance(netmgr_pb2.PropagateInstanceRequest(
        instance_ids=["i-1"], kind=netmgr_pb2.NEW, due_at_sim_seconds=1005.0), Context()))  # clocks read apart
    assert [p.queued_at for p in manager.backlog.queue] == [1000.0]
    for bad, words in ((dict(due_at_sim_seconds=2000.0), "future"),
                       (dict(due_at_sim_seconds=float("nan")), "not a simulated time"),
                       (dict(due_at_sim_seconds=900.0, due_since_sim_seconds=800.0), "exclusive")):
        ctx = Context()
        with pytest.raises(Aborted):
            asyncio.run(svc.PropagateInstance(netmgr_pb2.PropagateInstanceRequest(
                instance_ids=["i-2"], kind=netmgr_pb2.NEW, **bad), ctx))
        assert ctx.code == grpc.StatusCode.INVALID_ARGUMENT and words in ctx.details
    assert len(manager.backlog.queue) == 1
