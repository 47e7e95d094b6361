"""The cascade's composition, once: every cascade object built from typed config, the fixes and
one seed deriver, and the EC2 customers' step that decides what to launch and terminate.

The live dwfm, netmgr, nlb and workload services build their objects here and only perform the
I/O (gRPC, DNS, DynamoDB); the cascade's twin builds the very same objects here and performs the
same decisions on them in one process. Nothing here imports above the core.

Seeds come from one tree (core/seeds.py): `derive(seed, "dwfm")` is the DWFM fleet's generator,
`derive(seed, "nlb")` the health checker's, `derive(seed, "customers", name)` a customer group's.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field

from services.core.dependents import LAUNCH_PERIOD, Customers, DependentsConfig, RedshiftClusters, SqsPoller, \
    SupportCenter, TaskLaunches
from services.core.detectors import CollapseWatch, FlapWatch, LeaseWatch
from services.core.fixes import Fix
from services.core.healthcheck import HealthChecker, Nlb, NlbConfig
from services.core.leases import DwfmConfig, Fleet
from services.core.propagation import Backlog, PropagationConfig
from services.core.seeds import derive


def build_fleet(config: DwfmConfig, fixes: frozenset[Fix], seed: int, now: float) -> Fleet:
    return Fleet(config, now, queue_throttle=Fix.QUEUE_THROTTLE in fixes, rng=derive(seed, "dwfm"))


def build_backlog(config: PropagationConfig, now: float) -> Backlog:
    return Backlog(config, now)


def build_checker(config: NlbConfig, zones: tuple[str, ...], fixes: frozenset[Fix], seed: int,
                  now: float) -> HealthChecker:
    return HealthChecker(config, [Nlb(n, zones) for n in config.names], now,
                         velocity_control=Fix.NLB_VELOCITY in fixes, rng=derive(seed, "nlb"))


def build_poller(config: DependentsConfig) -> SqsPoller:
    return SqsPoller(config.sqs_wedge_after)


def build_redshift(config: DependentsConfig, seed: int, now: float) -> RedshiftClusters:
    return RedshiftClusters(config.redshift_clusters, config.redshift_replacements_per_hour, config.launch_batch,
                            derive(seed, "customers", "redshift"), now)


def build_support_center(fixes: frozenset[Fix]) -> SupportCenter:
    return SupportCenter(validates=Fix.VALIDATING_FALLBACK in fixes)


def build_tasks(config: DependentsConfig) -> TaskLaunches:
    return TaskLaunches(config.task_start_grace_seconds)


@dataclass
class Watches:
    """The cascade's named states (core/detectors.py): dwfm judges leases and collapse, nlb flapping."""

    leases: LeaseWatch
    collapse: CollapseWatch
    flaps: FlapWatch

    @classmethod
    def build(cls, dwfm: DwfmConfig, nlb: NlbConfig) -> "Watches":
        return cls(LeaseWatch(), CollapseWatch(dwfm.state_check_interval_seconds), FlapWatch(tuple(nlb.names)))


@dataclass
class CustomerStep:
    """What the EC2 customers do in one step: terminate some of the general fleet (DWFM picks
    which), terminate chosen app targets (deregistered from their NLB first), and launch."""

    # (when, how many) of the general fleet to terminate, in time order: one TerminateInstances a
    # LAUNCH_PERIOD at most, at the time its last termination fell due.
    terminate_general: list[tuple[float, int]]
    terminate_targets: dict[str, list[str]]  # NLB -> its instances to deregister and terminate
    # (when, NLB app or None for the general customers, instances), in time order: each group calls
    # once per LAUNCH_PERIOD, so a long step holds several calls of each, interleaved.
    launches: list[tuple[float, str | None, int]]

    def calls(self) -> list[tuple[float, bool, str | None, int]]:
        """The general terminations and the launches as one list of (when, is a launch, group, count) in
        time order, a termination before a launch at a tie: the order both drivers make the calls in."""
        return sorted([(at, False, None, n) for at, n in self.terminate_general] +
                      [(at, True, group, n) for at, group, n in self.launches], key=lambda call: call[:2])


def termination_calls(times: list[float]) -> list[tuple[float, int]]:
    """Terminations due at `times` (in order), one call for each LAUNCH_PERIOD they fall in."""
    calls: list[tuple[float, int]] = []
    for at in times:
        period = math.ceil(at / LAUNCH_PERIOD)
        if calls and math.ceil(calls[-1][0] / LAUNCH_PERIOD) == period:
            calls[-1] = (at, calls[-1][1] + 1)
        else:
            calls.append((at, 1))
    return calls


@dataclass
class Ec2Customers:
    """The general EC2 customers and each NLB app's customers: their churn, their launches, and
    where each app's new targets go (round-robin over the zones)."""

    config: DependentsConfig
    zones: tuple[str, ...]
    general: Customers
    apps: dict[str, Customers]
    targets: dict[str, list[str]] = field(default_factory=dict)  # NLB -> its app's instances
    placed: Counter = field(default_factory=Counter)  # NLB -> targets placed so far
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def build(cls, config: DependentsConfig, zones: tuple[str, ...], app_nlbs: list[str], seed: int,
              now: float) -> "Ec2Customers":
        general = Customers(config.churn_per_hour, config.customer_growth_per_hour, config.launch_batch * 4,
                            derive(seed, "customers", "ec2"), now)
        apps = {n: Customers(config.app_churn_per_hour, config.app_growth_per_hour, config.launch_batch,
                             derive(seed, "customers", n), now) for n in app_nlbs}
        return cls(config, zones, general, apps, {n: [] for n in app_nlbs}, rng=derive(seed, "customers", "churn"))

    @property
    def standing_targets(self) -> int:
        """Targets each NLB app has from the start (in service long before the night began)."""
        return self.config.app_targets_per_zone * len(self.zones)

    def place(self, nlb: str, instance: str) -> str:
        """The zone of a new target of `nlb`, which joins the app's instances."""
        zone = self.zones[self.placed[nlb] % len(self.zones)]
        self.placed[nlb] += 1
        self.targets[nlb].append(instance)
        return zone

    def step(self, now: float, running: int) -> CustomerStep:
        demand = self.general.advance(now, running)
        launches: list[tuple[float, str | None, int]] = [(at, None, n) for at, n in zip(demand.times, demand.launches)]
        gone: dict[str, list[str]] = {}
        for name, app in self.apps.items():
            ids = self.targets[name]
            d = app.advance(now, len(ids))
            chosen = self.rng.sample(ids, min(d.terminate, len(ids)))
            for iid in chosen:
                ids.remove(iid)
            if chosen:
                gone[name] = chosen
            launches.extend((at, name, n) for at, n in zip(d.times, d.launches))
        launches.sort(key=lambda call: call[0])  # stable: at the same instant, the general customers first
        return CustomerStep(termination_calls(demand.terminate_times), gone, launches)

    def launched(self, group: str | None, count: int) -> None:
        (self.general if group is None else self.apps[group]).launched(count)
