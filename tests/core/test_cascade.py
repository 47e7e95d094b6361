"""The cascade's core objects: the collapse, the backlog, the flapping and failover come out of numbers."""

import random

import pytest

from services.core.dependents import LAUNCH_PERIOD, Customers, SqsPoller
from services.core.healthcheck import HEALTHY, HealthChecker, Nlb, NlbConfig
from services.core.leases import DwfmConfig, Fleet, InsufficientCapacity, RequestLimitExceeded
from services.core.propagation import NEW, TERMINATED, Backlog, PropagationConfig, admission_room

SMALL = DwfmConfig(droplets=400, hosts=4, state_check_interval_seconds=300, lease_seconds=1200,
                   lease_work_seconds=7.0, lease_work_timeout_seconds=600)


def run_fleet(fleet: Fleet, start: float, end: float, reachable, step: float = 30.0) -> None:
    t = start
    while t <= end:
        for r in fleet.advance(t).rounds:
            fleet.record_writes(r.host, t, r.checked, r.established, reachable(t))
        t += step


def test_leases_hold_while_checks_succeed_and_expire_one_by_one_when_they_fail():
    fleet = Fleet(SMALL, rng=random.Random(1))
    run_fleet(fleet, 0, 3600, lambda t: True)
    assert fleet.leased() == 400
    run_fleet(fleet, 3630, 3600 + 1050, lambda t: False)
    partly = fleet.leased()
    run_fleet(fleet, 3600 + 1080, 3600 + 2400, lambda t: False)
    assert 0 < partly < 400  # one by one, not all at once
    assert fleet.leased() == 0
    with pytest.raises(InsufficientCapacity):
        fleet.run_instances(1)


def collapse_fleet() -> Fleet:
    fleet = Fleet(SMALL, rng=random.Random(2))
    run_fleet(fleet, 0, 3000, lambda t: t < 600)  # DynamoDB gone from t=600
    assert fleet.leased() == 0
    run_fleet(fleet, 3030, 6000, lambda t: True)  # back: the whole fleet re-leased at once
    return fleet


def test_re_leasing_the_whole_fleet_at_once_collapses_and_never_recovers_by_itself():
    fleet = collapse_fleet()
    assert fleet.leased() == 0 and fleet.timeouts_total > 0
    timeouts = fleet.timeouts_total
    run_fleet(fleet, 6030, 6000 + 24 * 3600, lambda t: True)
    assert fleet.leased() == 0  # a day later: still nothing, every item timed out again
    assert fleet.timeouts_total > timeouts


def test_throttle_alone_does_not_help_but_throttle_and_restart_do():
    fleet = collapse_fleet()
    fleet.throttle(0.11, 1.5)
    run_fleet(fleet, 6030, 9000, lambda t: True)
    assert fleet.leased() == 0  # the retries are already in flight
    fleet.restart_hosts()
    run_fleet(fleet, 9030, 9000 + 2 * 3600, lambda t: True)
    assert fleet.leased() == 400


def minutes_to_re_lease(step: float) -> float:
    """Throttled and restarted after the collapse, how long oct-2025's fleet (4000 droplets, 8 hosts) takes
    to be leased again when it is stepped `step` simulated seconds at a time."""
    fleet = Fleet(DwfmConfig(), rng=random.Random(3))
    run_fleet(fleet, 0, 3000, lambda t: False)  # every lease expired
    fleet.throttle(0.11, 0.6)
    fleet.restart_hosts()
    t = 3000.0
    while fleet.leased() < fleet.config.droplets:
        t += step
        for r in fleet.advance(t).rounds:
            fleet.record_writes(r.host, t, r.checked, r.established, True)
    return (t - 3000) / 60


def test_coarse_ticks_admit_lease_work_at_the_throttled_rate():
    # Live, a tick can span minutes of simulated time; the throttle must still admit 0.11 items per host
    # per simulated second instead of losing each tick's leftover fraction of a token (which made the
    # fleet take 82 minutes instead of 76 at 77-second ticks). A coarse tick may only add its own length.
    fine = minutes_to_re_lease(10.0)
    for step in (77.0, 150.0):
        assert minutes_to_re_lease(step) <= fine + 2 * step / 60


