"""The cascade's deterministic twin: the same core objects the live dwfm, netmgr,
nlb and workload processes run, stepped in simulated time in one process.

What the live replica gets from real DNS - when each client could reach
DynamoDB - the twin takes as input: the regional name is empty during the
outages it is given (a live run's measured window, or those the race twin
produced), and each client, which caches the negative answer for the SOA's
TTL, sees it again somewhere in the following `soa_ttl` seconds.
Everything after that (leases, the collapse, the backlog, the flapping, the
failovers, the dependents' errors) comes out of the core objects.

It serves three purposes: calibrating the scenario's defaults, the what-if
table (each remediation on, or the operators' throttle and restart off, for
as long as one likes), and a check that the live run and the twin agree.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from services.core.cascade import (
    Ec2Customers,
    Watches,
    build_backlog,
    build_checker,
    build_fleet,
    build_poller,
    build_redshift,
    build_support_center,
    build_tasks,
)
from services.core.dependents import REDSHIFT, RedshiftClusters, SqsPoller, SupportCenter, TaskLaunches, AVAILABLE, \
    OK_RESPONSE, backend_response, internal_reachable
from services.core.healthcheck import HEALTHY, HealthChecker
from services.core.leases import Fleet, HostRound, InsufficientCapacity, LeaseItem, LeaseWrite, \
    RequestLimitExceeded
from services.core.operators import (
    Action,
    Params,
    RelaxEc2Throttle,
    RestoreDns,
    RestartDwfmHosts,
    ThrottleDwfm,
    repair_time,
)
from services.core.propagation import NEW, TERMINATED, Backlog, admission_room
from services.core.seeds import derive
from services.runtime.clock import parse_pdt
from services.runtime.scenario import Scenario

STEP = 30.0  # simulated seconds per step


@dataclass
class TwinRun:
    """Time series under the live metrics' names, name -> [(sim, value)], and events in the shape of
    the director's log, (sim, kind, attributes), so the live run's readers read the twin's too."""

    series: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    events: list[tuple[float, str, dict]] = field(default_factory=list)
    stuck_since: float | None = None  # DWFM's collapse a fixed point (Fleet.stuck) from then to the end

    def add(self, name: str, sim: float, value: float) -> None:
        self.series[name].append((sim, value))

    def event(self, sim: float, kind: str, message: str, **attrs: object) -> None:
        self.events.append((sim, kind, {"message": message, **attrs}))


@dataclass
class Cascade:
    """Every cascade object of one run, built by services/core/cascade.py as the live processes build them."""

    scenario: Scenario
    fleet: Fleet
    backlog: Backlog
    checker: HealthChecker
    customers: Ec2Customers
    poller: SqsPoller
    watches: Watches
    # DWFM's lease items, as the live DynamoDB fleet keeps them (expiry in whole seconds, as stored),
    # host -> droplet -> item (a host's partition, as one Query reads it): the table without its wire
    # form, which a 48-hour night would spend a third of its time encoding and parsing.
    leases: dict[str, dict[int, LeaseItem]]
    redshift: RedshiftClusters
    support: SupportCenter
    tasks: TaskLaunches

    @classmethod
    def build(cls, scenario: Scenario, now: float = 0.0) -> "Cascade":
        zones = scenario.fleet.availability_zones
        fleet = build_fleet(scenario.dwfm, scenario.fixes, scenario.seed, now)
        backlog = build_backlog(scenario.netmgr, now)
        checker = build_checker(scenario.nlb, zones, scenario.fixes, scenario.seed, now)
        customers = Ec2Customers.build(scenario.dependents, zones, list(scenario.nlb.names), scenario.seed, now)
        for n in scenario.nlb.names:  # each app's standing targets, in service long before the night began
            for iid in fleet.run_instances(customers.standing_targets, group=n):
                backlog.ready_at[iid] = now
                checker.register(n, iid, customers.place(n, iid), "", in_service=True)
        return cls(scenario, fleet, backlog, checker, customers, build_poller(scenario.dependents),
                   Watches.build(scenario.dwfm, scenario.nlb), {},
                   build_redshift(scenario.dependents, scenario.seed, now), build_support_center(scenario.fixes),
                   build_tasks(scenario.dependents))


