"""The cascade, live (INCIDENT.md §3 after 02:25): DWFM's congestive collapse and its recovery,
EC2's refusals, NLB flapping and AZ failover, and what a remediation changes.

Every test shares ONE `racelab run` of the whole oct-2025 event (about 3 minutes of wall time);
the remediation test adds one shorter run with queue-throttle on. Everything is read back from the
spans the processes exported and the metrics scraped during the run, never from a process's own
verdict, and checked for mechanism and order rather than exact minutes.
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict

import pytest

from services.core.plans import LEGACY_ENDPOINT

pytestmark = pytest.mark.integration

# The race does not empty the regional name in every seed while the cascade shares the CPU (14 of
# 16: bench/RESULTS-race.md); seeds that did on this machine come first, so a run is rarely wasted.
SEEDS = (2, 4, 5, 7, 8)
QUEUE_THROTTLE_SEEDS = (2, 4, 5, 7, 8, 3, 6)  # a shorter run (to 04:10), so more tries fit
FIXED_UNTIL = "04:10"  # before the operators' 04:14 throttle and restart: whatever recovers, recovers by itself


@pytest.fixture(scope="module")
def default(live_run):
    """The run as in 2025 on the first seed where the race emptied the regional name once, as in 2025.
    The race is emergent: on a loaded machine it sometimes empties a small endpoint instead, and then
    there is no cascade to check (test_live_race.py tries seeds for the same reason); and now and then
    (1 of 12 runs that emptied it, bench/RESULTS-race.md) enactors still holding plans older than the
    operators' 02:25 repair race again and empty it a second time, a night that is not 2025's."""
    tried = []
    for seed in SEEDS:
        run = live_run(seed)
        emptied = run.regional_name_emptied_after(float("-inf"))
        if emptied and not run.regional_name_emptied_after(run.operator_time("restore-dns")):
            return run
        if emptied:
            warnings.warn(f"seed {seed}: the enactors emptied the regional name again after the operators' "
                          f"repair; trying the next seed ({run.run_dir})")
        tried.append(run)
    pytest.fail(f"the race did not empty the regional name once on seeds {SEEDS}: {what_emptied(tried)}")


@pytest.fixture(scope="module")
def queue_throttled(default, live_run):
    """The same night with queue-throttle on: the default's seed first, others if the race emptied
    another endpoint this time (emergent, as for `default`)."""
    seeds = [default.summary["seed"]] + [s for s in QUEUE_THROTTLE_SEEDS if s != default.summary["seed"]]
    tried = []
    for seed in seeds:
        run = live_run(seed, ("queue-throttle",), until=FIXED_UNTIL)
        if run.regional_name_emptied_after(float("-inf")):
            return run
        tried.append(run)
    pytest.fail(f"with queue-throttle the race did not empty the regional name on seeds {seeds}: {what_emptied(tried)}")


def what_emptied(runs) -> str:
    """What each run's race did instead: which endpoints emptied, and when."""
    return "; ".join(f"seed {r.summary['seed']}: " + (", ".join(f"{zone} from {r.pdt(t)}" for zone, t in
                     r.emptied_endpoints().items()) or "no endpoint emptied") + f" ({r.run_dir})" for r in runs)


def between(run, spans, start, end):
    return [s for s in spans if start <= run.sim(s) < end]


def count(spans, attr):
    return sum(int(s["attrs"].get(attr, 0)) for s in spans)


def value_at(points, sim):
    """The last scraped value at or before `sim`."""
    before = [v for t, v in points if t <= sim]
    assert before, f"no sample at or before {sim:.0f}"
    return before[-1]


def dwfm_acted(run):
    """When the operators first touched DWFM (throttle and restart, both at 04:14)."""
    return min(run.operator_time("throttle-dwfm"), run.operator_time("restart-dwfm-hosts"))


def all_leased_at(run, after):
    """The first scrape after `after` at which every droplet had a lease, or None."""
    n = run.scenario.dwfm.droplets
    return next((t for t, v in run.history("racelab_dwfm_droplets", state="leased") if t >= after and v == n), None)


def test_the_operators_repair_brings_the_regional_name_back(default):
    # INCIDENT.md §3: all DNS records restored by installing a healthy tree by hand at 02:25. What
    # the authority answered for the regional name, before and after the operators' restore:
    run = default
    restore = run.operator_time("restore-dns")
    addresses = run.history("racelab_authority_endpoint_addresses", endpoint=LEGACY_ENDPOINT, qtype="A")
    assert value_at(addresses, restore - 1) == 0, "the regional name was not empty when the operators repaired it"
    after = [v for t, v in addresses if restore < t <= restore + 600]
    assert after and max(after) > 0, f"no address for the regional name in the ten minutes after {run.pdt(restore)}"