def test_queue_throttle_fix_prevents_the_collapse():
    fleet = Fleet(SMALL, queue_throttle=True, rng=random.Random(2))
    run_fleet(fleet, 0, 3000, lambda t: t < 600)
    run_fleet(fleet, 3030, 3000 + 3 * 3600, lambda t: True)
    assert fleet.leased() == 400 and fleet.timeouts_total == 0


def test_queue_throttle_admits_launches_by_network_managers_queue():
    config = PropagationConfig(propagations_per_second=1.0, slowdown_items=100, boot_seconds=600)
    assert admission_room(config, 0) == 600  # what propagates before a new instance boots
    assert admission_room(config, 100) == 200  # the queue both takes room and slows the rate
    assert admission_room(config, 300) == 0
    fleet = Fleet(SMALL, queue_throttle=True, rng=random.Random(3))
    fleet.advance(0)
    with pytest.raises(RequestLimitExceeded, match="Network Manager's queue admits 2 more"):
        fleet.run_instances(3, propagation_room=2)
    assert len(fleet.run_instances(2, propagation_room=2)) == 2
    assert len(Fleet(SMALL).run_instances(3, propagation_room=0)) == 3  # without the fix, no such limit


def test_launch_throttle_says_request_limit_exceeded():
    fleet = Fleet(SMALL, rng=random.Random(3))
    fleet.advance(0)
    fleet.throttle(None, 0.01)
    with pytest.raises(RequestLimitExceeded):
        fleet.run_instances(5)
    ids = Fleet(SMALL).run_instances(3)
    assert len(set(ids)) == 3


def test_a_throttled_caller_gets_the_throttled_rate_even_when_it_calls_in_bursts():
    """Live, the EC2 customers call a wall tick apart, minutes of simulated time in the fast hours,
    while DWFM's own ticks top the bucket up in between: those top-ups must not throw the rate away."""
    fleet = Fleet(SMALL, rng=random.Random(3))
    fleet.throttle(None, 0.5)
    launched, t = 0, 0.0
    while t < 3600:
        for dwfm_tick in range(1, 5):  # DWFM ticks four times between two bursts of calls
            for r in fleet.advance(t + dwfm_tick * 30).rounds:
                fleet.record_writes(r.host, t, r.checked, r.established, True)
        t += 120
        for _ in range(6):  # each burst: six calls of 10, as many as the demand of 120 s allows
            try:
                ids = fleet.run_instances(10, now=t)
            except RequestLimitExceeded:
                continue
            launched += len(ids)
            fleet.terminate(ids)  # churn: the fleet stays the same size
    assert launched >= 0.9 * 0.5 * 3600


def test_terminations_on_unleased_droplets_wait_for_the_lease():
    fleet = Fleet(SMALL, rng=random.Random(4))
    some = list(fleet.instances)[:20]
    run_fleet(fleet, 0, 2400, lambda t: False)
    now_, held = fleet.terminate(some)
    assert now_ == [] and sorted(held) == sorted(some)


def test_propagation_slows_with_what_waits():
    cfg = PropagationConfig(propagations_per_second=1.0, slowdown_items=100, boot_seconds=60)
    small, big = Backlog(cfg), Backlog(cfg)
    small.add([f"s{i}" for i in range(10)], NEW, 0)
    big.add([f"b{i}" for i in range(1000)], TERMINATED, 0)
    big.add(["late"], NEW, 0)
    assert big.rate() < small.rate() / 5
    small.advance(20)
    big.advance(20)
    assert small.ready("s9") and not big.ready("late")
    big.advance(100)
    assert big.without_network_total == 1  # booted before its network propagated