Outage = tuple[float, float | None]  # the regional name empty from, until (simulated s); None: not by itself


def incident_outage(scenario: Scenario) -> list[Outage]:
    """2025's: empty from 23:48 until the operators' 02:25 repair (INCIDENT.md §3)."""
    return [(parse_pdt("23:48", scenario.epoch), None)]


def run_twin(scenario: Scenario, *, outages: list[Outage] | None = None, until: str | float = "14:30",
             operators: bool = True, step: float = STEP) -> TwinRun:
    """The cascade stepped every `step` simulated seconds while the regional name is empty during
    `outages` (default: 2025's). An outage without an end lasts until the scenario's restore-dns."""
    end = parse_pdt(until, scenario.epoch) if isinstance(until, str) else float(until)
    repair = repair_time(scenario.operators) if operators else None
    windows = [(a, b if b is not None else repair if repair is not None else float("inf"))
               for a, b in (incident_outage(scenario) if outages is None else outages)]
    soa = scenario.dns.soa_ttl_seconds
    rng = derive(scenario.seed, "twin")
    c = Cascade.build(scenario, 0.0)
    out = TwinRun()
    sees_again: dict[tuple[str, int], float] = {}

    def dynamodb_ok(client: str, now: float) -> bool:
        """Out from an outage's start until, after its end, the client's cached NODATA (at most the
        SOA's TTL) runs out."""
        for i, (a, b) in enumerate(windows):
            if a <= now:
                back = sees_again.get((client, i))
                if back is None:
                    back = sees_again[client, i] = b + derive(scenario.seed, "twin", client, str(i)).uniform(0, soa)
                if now < back:
                    return False
        return True

    ops = sorted(scenario.operators, key=lambda o: o.at) if operators else []
    mitigated = False
    t = 0.0
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # dependent -> [ok, total] this step

    def count(dep: str, ok: bool) -> None:
        stats[dep][0] += int(ok)
        stats[dep][1] += 1

    while t <= end:
        while ops and ops[0].at <= t:
            op = ops.pop(0)
            mitigated = apply_operator(c, op.action, op.params, t) or mitigated
            # The tooling as built fails while the active tree is gone, as live (services/core/repair.py).
            failed = isinstance(op.params, RestoreDns) and not op.params.mended and any(
                a <= t < b for a, b in windows)
            out.event(t, "operator.action", str(op.action), action=str(op.action),
                      result="failed" if failed else "done")
        tick = c.fleet.advance(t)
        for r in tick.rounds:
            ok = dynamodb_ok(r.host, t)
            write = state_check(c, r, t, ok)
            released = c.fleet.record_writes(r.host, t, write.renewed, write.established, ok)
            count("dwfm_state_check", ok)
            if released:
                c.backlog.add(released, TERMINATED, t, since=t - step)
        if c.fleet.stuck():
            out.stuck_since = t if out.stuck_since is None else out.stuck_since
        else:
            out.stuck_since = None
        for change in (c.watches.leases.observe(c.fleet.leased(), c.fleet.config.droplets),
                       c.watches.collapse.observe(t, c.fleet.timeouts_total, c.fleet.established_total,
                                                  c.fleet.queue_depth())):
            if change:
                out.event(t, change.kind, change.message, **change.attrs)
        # EC2 customers: the core's decisions, performed on the objects (the live workload performs them over gRPC).
        step_ = c.customers.step(t, len(c.fleet.instances))
        gone = []
        for name, targets in step_.terminate_targets.items():
            for iid in targets:
                c.checker.deregister(name, iid)
            gone += targets
        terminated, _held = c.fleet.terminate(gone)
        c.backlog.add(terminated, TERMINATED, t)
        # Then each group's calls at their own times, in the live workload's order (services/workload/
        # dependents.py, launch_tick): a termination by count ends whom DWFM picks then, as live.
        for at, is_launch, group, n in step_.calls():
            if not is_launch:
                terminated, _held = c.fleet.terminate(c.fleet.pick("", n, rng))
                c.backlog.add(terminated, TERMINATED, at)
                continue
            new = launch(c, n, at, count, group or "")
            c.customers.launched(group, len(new))
            if group is not None:
                for iid in new:
                    c.checker.register(group, iid, c.customers.place(group, iid), "", now=at)
                # Each new instance of an NLB app runs one ECS task; a launch refused is a task that never ran.
                c.tasks.launched(new, at)
                for _ in range(n - len(new)):
                    count("ecs_task", False)
        for asking in c.redshift.advance(t):  # replacement hosts, a batch a call, as live
            new = launch(c, len(asking), t, lambda *_: None, REDSHIFT)
            for cluster, _iid in zip(asking, new):
                c.redshift.launched(cluster)
        c.backlog.advance(t)
        rnd = c.checker.advance(t, c.backlog.ready_at.get)
        due = c.tasks.due(t)
        targets = {iid: x.state == HEALTHY for n in c.checker.nlbs.values() for iid, x in n.targets.items()} \
            if due else {}
        started, stopped = c.tasks.settle(due, targets.get)
        for ok, n in ((True, started), (False, stopped)):
            for _ in range(n):
                count("ecs_task", ok)
        for f in rnd.failovers:
            out.event(t, "nlb.failover", f"{f.nlb} {f.zone} {f.action}", nlb=f.nlb, zone=f.zone, action=f.action)
        for x in rnd.transitions:
            if x.flapped:
                c.watches.flaps.flipped(x.nlb, t)
        for change in c.watches.flaps.observe(t):
            out.event(t, change.kind, change.message, **change.attrs)
        # Dependents, one sample each per step.
        dyn = dynamodb_ok("dynamodb-client", t)
        count("legacy", dyn)
        count("lambda_update", dynamodb_ok("lambda", t))
        poll_ok = not c.poller.wedged and dynamodb_ok("lambda-sqs", t)
        if c.poller.record(poll_ok):
            out.event(t, "dependent.errors", "lambda SQS poller wedged", dependent="lambda_sqs", state="wedged")
        count("lambda_sqs", poll_ok)
        sts_backend = internal_reachable(mitigated, lambda: dynamodb_ok("sts", t))
        count("sts", sts_backend and c.checker.connect("sts-nlb", None, c.backlog.ready, rng) == "ok")
        count("iam_signin", internal_reachable(mitigated, lambda: dynamodb_ok("iam_signin", t)))
        # Support Center: the backend's answer to the emptied name is an empty record (NODATA); its
        # fallback, through the dual-stack name, works whenever it is taken.
        response = backend_response("ok" if dynamodb_ok("support_center", t) else "dns_nodata")
        count("support_center", response == OK_RESPONSE or c.support.falls_back(response))
        for cluster in range(c.redshift.count):  # a look at every cluster
            count("redshift", c.redshift.describe(cluster) == AVAILABLE)
        count("app", c.checker.connect("app-nlb", None, c.backlog.ready, rng) == "ok")
        record(out, c, t, stats)
        stats.clear()
        t += step
    return out


