"""`racelab follow` against a director that is already running, and `racelab wait-dns`."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import grpc
import pytest

from racelab.v1 import director_pb2 as pb, director_pb2_grpc
from services.lab.live.follow import FollowError, follow, wait_for_addresses
from services.runtime.clock import parse_pdt
from services.runtime.scenario import load_scenario

sys.path.insert(0, str(Path(__file__).parents[1] / "workload"))
from workload_fakes import FakeDNS  # noqa: E402

pytestmark = pytest.mark.asyncio

SCENARIO = load_scenario("oct-2025")
LEGACY = "dynamodb.us-east-1.amazonaws.com"


def at(pdt: str) -> float:
    return parse_pdt(pdt, SCENARIO.epoch)


EVENTS = [
    pb.Event(sim_time_seconds=at("23:41:58"), source="enactor-az1", kind="enactor.flip",
             message="enactor-az1 applied generation 197 over 204 on " + LEGACY,
             attributes={"endpoint": LEGACY, "stale": "true"}),
    pb.Event(sim_time_seconds=at("23:42:16"), source="authority", kind="authority.violation",
             message=LEGACY + " now answers NODATA", attributes={"endpoint": LEGACY, "violation": "endpoint-empty"}),
    pb.Event(sim_time_seconds=at("23:45:01"), source="enactor-az2", kind="enactor.stuck",
             message="enactor-az2 gave up", attributes={"endpoint": LEGACY}),
    pb.Event(sim_time_seconds=at("02:25:42"), source="director", kind="operator.action",
             message="operators restored " + LEGACY, attributes={"endpoint": LEGACY, "result": "restored"}),
]


class FakeDirector(director_pb2_grpc.DirectorServicer):
    """Simulated time jumps an hour per GetStatus; the events come out as the clock passes them."""

    def __init__(self):
        self.sim = at("23:30")
        self.calls = 0
        self.metadata: list[tuple] = []

    async def GetStatus(self, request, context):
        self.calls += 1
        self.metadata.append(tuple(context.invocation_metadata()))
        if self.calls > 1:
            self.sim += 3600.0
        return pb.GetStatusResponse(sim_time_seconds=self.sim, pdt_time="x", phase="race", scenario="oct-2025",
                                    seed=1, fixes={"fencing": False, "protect-active": True})

    async def WatchEvents(self, request, context):
        for ev in EVENTS:
            while self.sim < ev.sim_time_seconds:
                await asyncio.sleep(0.05)
            yield ev
        await asyncio.Event().wait()  # a live stream never ends by itself


async def test_follow_prints_events_until_the_end_and_writes_the_summary(tmp_path, free_port, capsys):
    server = grpc.aio.server()
    fake = FakeDirector()
    director_pb2_grpc.add_DirectorServicer_to_server(fake, server)
    server.add_insecure_port(f"127.0.0.1:{free_port}")
    await server.start()
    try:
        summary = await follow(f"127.0.0.1:{free_port}", SCENARIO, tmp_path, wait=5, token="t0ken")
    finally:
        await server.stop(0)
    assert fake.sim >= SCENARIO.end
    assert ("authorization", "Bearer t0ken") in fake.metadata[0]
    assert summary["stale_apply"] and summary["endpoint_emptied"] and summary["enactors_stuck"]
    assert summary["empty_windows"] == [{"endpoint": LEGACY, "from_pdt": "23:42:16 PDT", "until_pdt": "02:25:42 PDT",
                                         "sim_seconds": at("02:25:42") - at("23:42:16")}]
    assert summary["fixes"] == ["protect-active"]
    assert summary["events"] == {"authority.violation": 1, "enactor.flip": 1, "enactor.stuck": 1,
                                 "operator.action": 1}
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 4
    out = capsys.readouterr().out
    assert "23:41:58 PDT  enactor-az1  enactor-az1 applied generation 197 over 204" in out


async def test_follow_gives_up_on_a_director_that_never_answers(tmp_path, free_port):
    with pytest.raises(FollowError, match="no director answered in 1s"):
        await follow(f"127.0.0.1:{free_port}", SCENARIO, tmp_path, wait=1)


async def test_wait_dns_returns_once_the_name_has_an_address():
    server = await FakeDNS().start()
    server.zones[LEGACY] = (900, 86400)
    server.records[LEGACY] = {}  # NODATA until the enactors install a plan
    try:
        waiting = asyncio.ensure_future(asyncio.to_thread(wait_for_addresses, server.address, LEGACY, 10.0))
        await asyncio.sleep(1.0)
        assert not waiting.done() and server.count(LEGACY, "A") >= 1
        server.records[LEGACY] = {"A": (["10.244.1.7", "10.244.2.9"], 5)}
        assert sorted(await waiting) == ["10.244.1.7", "10.244.2.9"]
    finally:
        server.close()


async def test_wait_dns_refuses_a_name_for_the_server_and_times_out():
    with pytest.raises(FollowError, match="expected IP:PORT"):
        wait_for_addresses("authority:53", LEGACY, 1.0)
    server = await FakeDNS().start()
    server.zones[LEGACY] = (900, 86400)
    server.records[LEGACY] = {}
    try:
        with pytest.raises(FollowError, match="had no address .* NOERROR with no address"):
            await asyncio.to_thread(wait_for_addresses, server.address, LEGACY, 1.0)
    finally:
        server.close()