def test_dwfm_collapses_after_the_dns_restore_and_makes_no_progress_until_the_operators_act(default):
    run = default
    acted = dwfm_acted(run)
    restore = run.require_regional_name_held(until=acted)
    assert restore < acted
    n = run.scenario.dwfm.droplets
    leased = run.history("racelab_dwfm_droplets", state="leased")
    leased_at_restore = value_at(leased, restore)
    assert leased_at_restore < n, "no droplet had lost its lease while DynamoDB was unreachable"

    timeouts = between(run, run.named("dwfm.work_timeout"), restore, acted)
    assert timeouts, f"no lease work timed out between the DNS restore ({run.pdt(restore)}) and {run.pdt(acted)}"
    collapse = run.sim(timeouts[0])
    # Timed-out work is queued again and times out again: many more timeouts than droplets...
    assert count(timeouts, "racelab.work.count") >= 2 * n
    counter = run.history("racelab_dwfm_work_timeouts_total")
    assert value_at(counter, acted) - value_at(counter, restore) >= 2 * n
    # ...while not one lease is re-established and the leased count never rises,
    assert not between(run, run.named("dwfm.leases_established"), restore, acted)
    during = [v for t, v in leased if collapse <= t < acted]
    assert during and max(during) <= leased_at_restore
    # though the hosts are busy the whole time: lease work is in flight, it just never finishes,
    in_flight = [v for t, v in run.history("racelab_dwfm_work_in_flight") if collapse <= t < acted]
    assert in_flight and min(in_flight) > 0
    # and it has not recovered by itself when the operators step in.
    assert run.sim(timeouts[-1]) >= acted - run.scenario.dwfm.lease_work_timeout_seconds * 2, (
        f"lease work stopped timing out at {run.pdt(run.sim(timeouts[-1]))}, long before the operators acted")


def test_dwfm_recovers_only_after_the_operators_throttle_and_restart_then_every_droplet_is_leased(default):
    run = default
    acted = dwfm_acted(run)
    full = all_leased_at(run, acted)
    restore = run.require_regional_name_held(until=full or run.end())
    restart = run.operator_time("restart-dwfm-hosts")
    established = [s for s in run.named("dwfm.leases_established") if run.sim(s) >= restore]
    assert established, "no lease was re-established after the DNS restore"
    assert run.sim(established[0]) >= acted, (
        f"leases came back at {run.pdt(run.sim(established[0]))}, before the operators acted at {run.pdt(acted)}")
    assert full is not None, (f"not every droplet had a lease again by the end (at most "
                              f"{max(v for t, v in run.history('racelab_dwfm_droplets', state='leased') if t >= acted):.0f}"
                              f" of {run.scenario.dwfm.droplets})")
    # Throttled, the admitted work finishes inside the timeout: nothing times out after the restart.
    late = [s for s in run.named("dwfm.work_timeout") if run.sim(s) > restart]
    assert not late, f"lease work still timed out after the restart, from {run.pdt(run.sim(late[0]))}"


def test_run_instances_answers_insufficient_capacity_in_the_collapse_and_request_limit_while_throttled(default):
    run = default
    acted = dwfm_acted(run)
    full = all_leased_at(run, acted)
    restore = run.require_regional_name_held(until=full or run.end())
    throttle = run.operator_time("throttle-dwfm")
    # What the EC2 customers themselves got back, one dependent.call span per RunInstances.
    calls = run.named("dependent.call", **{"racelab.dependent": "ec2_launch"})
    collapse = Counter(s["attrs"].get("racelab.result") for s in between(run, calls, restore, acted))
    assert collapse["insufficient_capacity"] > 0 and collapse["ok"] == 0, dict(collapse)

    throttled = run.history("racelab_dwfm_throttle_launches_per_second")
    on = [t for t, v in throttled if v > 0]
    assert on and on[0] >= throttle, "the launch throttle was never on, or on before the operators set it"
    lifted = next((t for t, v in throttled if t > on[-1]), float("inf"))
    limited = [s for s in calls if s["attrs"].get("racelab.result") == "request_limit_exceeded"]
    assert limited, (f"no RunInstances was refused for the request limit while EC2 was throttled "
                     f"({run.pdt(on[0])}-{run.pdt(on[-1])}); results then: "
                     f"{dict(Counter(s['attrs'].get('racelab.result') for s in between(run, calls, on[0], lifted)))}")
    # A call in flight when the operators acted is answered under the throttle: what must hold is
    # that every refusal was answered after the throttle went on and asked before it was lifted.
    outside = [f"{run.pdt(run.sim(s))}-{run.pdt(run.sim_end(s))}" for s in limited
               if run.sim_end(s) < throttle or run.sim(s) > lifted]
    assert not outside, (f"request limit exceeded outside the throttle ({run.pdt(throttle)}-{run.pdt(lifted)}): "
                         f"{outside[:5]}")
    # Once every droplet has a lease, launches work again.
    assert full is not None, "not every droplet had a lease again by the end"
    assert any(s["attrs"].get("racelab.result") == "ok" for s in calls if run.sim(s) >= full)