def test_an_item_queued_after_the_last_advance_is_just_queued_not_negatively_old():
    backlog = Backlog(PropagationConfig(propagations_per_second=0.1))
    backlog.advance(100.0)
    backlog.add(["i-1"], NEW, 104.5)  # a request served between two ticks
    assert backlog.oldest_age(backlog.now) == 0.0
    assert backlog.oldest_age(110.0) == 5.5


def checker(velocity: bool = False, failover_after: float = 0.0) -> HealthChecker:
    zones = ("a", "b", "c")
    hc = HealthChecker(NlbConfig(checker_capacity_per_second=20, transition_cost_checks=200,
                                 failover_delay_seconds=30, failover_cooldown_seconds=60,
                                 failover_after_seconds=failover_after),
                       [Nlb("app-nlb", zones)], velocity_control=velocity, rng=random.Random(5))
    for i in range(30):
        hc.register("app-nlb", f"i-{i}", zones[i % 3], "")
    return hc


def test_targets_without_network_flap_and_the_checker_fails_zones_over():
    hc = checker()
    ready = {f"i-{i}" for i in range(30)}
    for t in range(0, 300, 10):
        hc.advance(t, lambda i: 0.0 if i in ready else None)
    assert all(x.state == HEALTHY for x in hc.nlbs["app-nlb"].targets.values())
    assert hc.failovers_total == 0
    ready.clear()  # half-propagated network: checks pass now and then
    flips = 0
    for t in range(300, 3000, 10):
        flips += sum(1 for x in hc.advance(t, lambda i: 0.0 if i in ready else None).transitions if x.flapped)
    assert flips > 10
    assert hc.delay > 30 and hc.failovers_total >= 2
    assert len(hc.nlbs["app-nlb"].failed_over) == 2  # never the last zone
    restored = hc.set_automatic_failover(False, 3000)
    assert {c.zone for c in restored} and not hc.nlbs["app-nlb"].failed_over


def test_failover_waits_until_checks_have_been_late_for_failover_after_seconds():
    hc = checker(failover_after=600)
    late_since = None
    for t in range(0, 3000, 10):
        changes = hc.advance(t, lambda i: None).failovers
        if hc.delay > 30 and late_since is None:
            late_since = t
        elif hc.delay <= 30:
            late_since = None
        if changes:
            assert late_since is not None and t - late_since >= 600
            break
    else:
        pytest.fail("checks were late for 600 s and no zone failed over")


@pytest.mark.parametrize("failover_after, fails_over", [(0.0, True), (600.0, False)])
def test_a_burst_of_late_checks_fails_a_zone_over_only_without_the_wait(failover_after, fails_over):
    hc = checker(failover_after=failover_after)
    hc.extra = hc.config.checker_capacity_per_second * 200  # 200 s late, once: it drains within minutes
    ready = {f"i-{i}" for i in range(30)}
    for t in range(0, 1200, 10):
        hc.advance(t, lambda i: 0.0 if i in ready else None)
    assert hc.delay == 0
    assert (hc.failovers_total > 0) == fails_over


def test_a_late_checker_gives_each_target_fewer_verdicts_never_more():
    # Ten minutes of extra work queued (flips' DNS updates and re-checks): the scheduled checks wait
    # behind it. Catching up must not check each target faster than once an interval, or every flip
    # would bring more verdicts, more flips and more work.
    hc = checker()
    ready = {f"i-{i}" for i in range(30)}
    hc.extra = hc.config.checker_capacity_per_second * 600
    verdicts = 0
    for t in range(10, 110, 10):
        verdicts += sum(hc.advance(t, lambda i: 0.0 if i in ready else None).passes.values())
    assert hc.delay > 400
    assert verdicts <= 30 * 100 / hc.config.check_interval_seconds


def test_velocity_control_caps_the_zones_one_nlb_removes():
    hc = checker(velocity=True)
    for t in range(0, 3000, 10):
        hc.advance(t, lambda i: None)
    assert len(hc.nlbs["app-nlb"].failed_over) == 1


