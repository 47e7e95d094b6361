"""kill -9 in the middle of concurrent writes, then restart: every acknowledged batch and plan is there,
nothing is half-applied (tests/harness/durability.py; bench/kill9_authority.py runs 100+ iterations)."""

from __future__ import annotations

import pytest

from racelab.v1 import authority_pb2, common_pb2
from services.core.records import RecordSet, RRType
from harness.durability import AuthorityKiller, Batch, PlannerKiller

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("iterations", [5, pytest.param(100, marks=pytest.mark.slow)])
def test_authority_keeps_every_acknowledged_batch(tmp_path, iterations):
    tally = AuthorityKiller(tmp_path, seed=iterations).run(iterations)
    assert tally.ok, tally.summary()
    assert tally.iterations == iterations and tally.acknowledged > 10 * iterations and tally.in_flight >= iterations


@pytest.mark.parametrize("iterations", [5, pytest.param(100, marks=pytest.mark.slow)])
def test_planner_keeps_every_served_plan(tmp_path, iterations):
    tally = PlannerKiller(tmp_path, seed=iterations).run(iterations)
    assert tally.ok, tally.summary()
    assert tally.iterations == iterations and tally.acknowledged > 10 * iterations


def test_the_checker_sees_a_lost_batch_and_a_half_applied_one(tmp_path):
    killer = AuthorityKiller(tmp_path)
    zone = killer.zones[0]

    def records(tag, n):
        return [RecordSet(f"{tag}-r{i}.{zone}", RRType.TXT, 60, (tag,)) for i in range(n)]

    acked = Batch(0, 0, zone, records("k0-w0-s0", 3), [], acked_version=1)
    in_flight = Batch(0, 1, zone, records("k0-w0-s1", 2), [])
    listing = [acked.creates[0], acked.creates[1], in_flight.creates[0]]  # one acknowledged record lost; half

    def fake_list(z):
        return authority_pb2.ListResourceRecordSetsResponse(
            zone_version=2, record_sets=[common_pb2.ResourceRecordSet(name=rs.name) for rs in listing if z == zone])

    killer.auth.list = fake_list
    killer.verify([[acked, in_flight], [], []])
    t = killer.tally
    assert (t.lost, t.half_applied, t.acknowledged, t.in_flight) == (1, 1, 1, 1), t.summary()
    assert not t.ok
