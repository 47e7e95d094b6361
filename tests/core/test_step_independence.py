"""The cascade's core objects give the same course however often their driver advances them.

The live services tick every 0.2-0.25 wall seconds, which is 77-190 simulated seconds depending on
the schedule's speed; the twin steps every 30. A core object whose outcome follows the step size
makes the live run and the twin disagree for no reason in the incident (a CI run's NLB failover came
at 06:09 live and 08:55 in the twin). Each test drives one object in one long step and in many short
ones, with the same inputs at the same simulated times, and compares.
"""

import random

import pytest

from services.core.dependents import LAUNCH_PERIOD, Customers
from services.core.healthcheck import HealthChecker, Nlb, NlbConfig
from services.core.leases import Fleet, RequestLimitExceeded
from services.core.propagation import NEW, TERMINATED, Backlog, PropagationConfig
from tests.core.test_cascade import SMALL, run_fleet


def checked(step: float) -> dict[str, tuple]:
    """Three targets: one in service from the start, two registered mid-way whose network arrives
    later (one never). No random draws: a target without network fails every check."""
    cfg = NlbConfig(checker_capacity_per_second=1000, unpropagated_pass_probability=0.0)
    hc = HealthChecker(cfg, [Nlb("app", ("a", "b"))], rng=random.Random(0))
    hc.register("app", "old", "a", "", in_service=True, now=0.0)
    arrivals = [(35.0, "mid"), (95.0, "late")]
    network = {"old": 0.0, "mid": 50.0, "late": None}
    t = 0.0
    while t < 300.0:
        t += step
        while arrivals and arrivals[0][0] <= t:
            at, iid = arrivals.pop(0)
            hc.register("app", iid, "b", "", now=at)
        hc.advance(t, lambda i: network[i] if network[i] is not None and network[i] <= t else None)
    return {t.instance: (t.state, t.passes, t.fails, t.transitions)
            for n in hc.nlbs.values() for t in n.targets.values()} | {"delay": (round(hc.delay, 6),)}


def test_health_checks_do_not_depend_on_how_often_the_checker_advances():
    every_10 = checked(10.0)
    assert checked(150.0) == every_10 == checked(30.0)
    # And they mean what they say: checked from registration (35 s) on, failing until the network
    # came (50 s), passing after; the target whose network never came never passed.
    assert every_10["mid"][:3] == ("healthy", 26, 0)  # rounds at 40 (failed), 50, 60, ..., 300
    assert every_10["late"][:3] == ("unhealthy", 0, 21)  # rounds at 100, 110, ..., 300


def test_a_target_registered_mid_step_is_not_checked_for_the_rounds_before_it_came():
    cfg = NlbConfig(checker_capacity_per_second=1000, unpropagated_pass_probability=0.0)
    hc = HealthChecker(cfg, [Nlb("app", ("a",))], rng=random.Random(0))
    hc.advance(0.0, lambda i: None)
    hc.register("app", "new", "a", "", now=135.0)
    rnd = hc.advance(150.0, lambda i: None)
    assert rnd.fails == {"app": 2}  # the rounds at 140 and 150 s, not the fifteen of the whole step


def propagated(steps: list[float]) -> dict[str, float]:
    arrivals = [(5.0, "i-1", NEW), (12.0, "t-1", TERMINATED), (12.0, "i-2", NEW), (40.0, "i-3", NEW),
                (41.0, "i-4", NEW), (90.0, "i-5", NEW)]
    backlog = Backlog(PropagationConfig(propagations_per_second=0.05, slowdown_items=2.0))
    for t in steps:
        while arrivals and arrivals[0][0] <= t:
            at, iid, kind = arrivals.pop(0)
            backlog.add([iid], kind, at)
        backlog.advance(t)
    return backlog.ready_at


def test_network_propagates_at_the_same_times_however_often_network_manager_advances():
    fine = propagated([10.0 * k for k in range(1, 31)])
    coarse = propagated([150.0, 300.0])
    assert set(fine) == {"i-1", "i-2", "i-3", "i-4", "i-5"}
    assert coarse == pytest.approx(fine)
    # Each at the moment its turn came, not at the end of the advance that served it.
    assert len({round(t) for t in coarse.values()}) == 5 and min(coarse.values()) < 150


def test_items_reported_out_of_order_are_served_in_the_order_they_came():
    backlog = Backlog(PropagationConfig(propagations_per_second=1.0))
    backlog.add(["t-late"], TERMINATED, 30.0)  # a driver reports the end of its step first...
    backlog.add(["i-early"], NEW, 10.0)        # ...then a launch made earlier in it
    assert [p.instance for p in backlog.queue] == ["i-early", "t-late"]


def test_customers_calls_fall_due_at_their_own_times_however_often_they_are_asked():
    one = Customers(churn_per_hour=0.0, growth_per_hour=3600.0, batch=5, rng=random.Random(0))
    many = Customers(churn_per_hour=0.0, growth_per_hour=3600.0, batch=5, rng=random.Random(0))
    d = one.advance(5 * LAUNCH_PERIOD, running=0)
    calls = []
    for k in range(1, 6):
        step = many.advance(k * LAUNCH_PERIOD, running=0)
        calls += list(zip(step.times, step.launches))
    assert list(zip(d.times, d.launches)) == calls
    assert d.times == sorted(d.times) and len(set(d.times)) == len(d.times)


def launched_by_caller(fleet_ticks: list[float]) -> dict[str, int]:
    """A general customer asking for 40 and an app asking for 10, each every 30 s, at 0.6 launches/s:
    more is asked than the throttle lets through, so who gets it depends on when each call comes."""
    fleet = Fleet(SMALL, rng=random.Random(3))
    run_fleet(fleet, 0, 3600, lambda t: True)  # every droplet leased: launches can go anywhere
    fleet.throttle(None, 0.6)
    got = {"general": 0, "app": 0}
    calls = sorted([(3600 + 30.0 * k, "general", 40) for k in range(1, 41)] +
                   [(3601 + 30.0 * k, "app", 10) for k in range(1, 41)])
    for tick in fleet_ticks:
        for r in fleet.advance(3600 + tick).rounds:
            fleet.record_writes(r.host, 3600 + tick, r.checked, r.established, True)
        while calls and calls[0][0] <= 3600 + tick:
            at, who, n = calls.pop(0)
            try:
                ids = fleet.run_instances(n, now=at)
            except RequestLimitExceeded:
                continue
            got[who] += len(ids)
            fleet.terminate(ids)
    return got


def test_the_launch_throttle_lets_the_same_calls_through_however_often_dwfm_ticks():
    fine = launched_by_caller([15.0 * k for k in range(1, 90)])
    assert launched_by_caller([150.0 * k for k in range(1, 10)]) == fine
    # Both callers get some, and together what the throttle allows (0.6/s from 3600 s to the last
    # call at 4801 s, at most 720), not what a bucket topped up past each call would.
    assert fine["app"] and fine["general"] and 600 <= sum(fine.values()) <= 0.6 * 1201