def test_the_sqs_poller_wedges_and_only_a_restart_brings_it_back():
    p = SqsPoller(wedge_after=3)
    assert [p.record(False) for _ in range(3)] == [False, False, True]
    assert p.wedged and not p.record(True) and p.wedged
    p.restart()
    assert not p.wedged


def test_customers_pile_up_demand_while_launches_fail():
    c = Customers(churn_per_hour=0.1, growth_per_hour=10, batch=5, rng=random.Random(0))
    d = c.advance(3600, running=1000)
    # An hour's demand, asked for as it arose: each call what was wanted by its own time, at most 5.
    assert d.terminate == 100 and sum(d.launches) == 110 and max(d.launches) <= 5 and c.wanted == pytest.approx(110)
    c.launched(5)
    assert c.wanted == pytest.approx(105)
    # One call per LAUNCH_PERIOD of simulated time, however often the caller asks.
    assert c.advance(3600 + LAUNCH_PERIOD / 2, running=0).launches == []
    assert c.advance(3600 + LAUNCH_PERIOD * 3, running=0).launches == [5] * 3


def test_a_state_check_renews_what_the_lease_table_holds_and_re_leases_what_it_shows_lapsed():
    from services.core.leases import LeaseItem
    fleet = Fleet(SMALL, rng=random.Random(3))
    t = 0.0
    while True:
        t += 30
        rounds = [r for r in fleet.advance(t).rounds if len(r.checked) >= 2]
        if rounds:
            break
    r = rounds[0]
    first, second = r.checked[:2]
    stored = [LeaseItem(r.host, first, t - 1, "renewed"), LeaseItem(r.host, second, t + 600, "renewed")]
    write = fleet.check(r, t, stored)
    assert first not in write.renewed and fleet.needs_lease[first]  # lapsed in the table: lost
    assert second in write.renewed and all(i.expires_at == t + SMALL.lease_seconds for i in write.items)
    assert {i.droplet for i in write.items} == set(r.checked) - {first}  # no item yet: written


def test_a_collapse_is_stuck_only_while_it_cannot_end_by_itself():
    """Fleet.stuck: more lease work in flight on every busy host than can finish inside the timeout, and
    nothing throttling admissions. A throttle, or few enough items, and it is not."""
    fleet = Fleet(DwfmConfig(droplets=400, hosts=2))
    assert not fleet.stuck()  # no lease work at all
    for h in fleet.hosts:
        h.backlog.extend(h.droplets)
    assert not fleet.stuck()  # waiting, not yet admitted: a small enough backlog would finish
    fleet.advance(1.0)
    assert all(len(h.in_flight) == 200 for h in fleet.hosts) and fleet.stuck()  # 200 x 7 s > 600 s
    fleet.advance(3600.0)
    assert fleet.stuck() and fleet.established_total == 0  # an hour on: still nothing finished
    fleet.throttle(0.1, None)
    assert not fleet.stuck()
    small = Fleet(DwfmConfig(droplets=100, hosts=2))
    for h in small.hosts:
        h.backlog.extend(h.droplets)
    small.advance(1.0)
    assert not small.stuck()  # 50 x 7 s < 600 s: they finish


def test_a_round_skips_its_scan_only_while_no_lease_can_have_lapsed():
    """The per-host expiry floor stays at or below every live lease's expiry, and a fleet that skips
    scans by it loses exactly the leases, at exactly the times, of one that scans every round: through
    renewals, an outage (leases lapse), the collapse after it and the operators' throttle."""
    fleets = [Fleet(SMALL, rng=random.Random(4)) for _ in range(2)]
    scanning = fleets[1]
    t = 0.0
    while t <= 12000:
        if t == 6000:
            for f in fleets:
                f.throttle(0.05, None, t)
                f.restart_hosts()
        for h in scanning.hosts:
            h.expiry_floor = float("-inf")  # scan every round
        for f in fleets:
            for r in f.advance(t).rounds:
                f.record_writes(r.host, t, r.checked, r.established, not 1200 <= t < 3600)
        skipping = fleets[0]
        assert skipping.needs_lease == scanning.needs_lease and skipping.expired_total == scanning.expired_total
        for h in skipping.hosts:
            live = [skipping.lease_expires[d] for d in h.droplets if not skipping.needs_lease[d]]
            assert h.expiry_floor <= min(live, default=float("inf"))
        t += 30
    assert skipping.expired_total >= SMALL.droplets and skipping.leased() == SMALL.droplets  # lapsed, re-leased