def test_nlb_targets_flap_once_launches_resume(default):
    run = default
    acted = dwfm_acted(run)
    restore = run.require_regional_name_held(until=all_leased_at(run, acted) or run.end())
    transitions = run.named("nlb.target_transition")
    states = defaultdict(list)  # instance -> its health verdicts in order
    for s in transitions:
        states[(s["attrs"]["racelab.nlb.id"], s["attrs"]["racelab.instance.id"])].append(s["attrs"]["racelab.target.state"])
    flapping = [k for k, seq in states.items()
                if any(seq[i:i + 3] == ["healthy", "unhealthy", "healthy"] for i in range(len(seq) - 2))]
    assert flapping, "no target went healthy -> unhealthy -> healthy"
    pulled = [s for s in transitions if s["attrs"]["racelab.target.state"] == "unhealthy"
              and s["attrs"]["racelab.target.flapped"]]
    # Flapping is new instances whose network is not there yet: none while EC2 launched nothing...
    assert not between(run, pulled, restore, acted), "targets flapped while no instance could be launched"
    # ...and it comes back with the launches, checks failing and passing.
    after = [s for s in pulled if run.sim(s) >= acted]
    assert after, "no in-service target turned unhealthy after launches resumed"
    for nlb in {s["attrs"]["racelab.nlb.id"] for s in after}:
        for result in ("fail", "pass"):
            checks = run.history("racelab_nlb_health_checks_total", nlb=nlb, result=result)
            assert checks[-1][1] > value_at(checks, acted), f"{nlb}: no health check {result}ed after {run.pdt(acted)}"


def late_spell(run, before: float) -> tuple[float, float]:
    """The longest spell, in simulated seconds, over which every scraped health-check delay before
    `before` exceeded the failover delay; and the delay's peak."""
    limit = run.scenario.nlb.failover_delay_seconds
    points = [(t, v) for t, v in run.history("racelab_nlb_health_check_delay_seconds") if t < before]
    longest, since = 0.0, None
    for t, v in points:
        if v > limit:
            since = t if since is None else since
            longest = max(longest, t - since)
        else:
            since = None
    return longest, max((v for _, v in points), default=0.0)


def test_nlb_failover_removes_zones_only_on_late_checks_and_never_once_disabled(default):
    run = default
    disable = run.operator_time("disable-nlb-failover")
    run.require_regional_name_held(until=disable)  # no launches, no flapping, no late checks
    enable = run.operator_time("enable-nlb-failover")
    cfg = run.scenario.nlb
    zones = len(run.scenario.fleet.availability_zones)
    removed = run.named("nlb.failover", **{"racelab.action": "remove"})
    # Every zone taken out was taken out because the checks ran late, not because it was down,
    assert all(s["attrs"]["racelab.health_check.delay_seconds"] > cfg.failover_delay_seconds for s in removed)
    # and the NLB's DNS served fewer zones then.
    for s in between(run, removed, 0, disable):
        nlb = s["attrs"]["racelab.nlb.id"]
        assert min(v for t, v in run.history("racelab_nlb_zones_in_service", nlb=nlb) if t < disable) < zones
    # Disabled at 09:36: nothing removed until it is re-enabled, and every zone is back in service from
    # the first scrape after the call returned (a scrape during the call, simulated seconds long in the
    # fast hours, can still see the zones out).
    assert not between(run, removed, disable, enable)
    disabled = run.operator_time("disable-nlb-failover", done=True)
    for nlb in cfg.names:
        zones_after = [v for t, v in run.history("racelab_nlb_zones_in_service", nlb=nlb) if disabled < t < enable]
        assert zones_after and zones_after[0] == zones, f"{nlb}: zones in service after {run.pdt(disable)}"


