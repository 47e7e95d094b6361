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
from test_cascade import SMALL, run_fleet  # pytest puts each test's folder on the path


def checked(step: float, pass_probability: float = 0.0) -> dict[str, tuple]:
    """Targets in service from the start, and others registered at odd times whose network arrives
    at odd times later (one never). With a pass probability of 0, a target without network fails
    every check; with more, it draws a verdict a round, from one random stream."""
    cfg = NlbConfig(checker_capacity_per_second=1000, unpropagated_pass_probability=pass_probability)
    hc = HealthChecker(cfg, [Nlb("app", ("a", "b"))], rng=random.Random(0))
    hc.register("app", "old", "a", "", in_service=True, now=0.0)
    arrivals = [(35.0, "mid"), (95.0, "late"), (181.8, "m2"), (245.1, "m3"), (263.7, "m4")]
    network = {"old": 0.0, "mid": 50.0, "late": None, "m2": 402.3, "m3": 611.9, "m4": 263.7}
    t = 0.0
    while t < 1000.0:
        t = min(1000.0, t + step)
        while arrivals and arrivals[0][0] <= t:
            at, iid = arrivals.pop(0)
            hc.register("app", iid, "b", "", now=at)
        hc.advance(t, lambda i: network[i] if network[i] is not None and network[i] <= t else None)
    return {t.instance: (t.state, t.passes, t.fails, t.transitions)
            for n in hc.nlbs.values() for t in n.targets.values()} | {"delay": (round(hc.delay, 6),)}


@pytest.mark.parametrize("step", [30.0, 77.0, 150.0, 190.0])
def test_health_checks_do_not_depend_on_how_often_the_checker_advances(step):
    assert checked(step) == checked(10.0)
    # With random verdicts too: the same draws, in the same order, for the same rounds.
    assert checked(step, 0.3) == checked(10.0, 0.3)


def test_health_checks_mean_what_they_say():
    every_10 = checked(10.0)
    # Checked from registration (35 s) on, failing until the network came (50 s), passing after;
    # the target whose network never came never passed.
    assert every_10["mid"][:3] == ("healthy", 96, 0)  # rounds at 40 (failed), 50, 60, ..., 1000
    assert every_10["late"][:3] == ("unhealthy", 0, 91)  # rounds at 100, 110, ..., 1000


def test_a_target_registered_mid_step_is_not_checked_for_the_rounds_before_it_came():
    cfg = NlbConfig(checker_capacity_per_second=1000, unpropagated_pass_probability=0.0)
    hc = HealthChecker(cfg, [Nlb("app", ("a",))], rng=random.Random(0))
    hc.advance(0.0, lambda i: None)
    hc.register("app", "new", "a", "", now=135.0)
    rnd = hc.advance(150.0, lambda i: None)
    assert rnd.fails == {"app": 2}  # the rounds at 140 and 150 s, not the fifteen of the whole step


def propagated(step: float) -> tuple[dict[str, float], int]:
    """Arrivals at odd times, faster than the backlog serves them for a while, then a lull."""
    rng = random.Random(4)
    arrivals = sorted((rng.uniform(0, 600), f"i-{k}", NEW if k % 3 else TERMINATED) for k in range(400))
    backlog = Backlog(PropagationConfig(propagations_per_second=0.3, slowdown_items=100.0, boot_seconds=300.0))
    t = 0.0
    while t < 3000.0:
        t = min(3000.0, t + step)
        batch = []
        while arrivals and arrivals[0][0] <= t:
            batch.append(arrivals.pop(0))
        for at, iid, kind in batch:
            backlog.add([iid], kind, at)
        backlog.advance(t)
    return backlog.ready_at, backlog.without_network_total


@pytest.mark.parametrize("step", [10.0, 77.0, 150.0, 190.0])
def test_network_propagates_at_the_same_times_however_often_network_manager_advances(step):
    fine, fine_without = propagated(1.0)
    ready, without = propagated(step)
    assert ready == pytest.approx(fine) and without == fine_without
    assert 0 < fine_without < len(fine)  # some booted before their network came: the check can see it
    # Each at the moment its turn came, not at the end of the advance that served it.
    assert len({round(t, 3) for t in ready.values()}) == len(ready)


def test_idle_capacity_is_not_saved_up_for_a_burst():
    backlog = Backlog(PropagationConfig(propagations_per_second=1.0, slowdown_items=1e9))
    backlog.add([f"i-{k}" for k in range(5)], NEW, 9.5)
    backlog.advance(10.0)
    backlog.advance(20.0)
    # An idle server serves the first at once, then one a second: not all five when they came.
    assert [round(backlog.ready_at[f"i-{k}"], 6) for k in range(5)] == [9.5, 10.5, 11.5, 12.5, 13.5]


