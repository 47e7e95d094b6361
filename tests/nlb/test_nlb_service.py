"""The nlb service shell: what a freshly registered target can serve."""

import asyncio
import random

from prometheus_client import CollectorRegistry

from racelab.v1 import nlb_pb2
from services.nlb.service import NlbService, NlbServicer
from services.runtime.scenario import load_scenario

SCENARIO = load_scenario("oct-2025")


def test_targets_in_service_since_before_the_night_serve_from_their_registration():
    # The workload registers each app's standing targets in service before its first call: they must take
    # connections at once, not only after the next tick has asked Network Manager which have network.
    service = NlbService(SCENARIO, 0.0, netmgr=None, authority=None, rng=random.Random(1),
                         registry=CollectorRegistry())
    servicer = NlbServicer(service, lambda: 0.0)
    name = SCENARIO.nlb.names[0]
    zones = SCENARIO.fleet.availability_zones
    for n in range(30):
        asyncio.run(servicer.RegisterTarget(nlb_pb2.RegisterTargetRequest(
            nlb_id=name, instance_id=f"i-{n}", address=f"i-{n}:80", availability_zone=zones[n % 3],
            in_service=True), None))
    nodes = [address for (nlb, address) in service.zone_of if nlb == name]
    assert nodes
    assert [service.connect(name, a)[0] for a in nodes] == ["ok"] * len(nodes)
    # A new instance registered as a target is not in service until its checks pass.
    asyncio.run(servicer.RegisterTarget(nlb_pb2.RegisterTargetRequest(
        nlb_id=name, instance_id="i-new", address="i-new:80", availability_zone=zones[0]), None))
    assert "i-new" not in service.propagated_at


def test_an_nlb_exports_its_capacity_only_once_it_has_a_target():
    # The first scrape can come while the workload is still registering the standing targets: an NLB
    # with none yet has no capacity to lose, and a 0 there drew an outage at 23:30 in the report.
    registry = CollectorRegistry()
    service = NlbService(SCENARIO, 0.0, netmgr=None, authority=None, rng=random.Random(1), registry=registry)
    servicer = NlbServicer(service, lambda: 0.0)
    first, second = SCENARIO.nlb.names[:2]
    capacity = lambda name: registry.get_sample_value("racelab_nlb_healthy_capacity_ratio", {"nlb": name})  # noqa: E731
    assert capacity(first) is None and capacity(second) is None
    asyncio.run(servicer.RegisterTarget(nlb_pb2.RegisterTargetRequest(
        nlb_id=first, instance_id="i-1", address="i-1:80", availability_zone=SCENARIO.fleet.availability_zones[0],
        in_service=True), None))
    assert capacity(first) == 1.0
    assert capacity(second) is None
    # A restarted nlb, restored with its targets, exports at once.
    restored = NlbService(SCENARIO, 0.0, netmgr=None, authority=None, rng=random.Random(1),
                          registry=(again := CollectorRegistry()), restored=service.state())
    assert again.get_sample_value("racelab_nlb_healthy_capacity_ratio", {"nlb": first}) == 1.0
    assert again.get_sample_value("racelab_nlb_healthy_capacity_ratio", {"nlb": second}) is None
    assert restored.checker.nlbs[first].targets