def test_nlb_failover_removes_zones_when_checks_stay_late(default):
    # Whether the checker falls far enough behind depends on how many targets flap, that is on how long
    # Network Manager stays behind, which varies from run to run (zones failed over in 4 of 5 live runs:
    # bench/RESULTS-cascade.md). When it did, for longer than automatic failover waits, zones must go.
    run = default
    disable = run.operator_time("disable-nlb-failover")
    run.require_regional_name_held(until=disable)
    cfg = run.scenario.nlb
    longest, peak = late_spell(run, disable)
    # Samples are minutes apart in the fast hours: a dip between two of them could have restarted the
    # checker's wait, so only a spell a cooldown longer than the wait is sure to be one.
    if longest < cfg.failover_after_seconds + cfg.failover_cooldown_seconds:
        pytest.skip(f"the checks were never late beyond {cfg.failover_delay_seconds:.0f} s for long enough in this "
                    f"run (longest {longest / 60:.0f} min, peak {peak:.0f} s): no failover was due")
    removed = run.named("nlb.failover", **{"racelab.action": "remove"})
    assert between(run, removed, 0, disable), (
        f"checks were late beyond {cfg.failover_delay_seconds:.0f} s for {longest / 60:.0f} min before "
        f"{run.pdt(disable)} and automatic AZ failover never removed a zone")


def test_queue_throttle_avoids_the_collapse_and_recovers_before_the_operators_act(default, queue_throttled):
    fixed = queue_throttled
    assert fixed.summary["fixes"] == ["queue-throttle"]
    full = all_leased_at(fixed, fixed.operator_time("restore-dns"))
    fixed.require_regional_name_held(until=full or fixed.end())
    cfg = fixed.scenario.dwfm
    capacity = cfg.hosts * cfg.lease_work_timeout_seconds / cfg.lease_work_seconds  # items that finish in time

    # As October 2025 ran: every lease item timed out, again and again, with far too much in flight.
    default.require_regional_name_held(until=dwfm_acted(default))
    as_in_2025 = between(default, default.named("dwfm.work_timeout"), 0, dwfm_acted(default))
    assert count(as_in_2025, "racelab.work.count") >= 2 * cfg.droplets
    assert max(v for _, v in default.history("racelab_dwfm_work_in_flight")) > capacity

    # With the fix, lease work is admitted only while it can finish in time: nothing times out...
    assert max(v for _, v in fixed.history("racelab_dwfm_work_in_flight")) <= capacity
    assert not fixed.named("dwfm.work_timeout")
    assert fixed.history("racelab_dwfm_work_timeouts_total")[-1][1] == 0
    # ...and every droplet is leased again by itself, before any operator touches DWFM.
    assert full is not None, (f"not every droplet was leased again by {FIXED_UNTIL} (at most "
                              f"{max(v for _, v in fixed.history('racelab_dwfm_droplets', state='leased')):.0f})")
    touched = [fixed.sim(s) for s in fixed.named("operator.action")
               if s["attrs"]["racelab.operator.action"] in ("throttle-dwfm", "restart-dwfm-hosts")]
    assert all(full < t for t in touched)


def test_the_twin_agrees_with_the_live_run(default):
    """The cascade's twin, fed this run's measured outage, reaches the same named moments (leases
    expiring, none left, DWFM's collapse and its end, every droplet leased again, NLBs flapping) within
    the stated tolerances (services/lab/report/fidelity.py TWIN_MOMENTS). A twin with one parameter 20% off
    (Network Manager's propagation rate) must fail the same comparison: the check can see a drift."""
    import dataclasses

    from services.lab.twin.cascade import run_twin
    from services.lab.report.fidelity import cascade_moments, twin_agreement
    from services.lab.live.run import read_events

    run = default
    scenario = run.scenario.with_overrides(seed=run.summary["seed"])
    outage = [(w["from_sim"], w["until_sim"]) for w in run.summary["empty_windows"]]
    live = cascade_moments(read_events(run.run_dir / "state" / "director" / "events.jsonl"))
    rows = twin_agreement(live, cascade_moments(run_twin(scenario, outages=outage).events))
    table = "\n".join(map(str, rows))
    print(f"live (seed {run.summary['seed']}) and twin, simulated minutes since the epoch:\n{table}")
    assert all(r.agrees for r in rows), f"the twin drifted from the live run ({run.run_dir}):\n{table}"

    drifted = dataclasses.replace(scenario, netmgr=dataclasses.replace(
        scenario.netmgr, propagations_per_second=scenario.netmgr.propagations_per_second * 1.2))
    off = twin_agreement(live, cascade_moments(run_twin(drifted, outages=outage).events))
    assert not all(r.agrees for r in off), "a twin 20% off agrees too: the comparison cannot see a drift\n" + \
        "\n".join(map(str, off))