def test_items_reported_out_of_order_are_served_in_the_order_they_came():
    backlog = Backlog(PropagationConfig(propagations_per_second=1.0))
    backlog.add(["t-late"], TERMINATED, 30.0)  # a driver reports the end of its step first...
    backlog.add(["i-early"], NEW, 10.0)        # ...then a launch made earlier in it
    assert [p.instance for p in backlog.queue] == ["i-early", "t-late"]


def calls_made(step: float, growth_per_hour: float) -> list[tuple[float, int]]:
    customers = Customers(churn_per_hour=0.0, growth_per_hour=growth_per_hour, batch=10, rng=random.Random(0))
    calls, t = [], 0.0
    while t < 1800.0:
        t = min(1800.0, t + step)
        d = customers.advance(t, running=0)
        calls += list(zip(d.times, d.launches))
        customers.launched(sum(d.launches))
    return calls


@pytest.mark.parametrize("growth_per_hour", [600.0, 3600.0])  # below and above what a call a period can take
@pytest.mark.parametrize("step", [77.0, 150.0])
def test_customers_calls_fall_due_at_their_own_times_however_often_they_are_asked(step, growth_per_hour):
    fine = calls_made(LAUNCH_PERIOD, growth_per_hour)
    coarse = calls_made(step, growth_per_hour)
    assert [n for _, n in coarse] == [n for _, n in fine]
    assert [at for at, _ in coarse] == pytest.approx([at for at, _ in fine])
    times = [at for at, _ in fine]
    assert times == sorted(times) and len(set(times)) == len(times)


def launched_by_caller(fleet_ticks: list[float]) -> dict[str, int]:
    """A general customer asking for 40 and an app asking for 10, each every 30 s, at 0.6 launches/s:
    more is asked than the throttle lets through, so who gets it depends on when each call comes."""
    fleet = Fleet(SMALL, rng=random.Random(3))
    run_fleet(fleet, 0, 3600, lambda t: True)  # every droplet leased: launches can go anywhere
    fleet.throttle(None, 0.6, now=3600.0)
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


def tokens_at_first_call(tick: float) -> float:
    """The operators throttle launches between two ticks (at 3617 s); the first call comes at 3700 s."""
    fleet = Fleet(SMALL, rng=random.Random(3))
    run_fleet(fleet, 0, 3600, lambda t: True)
    t = 3600.0
    while t + tick <= 3617.0:
        t += tick
        fleet.advance(t)
    fleet.throttle(None, 0.6, now=3617.0)
    while t + tick <= 3700.0:
        t += tick
        fleet.advance(t)
    fleet.run_instances(1, now=3700.0)
    return fleet.launch_tokens + 1


@pytest.mark.parametrize("tick", [1.0, 15.0, 77.0])
def test_the_launch_throttle_counts_from_when_it_was_set_not_from_the_last_tick(tick):
    assert tokens_at_first_call(tick) == pytest.approx(0.6 * (3700 - 3617))


def test_the_launch_throttle_lets_the_same_calls_through_however_often_dwfm_ticks():
    fine = launched_by_caller([15.0 * k for k in range(1, 90)])
    assert launched_by_caller([150.0 * k for k in range(1, 10)]) == fine
    # Both callers get some, and together what the throttle allows (0.6/s from 3600 s to the last
    # call at 4801 s, at most 720), not what a bucket topped up past each call would.
    assert fine["app"] and fine["general"] and 600 <= sum(fine.values()) <= 0.6 * 1201


def terminations_due(step: float) -> list[float]:
    customers = Customers(churn_per_hour=0.06, growth_per_hour=0.0, batch=40, rng=random.Random(0))
    times, t = [], 0.0
    while t < 3600.0:
        t = min(3600.0, t + step)
        times += customers.advance(t, running=10_000).terminate_times
    return times


@pytest.mark.parametrize("step", [77.0, 150.0])
def test_the_churn_falls_due_as_it_accrues_however_often_the_customers_are_asked(step):
    fine = terminations_due(LAUNCH_PERIOD)
    assert len(fine) == 600 and fine == sorted(fine)
    assert terminations_due(step) == pytest.approx(fine)
    # Spread over the hour (one every 6 s), not bunched at the ends of the steps.
    assert fine[0] == pytest.approx(6.0) and fine[-1] == pytest.approx(3600.0)


def test_a_batch_reported_once_a_tick_is_queued_over_the_tick_not_at_its_end():
    backlog = Backlog(PropagationConfig(propagations_per_second=1.0, slowdown_items=1e9))
    backlog.advance(100.0)
    backlog.add([f"t-{k}" for k in range(4)], TERMINATED, 180.0, since=20.0)  # never before 100: served
    assert [p.queued_at for p in backlog.queue] == [120.0, 140.0, 160.0, 180.0]
    backlog.add(["i-1"], NEW, 150.0)  # a launch at 150 goes between them
    assert [p.instance for p in backlog.queue] == ["t-0", "t-1", "i-1", "t-2", "t-3"]
