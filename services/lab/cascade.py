"""The cascade's deterministic twin: the same core objects the live dwfm, netmgr,
nlb and workload processes run, stepped in simulated time in one process.

What the live replica gets from real DNS - when each client could reach
DynamoDB - the twin takes as input: the regional name is empty from `empty_at`
until `restored_at`, and each client, which caches the negative answer for
the SOA's TTL, sees it again somewhere in the following `soa_ttl` seconds.
Everything after that (leases, the collapse, the backlog, the flapping, the
failovers, the dependents' errors) comes out of the core objects.

It serves three purposes: calibrating the scenario's defaults, the what-if
table (each remediation on, or the operators' throttle and restart off, for
as long as one likes), and a check that the live run and the twin agree.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

from services.core.dependents import Customers, SqsPoller
from services.core.fixes import Fix
from services.core.healthcheck import HealthChecker, Nlb
from services.core.leases import Fleet, InsufficientCapacity, RequestLimitExceeded
from services.core.operators import Action, Params, RelaxEc2Throttle, RestartDwfmHosts, ThrottleDwfm
from services.core.propagation import Backlog, NEW, TERMINATED, admission_room
from services.runtime.clock import parse_pdt
from services.runtime.scenario import Scenario

STEP = 30.0  # simulated seconds per step


@dataclass
class TwinRun:
    """Time series under the live metrics' names: name -> [(sim, value)]."""

    series: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (sim, kind, message)

    def add(self, name: str, sim: float, value: float) -> None:
        self.series[name].append((sim, value))


@dataclass
class Cascade:
    """Every cascade object of one run, wired the way the live processes wire them."""

    scenario: Scenario
    fleet: Fleet
    backlog: Backlog
    checker: HealthChecker
    customers: Customers
    apps: dict[str, Customers]
    app_instances: dict[str, list[str]]
    poller: SqsPoller
    zones: tuple[str, ...]

    @classmethod
    def build(cls, scenario: Scenario, now: float = 0.0) -> "Cascade":
        seed = scenario.seed
        dep = scenario.dependents
        fleet = Fleet(scenario.dwfm, now, queue_throttle=Fix.QUEUE_THROTTLE in scenario.fixes,
                      rng=random.Random(f"{seed}/dwfm"))
        backlog = Backlog(scenario.netmgr, now)
        zones = scenario.fleet.availability_zones
        checker = HealthChecker(scenario.nlb, [Nlb(n, zones) for n in scenario.nlb.names], now,
                                velocity_control=Fix.NLB_VELOCITY in scenario.fixes,
                                rng=random.Random(f"{seed}/nlb"))
        apps: dict[str, Customers] = {}
        app_instances: dict[str, list[str]] = {}
        for n in scenario.nlb.names:
            ids = fleet.run_instances(dep.app_targets_per_zone * len(zones))
            app_instances[n] = ids
            for i, iid in enumerate(ids):
                backlog.ready_at[iid] = now  # in service long before the night began
                checker.register(n, iid, zones[i % len(zones)], "", in_service=True)
            apps[n] = Customers(dep.app_churn_per_hour, dep.app_growth_per_hour, dep.launch_batch,
                                random.Random(f"{seed}/{n}"), now)
        customers = Customers(dep.churn_per_hour, dep.customer_growth_per_hour, dep.launch_batch * 4, random.Random(f"{seed}/ec2"), now)
        return cls(scenario, fleet, backlog, checker, customers, apps, app_instances,
                   SqsPoller(dep.sqs_wedge_after), zones)


