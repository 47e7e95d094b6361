"""dwfm, netmgr and nlb keep their state across a restart: what one saved, the next one is built on,
its gauges reading the restored objects; a snapshot of another run, or none, starts afresh."""

from __future__ import annotations

import asyncio
import random

import pytest
from prometheus_client import CollectorRegistry

from racelab.v1 import dwfm_pb2
from services.dwfm.service import Dwfm
from services.netmgr.service import NetworkManager
from services.nlb.service import NlbService
from services.runtime.ddbcall import LoadBalancers
from services.runtime.scenario import load_scenario
from services.runtime.service import ConfigError
from services.runtime.snapshot import Snapshots

SCENARIO = load_scenario("oct-2025")
RUN = ("oct-2025", 1, 1700000000.0)


def gauge(registry: CollectorRegistry, name: str, **labels) -> float:
    value = registry.get_sample_value(name, labels)
    assert value is not None, name
    return value


def round_trip(tmp_path, name: str, state: dict) -> dict:
    Snapshots(str(tmp_path), name, RUN).save(state)
    restored = Snapshots(str(tmp_path), name, RUN).load()
    assert restored is not None
    return restored


def dwfm(restored=None) -> tuple[Dwfm, CollectorRegistry]:
    registry = CollectorRegistry()
    resolvers = {f"dwfm-{h + 1}": None for h in range(SCENARIO.dwfm.hosts)}  # no tick here: never used
    return Dwfm(SCENARIO, 0.0, resolvers=resolvers, lbs=LoadBalancers(1), netmgr=None, rng=random.Random(1),
                registry=registry, restored=restored), registry


def test_dwfm_comes_back_with_its_fleet_leases_and_instances(tmp_path):
    before, _ = dwfm()
    before.fleet.advance(4000.0)  # past the first leases' expiry: nothing was written, so some expired
    launched = asyncio.run(before.run_instances(3, "customers", False)).instance_ids
    before.tokens["t-1"] = dwfm_pb2.RunInstancesResponse(instance_ids=launched)
    after, registry = dwfm(round_trip(tmp_path, "dwfm", before.state()))
    assert after.fleet.leased() == before.fleet.leased() < SCENARIO.dwfm.droplets
    assert gauge(registry, "racelab_dwfm_droplets", state="leased") == before.fleet.leased()
    assert set(launched) <= set(after.fleet.instances) \
        and after.fleet.group_of == before.fleet.group_of
    assert after.tokens["t-1"].instance_ids == launched and after.leases == before.leases
    assert after.collapse == before.collapse
    assert after.fleet.now == before.fleet.now == 4000.0


def test_netmgr_comes_back_with_its_backlog_and_throttle(tmp_path):
    before = NetworkManager(SCENARIO.netmgr, 0.0, registry=CollectorRegistry())
    before.propagate([f"i-{n}" for n in range(500)], "new", 10.0)
    before.propagate(["i-old"], "new", 10.0, already_propagated=True)
    before.set_throttle(True, 0.2)
    before.tick(60.0)
    registry = CollectorRegistry()
    after = NetworkManager(SCENARIO.netmgr, 0.0, registry=registry,
                           restored=round_trip(tmp_path, "netmgr", before.state()))
    assert after.backlog.pending("new") == before.backlog.pending("new") > 400
    assert gauge(registry, "racelab_netmgr_backlog", kind="new") == before.backlog.pending("new")
    assert after.backlog.ready_at == before.backlog.ready_at and "i-old" in after.backlog.ready_at
    assert after.throttle().requests_per_second == 0.2


def test_nlb_comes_back_with_its_targets_and_failover_setting(tmp_path):
    def nlb(restored=None, registry=None):
        return NlbService(SCENARIO, 0.0, netmgr=None, authority=None, rng=random.Random(1),
                          registry=registry or CollectorRegistry(), restored=restored)

    before = nlb()
    name = SCENARIO.nlb.names[0]
    for n in range(30):
        zone = SCENARIO.fleet.availability_zones[n % 3]
        before.checker.register(name, f"i-{n}", zone, f"10.0.0.{n}")
    before.propagated_at = {f"i-{n}": 30.0 + n for n in range(20)}
    asyncio.run(before.tick(60.0))
    before.set_automatic_failover(False, 60.0)
    registry = CollectorRegistry()
    after = nlb(round_trip(tmp_path, "nlb", before.state()), registry)
    assert set(after.checker.nlbs[name].targets) == {f"i-{n}" for n in range(30)}
    assert after.propagated_at == before.propagated_at and not after.checker.automatic_failover
    states = {t.instance: t.state for t in before.checker.nlbs[name].targets.values()}
    assert {t.instance: t.state for t in after.checker.nlbs[name].targets.values()} == states
    registered = sum(gauge(registry, "racelab_nlb_targets", nlb=name, state=s)
                     for s in ("healthy", "unhealthy", "initial"))
    assert registered == 30


def test_no_snapshot_another_run_or_no_state_dir_start_afresh(tmp_path):
    assert Snapshots(str(tmp_path), "dwfm", RUN).load() is None
    Snapshots(str(tmp_path), "dwfm", RUN).save({"x": 1})
    assert Snapshots(str(tmp_path), "dwfm", ("oct-2025", 2, RUN[2])).load() is None
    none = Snapshots(None, "dwfm", RUN)
    none.save({"x": 1})
    assert none.load() is None and sorted(p.name for p in tmp_path.iterdir()) == ["dwfm.pickle"]


def test_saves_are_spaced_unless_forced(tmp_path):
    s = Snapshots(str(tmp_path), "netmgr", RUN)
    s.save({"n": 1})
    s.save({"n": 2})  # within SAVE_EVERY of the first: skipped
    assert s.load() == {"n": 1}
    s.save({"n": 3}, force=True)
    assert s.load() == {"n": 3}


def test_an_unreadable_snapshot_is_one_clear_error(tmp_path):
    (tmp_path / "nlb.pickle").write_bytes(b"not a pickle")
    with pytest.raises(ConfigError, match="nlb.pickle.*delete it"):
        Snapshots(str(tmp_path), "nlb", RUN).load()