def state_check(c: Cascade, r: HostRound, t: float, reachable: bool) -> LeaseWrite:
    """A host's state check against the twin's DynamoDB: read the due droplets' lease items and write
    what the core decides when it is reachable; when not, nothing is read, decided or written."""
    if not reachable:
        return LeaseWrite(r.host, [], list(r.established), [])
    partition = c.leases.setdefault(r.host, {})
    stored = [it for it in map(partition.get, r.checked) if it is not None]
    write = c.fleet.check(r, t, stored)
    partition.update((i.droplet, i) for i in write.items)  # the core's items keep whole seconds, as stored
    return write


def launch(c: Cascade, count_wanted: int, t: float, count, group: str = "") -> list[str]:
    try:
        ids = c.fleet.run_instances(count_wanted, admission_room(c.backlog.config, len(c.backlog.queue)), t,
                                    group)
    except (InsufficientCapacity, RequestLimitExceeded):
        count("ec2_launch", False)
        return []
    count("ec2_launch", True)
    c.backlog.add(ids, NEW, t)
    return ids


def apply_operator(c: Cascade, action: Action, params: Params, t: float) -> bool:
    """The operators' cascade actions on the core objects; returns True for mitigate-internal."""
    if isinstance(params, ThrottleDwfm):
        c.fleet.throttle(params.admit_per_host_second, params.launches_per_second, t)
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
    out.add("racelab_redshift_clusters:modifying", t, c.redshift.count - c.redshift.available())
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