def run_twin(scenario: Scenario, *, empty_at: str = "23:48", restored_at: str | None = "02:25",
             until: str | float = "14:30", operators: bool = True, step: float = STEP) -> TwinRun:
    epoch = scenario.epoch
    t0 = 0.0
    end = parse_pdt(until, epoch) if isinstance(until, str) else float(until)
    empty = parse_pdt(empty_at, epoch) if empty_at else None
    restored = parse_pdt(restored_at, epoch) if restored_at else None
    soa = scenario.dns.soa_ttl_seconds
    rng = random.Random(f"{scenario.seed}/twin")
    c = Cascade.build(scenario, t0)
    out = TwinRun()
    sees_again: dict[str, float] = {}

    def dynamodb_ok(client: str, now: float) -> bool:
        if empty is None or now < empty:
            return True
        if restored is None or now < restored:
            return False
        back = sees_again.setdefault(client, restored + random.Random(f"{scenario.seed}/{client}").uniform(0, soa))
        return now >= back

    ops = sorted(scenario.operators, key=lambda o: o.at) if operators else []
    mitigated = False
    t = t0
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # dependent -> [ok, total] this step

    def count(dep: str, ok: bool) -> None:
        stats[dep][0] += int(ok)
        stats[dep][1] += 1

    while t <= end:
        while ops and ops[0].at <= t:
            op = ops.pop(0)
            mitigated = apply_operator(c, op.action, op.params, t) or mitigated
            out.events.append((t, "operator.action", op.action))
        tick = c.fleet.advance(t)
        for r in tick.rounds:
            ok = dynamodb_ok(r.host, t)
            released = c.fleet.record_writes(r.host, t, r.checked, r.established, ok)
            count("dwfm_state_check", ok)
            if released:
                c.backlog.add(released, TERMINATED, t)
        # EC2 customers: churn and replacements.
        demand = c.customers.advance(t, len(c.fleet.instances))
        app_ids = {i for ids in c.app_instances.values() for i in ids}
        general = [i for i in c.fleet.instances if i not in app_ids]
        gone = rng.sample(general, min(demand.terminate, len(general)))
        now_, _held = c.fleet.terminate(gone)
        c.backlog.add(now_, TERMINATED, t)
        for n in demand.launches:
            c.customers.launched(len(launch(c, n, t, count)))
        for name, app in c.apps.items():
            ids = c.app_instances[name]
            d = app.advance(t, len(ids))
            for iid in rng.sample(ids, min(d.terminate, len(ids))):
                ids.remove(iid)
                c.checker.deregister(name, iid)
                now_, _ = c.fleet.terminate([iid])
                c.backlog.add(now_, TERMINATED, t)
            for n in d.launches:
                new = launch(c, n, t, count)
                app.launched(len(new))
                for k, iid in enumerate(new):
                    ids.append(iid)
                    c.checker.register(name, iid, c.zones[(len(ids) + k) % len(c.zones)], "")
        c.backlog.advance(t)
        rnd = c.checker.advance(t, c.backlog.ready)
        for f in rnd.failovers:
            out.events.append((t, "nlb.failover", f"{f.nlb} {f.zone} {f.action}"))
        # Dependents, one sample each per step.
        dyn = dynamodb_ok("dynamodb-client", t)
        count("legacy", dyn)
        count("lambda_update", dynamodb_ok("lambda", t))
        poll_ok = not c.poller.wedged and dynamodb_ok("lambda-sqs", t)
        if c.poller.record(poll_ok):
            out.events.append((t, "dependent.errors", "lambda SQS poller wedged"))
        count("lambda_sqs", poll_ok)
        sts_backend = mitigated or dynamodb_ok("sts", t)
        count("sts", sts_backend and c.checker.connect("sts-nlb", None, c.backlog.ready, rng) == "ok")
        count("app", c.checker.connect("app-nlb", None, c.backlog.ready, rng) == "ok")
        record(out, c, t, stats)
        stats.clear()
        t += step
    return out


def launch(c: Cascade, count_wanted: int, t: float, count) -> list[str]:
    try:
        ids = c.fleet.run_instances(count_wanted, admission_room(c.backlog.config, len(c.backlog.queue)))
    except (InsufficientCapacity, RequestLimitExceeded):
        count("ec2_launch", False)
        return []
    count("ec2_launch", True)
    c.backlog.add(ids, NEW, t)
    return ids


def apply_operator(c: Cascade, action: Action, params: Params, t: float) -> bool:
    """The operators' cascade actions on the core objects; returns True for mitigate-internal."""
    if isinstance(params, ThrottleDwfm):
        c.fleet.throttle(params.admit_per_host_second, params.launches_per_second)
    elif isinstance(params, RestartDwfmHosts):
        c.fleet.restart_hosts(params.count)
    elif action is Action.RESTART_SQS_POLLER:
        c.poller.restart()
    elif action is Action.DISABLE_NLB_FAILOVER:
        c.checker.set_automatic_failover(False, t)
    elif action is Action.ENABLE_NLB_FAILOVER:
        c.checker.set_automatic_failover(True, t)
    elif isinstance(params, RelaxEc2Throttle):
        c.fleet.relax(t, params.over_seconds, params.to_launches_per_second)
    return action is Action.MITIGATE_INTERNAL


def record(out: TwinRun, c: Cascade, t: float, stats) -> None:
    f = c.fleet
    leased = f.leased()
    out.add("racelab_dwfm_droplets:leased", t, leased)
    out.add("racelab_dwfm_droplets:expired", t, f.config.droplets - leased)
    out.add("racelab_dwfm_queue_depth", t, f.queue_depth())
    out.add("racelab_dwfm_work_in_flight", t, f.in_flight())
    out.add("racelab_dwfm_work_timeouts_total", t, f.timeouts_total)
    out.add("racelab_dwfm_throttle_launches_per_second", t, f.launch_rate or 0.0)
    out.add("racelab_netmgr_backlog:new", t, c.backlog.pending(NEW))
    out.add("racelab_netmgr_backlog:terminated", t, c.backlog.pending(TERMINATED))
    out.add("racelab_netmgr_delay_seconds", t, c.backlog.delay())
    out.add("racelab_netmgr_instances_without_network_total", t, c.backlog.without_network_total)
    out.add("racelab_nlb_health_check_delay_seconds", t, c.checker.delay)
    out.add("racelab_nlb_failovers_total", t, c.checker.failovers_total)
    for name, n in c.checker.nlbs.items():
        out.add(f"racelab_nlb_healthy_capacity_ratio:{name}", t, n.capacity_ratio())
        out.add(f"racelab_nlb_zones_in_service:{name}", t, len(n.zones_in_dns()))
        out.add(f"racelab_nlb_transitions:{name}", t, sum(x.transitions for x in n.targets.values()))
    out.add("racelab_nlb_targets:unhealthy", t,
            sum(1 for n in c.checker.nlbs.values() for x in n.targets.values() if x.state == "unhealthy"))
    for dep, (ok, total) in stats.items():
        if total:
            out.add(f"racelab_dependent_success_ratio:{dep}", t, ok / total)