def test_the_counted_free_slots_always_match_a_recount():
    """run_instances reuses each host's count of droplets with a lease and a free slot until one of them
    changes: through launches, terminations, an outage and the re-leasing, it must match a recount."""
    fleet = Fleet(SMALL, rng=random.Random(5))
    rng = random.Random(6)

    def matches() -> None:
        for h in fleet.hosts:
            fresh = [d for d in h.droplets if fleet.slots_free[d] > 0 and not fleet.needs_lease[d]]
            assert fleet._open_on(h) == (fresh, sum(fleet.slots_free[d] for d in fresh))

    t, launched = 0.0, 0
    while t <= 12000:
        if t == 6000:  # the operators end the collapse: leases are established again
            fleet.throttle(0.05, None, t)
            fleet.restart_hosts()
        for r in fleet.advance(t).rounds:
            fleet.record_writes(r.host, t, r.checked, r.established, not 1200 <= t < 3600)
            matches()
        try:
            launched += len(fleet.run_instances(rng.randint(1, 8), now=t))
        except (InsufficientCapacity, RequestLimitExceeded):
            pass
        matches()
        fleet.terminate(rng.sample(sorted(fleet.instances), min(5, len(fleet.instances))))
        matches()
        t += 30
    assert launched > 0 and fleet.expired_total > 0 and fleet.established_total > 0


def test_a_termination_by_count_picks_only_from_its_group_as_a_scan_would():
    """Fleet.pick is whom both drivers end for a TerminateInstances by count: it must draw exactly what
    DWFM drew when it scanned the fleet for the group's instances on every call, through launches for
    several groups and terminations by id and by count."""
    fleet = Fleet(SMALL, rng=random.Random(5))
    ours, scans = random.Random(7), random.Random(7)
    choose = random.Random(8)
    picked_from = {"": 0, "app-nlb": 0, "redshift": 0}
    for step in range(200):
        group = choose.choice(["", "", "app-nlb", "redshift"])
        try:
            fleet.run_instances(choose.randint(1, 4), now=step * 30.0, group=group)
        except (InsufficientCapacity, RequestLimitExceeded):
            pass
        fleet.advance(step * 30.0)
        by_id = choose.sample(sorted(fleet.instances), 2)
        fleet.terminate(by_id)
        group = choose.choice(["", "app-nlb", "redshift"])
        scanned = [i for i in fleet.instances if fleet.group_of[i] == group]
        expected = scans.sample(scanned, min(2, len(scanned)))
        picked = fleet.pick(group, 2, ours)
        assert picked == expected
        assert all(fleet.group_of[i] == group for i in picked)
        picked_from[group] += len(picked)
        fleet.terminate(picked)
    assert set(fleet.group_of) == set(fleet.instances)
    assert all(n > 10 for n in picked_from.values()), picked_from  # every group was picked from, often


def test_ids_past_eight_hex_digits_still_leave_their_group():
    """Group lists are kept in id order for a quick removal; once ids outgrow eight hex digits they no
    longer sort as launched, and a termination must still remove exactly that instance."""
    fleet = Fleet(SMALL, rng=random.Random(5))
    fleet._seq = 0xfffffffe
    ids = fleet.run_instances(3, now=0.0, group="app-nlb")
    assert ids == ["i-ffffffff", "i-100000000", "i-100000001"]
    fleet.terminate([ids[1]])
    assert sorted(fleet.pick("app-nlb", 10, random.Random(1))) == sorted([ids[0], ids[2]])
    assert fleet.pick("no-such-group", 3, random.Random(1)) == [] and "no-such-group" not in fleet._members
