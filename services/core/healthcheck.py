"""NLB health checking and automatic AZ DNS failover.

INCIDENT.md §3: NLB health checks brought new instances into service before
their network state had propagated: checks failed, then passed, then failed;
nodes were pulled from DNS and re-added. The extra load slowed the
health-check subsystem itself, whose delays triggered automatic AZ DNS
failover, removing capacity until clients saw connection errors.

Here: each target is checked every `check_interval_seconds`; a target whose
network has not propagated passes a check only now and then (its state is
half there), so it flaps. Every health transition costs the checker extra
work (DNS updates, re-checks). The checker runs `checker_capacity_per_second`
checks; load beyond that piles up as delay, and a late checker gives each
target its verdicts late (so new targets wait longer to come into service). A
delay over
`failover_delay_seconds` makes zones look unhealthy and automatic failover
takes the weakest zone of each NLB out of DNS, one per cooldown, never the
last. Velocity control (INCIDENT.md §4) caps how many zones one NLB may
remove. Sans-IO: the shell supplies when each target's network propagated and
writes DNS. Each check has its own time within an advance, so a live service
ticking every 150 simulated seconds and the twin stepping every 30 see the same
checks (tests/core/test_step_independence.py).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Callable, Iterable

HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
INITIAL = "initial"


@dataclass(frozen=True)
class NlbConfig:
    names: tuple[str, ...] = ("app-nlb", "sts-nlb")  # one per NLB-backed dependent
    check_interval_seconds: float = 10.0
    healthy_threshold: int = 3
    unhealthy_threshold: int = 2
    checker_capacity_per_second: float = 30.0
    transition_cost_checks: float = 700.0  # checker work one health transition adds
    failover_delay_seconds: float = 60.0
    failover_after_seconds: float = 0.0  # checks late that long, without a break, before a zone looks sick
    failover_cooldown_seconds: float = 600.0
    unpropagated_pass_probability: float = 0.3
    required_capacity: float = 0.6  # share of registered targets the NLB's traffic needs
    velocity_limit_zones: int = 1  # with the velocity-control fix: zones one NLB may remove at once


@dataclass
class Target:
    instance: str
    zone: str
    address: str
    state: str = INITIAL
    passes: int = 0
    fails: int = 0
    transitions: int = 0
    reason: str = ""
    in_service_once: bool = False  # has been healthy: from then on every change of state is a flap
    registered_at: float = float("-inf")  # checked from then on, not for the rounds before


@dataclass
class Transition:
    nlb: str
    target: Target
    state: str
    flapped: bool  # between healthy and unhealthy (not a first verdict)


@dataclass
class FailoverChange:
    nlb: str
    zone: str
    action: str  # "remove" | "restore"
    delay: float


@dataclass
class Nlb:
    name: str
    zones: tuple[str, ...]
    targets: dict[str, Target] = field(default_factory=dict)
    failed_over: dict[str, float] = field(default_factory=dict)  # zone -> when it was removed
    last_failover: float = float("-inf")

    def healthy(self, zone: str | None = None) -> list[Target]:
        return [t for t in self.targets.values() if t.state == HEALTHY and (zone is None or t.zone == zone)]

    def zones_in_dns(self) -> list[str]:
        """Zones whose node is in the NLB's DNS: not failed over, with a healthy target."""
        wanted = {z for z in self.zones if z not in self.failed_over}
        with_healthy = set()
        for t in self.targets.values():  # hundreds of targets, a few zones: stop once each has one
            if t.state == HEALTHY and t.zone in wanted:
                with_healthy.add(t.zone)
                if len(with_healthy) == len(wanted):
                    break
        return [z for z in self.zones if z in with_healthy]

    def capacity_ratio(self) -> float:
        if not self.targets:
            return 0.0
        in_dns = set(self.zones_in_dns())
        serving = sum(1 for t in self.targets.values() if t.state == HEALTHY and t.zone in in_dns)
        return serving / len(self.targets)


@dataclass
class CheckRound:
    transitions: list[Transition]
    failovers: list[FailoverChange]
    dns_changed: list[str]  # NLBs whose zone set in DNS changed
    passes: dict[str, int]
    fails: dict[str, int]


class HealthChecker:
    def __init__(self, config: NlbConfig, nlbs: Iterable[Nlb], now: float = 0.0, *, velocity_control: bool = False,
                 rng: random.Random | None = None):
        self.config = config
        self.nlbs = {n.name: n for n in nlbs}
        self.velocity_control = velocity_control
        self.rng = rng or random.Random(0)
        self.now = now
        # Work waiting, in checks: scheduled checks not run yet, and the extra work flips cause (DNS
        # updates, re-checks). Both share the checker's capacity; only scheduled checks give verdicts.
        self.scheduled = 0.0
        self.extra = 0.0
        self.automatic_failover = True
        self._late_since: float | None = None  # since when checks have been late beyond the failover delay
        self._check_credit = 0.0
        self.failovers_total = 0

    @property
    def delay(self) -> float:
        return (self.scheduled + self.extra) / self.config.checker_capacity_per_second

    def register(self, nlb: str, instance: str, zone: str, address: str, in_service: bool = False,
                 now: float | None = None) -> Target:
        """Add a target at `now` (default: the last advance); `in_service`: it has been healthy since
        before the night."""
        n = self.nlbs[nlb]
        if zone not in n.zones:
            raise ValueError(f"{nlb} has no zone {zone!r}; zones: {', '.join(n.zones)}")
        target = n.targets.setdefault(instance, Target(instance, zone, address,
                                                       registered_at=self.now if now is None else now))
        if in_service:
            target.state, target.in_service_once = HEALTHY, True
        return target

    def deregister(self, nlb: str, instance: str) -> bool:
        return self.nlbs[nlb].targets.pop(instance, None) is not None

    def set_automatic_failover(self, enabled: bool, now: float) -> list[FailoverChange]:
        """Turning it off brings every failed-over zone back at once."""
        self.automatic_failover = enabled
        restored = []
        if not enabled:
            for n in self.nlbs.values():
                for zone in list(n.failed_over):
                    del n.failed_over[zone]
                    restored.append(FailoverChange(n.name, zone, "restore", self.delay))
        return restored

    def advance(self, now: float, propagated_at: Callable[[str], float | None]) -> CheckRound:
        """Run the checks due since the last advance. `propagated_at(instance)`: when the instance's
        network propagated (None: not yet). Each round has its own time within the advance, so a
        target whose network arrives midway passes from then on: the outcome does not depend on how
        often the shell advances (77-190 s ticks live, a 30 s step in the twin)."""
        cfg = self.config
        start = self.now
        dt = max(0.0, now - start)
        self.now = now
        before = {name: tuple(n.zones_in_dns()) for name, n in self.nlbs.items()}
        targets = [(n, t) for n in self.nlbs.values() for t in n.targets.values()]
        # Every target is due once per interval; the checker only gets through its capacity, shared
        # between the two kinds of work in proportion to what waits. A late checker runs its checks
        # late, so each target gets fewer verdicts, never more: catching up is the extra work
        # draining, not targets checked faster.
        # A target registered since the last advance is due only for the part after it came.
        on_duty = sum(dt if t.registered_at <= start else now - min(now, t.registered_at)
                      for _, t in targets) / dt if dt > 0 else len(targets)
        self.scheduled += on_duty * dt / cfg.check_interval_seconds
        waiting = self.scheduled + self.extra
        done = min(cfg.checker_capacity_per_second * dt, waiting)
        checks = done * self.scheduled / waiting if waiting else 0.0
        self.scheduled -= checks
        self.extra = max(0.0, self.extra - (done - checks))
        carried = self._check_credit  # a part of a round from before: the first round comes sooner
        gained = checks / on_duty if on_duty > 0 else 0.0
        self._check_credit += gained
        rounds = int(self._check_credit + 1e-9)  # a float sum must not lose a whole round
        self._check_credit = max(0.0, self._check_credit - rounds)
        passes: dict[str, int] = {}
        fails: dict[str, int] = {}
        chance, pass_probability = self.rng.random, cfg.unpropagated_pass_probability
        healthy_after, unhealthy_after = cfg.healthy_threshold, cfg.unhealthy_threshold
        rounds = min(rounds, 50)
        # Round r runs when the credit, growing evenly over the advance, reaches r: at
        # start + (r - carried) / gained * dt, the same times however the advances cut the night. A
        # target takes the rounds from its registration on, and passes those from its network's
        # arrival on: how often the shell advances (77-190 s ticks live, a 30 s step in the twin)
        # does not change what it sees. One with network from its first round passes every
        # round (its network cannot go again): all its rounds at once. The others draw a verdict per
        # round until their network comes, in the same order as round by round, so the checker's
        # random stream is the same; the flips are put back in the order round by round gave them
        # (the live service keeps spans for the first of them).
        def round_of(at: float | None) -> int:
            """The first round at or after `at`: rounds + 1 if none."""
            if at is None or at > now:
                return rounds + 1
            if at <= start or dt <= 0:
                return 1
            return max(1, math.ceil(carried + (at - start) * gained / dt - 1e-9))

        flips: list[tuple[int, int, Transition]] = []  # (round, target's place, flip)
        unready = []  # (target's place, NLB, target, its first round, its first round with network)
        for i, (n, t) in enumerate(targets if rounds else ()):
            # round_of, inlined for the usual cases (hundreds of targets a step): registered, or with
            # network, before this advance (round 1), or no network yet (none of these rounds).
            at = t.registered_at
            present = 1 if at <= start else round_of(at)
            at = propagated_at(t.instance)
            first = rounds + 1 if at is None else 1 if at <= start else round_of(at)
            if first < present:
                first = present
            if present > rounds:
                continue
            if first == present:
                took = rounds - present + 1
                passes[n.name] = passes.get(n.name, 0) + took
                had, t.passes, t.fails = t.passes, t.passes + took, 0
                if t.state != HEALTHY and t.passes >= healthy_after:
                    flips.append((present - 1 + max(1, healthy_after - had), i, self._flip(n, t, HEALTHY, "")))
            else:
                unready.append((i, n, t, present, first))
        for r in range(1, rounds + 1 if unready else 1):
            for i, n, t, present, first in unready:
                if r < present:
                    continue
                if r >= first or chance() < pass_probability:
                    passes[n.name] = passes.get(n.name, 0) + 1
                    t.passes, t.fails = t.passes + 1, 0
                    if t.state != HEALTHY and t.passes >= healthy_after:
                        flips.append((r, i, self._flip(n, t, HEALTHY, "")))
                else:
                    fails[n.name] = fails.get(n.name, 0) + 1
                    t.fails, t.passes = t.fails + 1, 0
                    if t.state != UNHEALTHY and t.fails >= unhealthy_after:
                        flips.append((r, i, self._flip(n, t, UNHEALTHY, "no network: connection timed out")))
        flips.sort(key=lambda f: f[:2])
        transitions = [f[2] for f in flips]
        # Each flip is more work for the checker: a DNS update and a burst of re-checks.
        self.extra += sum(1 for x in transitions if x.flapped) * cfg.transition_cost_checks
        failovers = self._failover(now)
        dns_changed = [name for name, n in self.nlbs.items() if tuple(n.zones_in_dns()) != before[name]]
        return CheckRound(transitions, failovers, dns_changed, passes, fails)

    def _flip(self, n: Nlb, t: Target, state: str, reason: str) -> Transition:
        # A new target failing until its network arrives and then coming into service is not a flap;
        # one that was in service and drops out (and comes back) is.
        flapped = t.in_service_once
        t.in_service_once = t.in_service_once or state == HEALTHY
        t.transitions += int(flapped)
        t.state, t.reason = state, reason
        return Transition(n.name, t, state, flapped)

    def _failover(self, now: float) -> list[FailoverChange]:
        cfg = self.config
        changes: list[FailoverChange] = []
        if not self.automatic_failover:
            return changes
        late = self.delay > cfg.failover_delay_seconds
        if not late:
            self._late_since = None
        elif self._late_since is None:
            self._late_since = now
        # A burst of late checks is not a sick zone; lateness that lasts is.
        slow = late and now - self._late_since >= cfg.failover_after_seconds
        for n in self.nlbs.values():
            if now - n.last_failover < cfg.failover_cooldown_seconds:
                continue
            if slow:
                # Late checks look like a sick zone: take the weakest out of DNS, never the last one.
                in_service = [z for z in n.zones if z not in n.failed_over]
                limit = cfg.velocity_limit_zones if self.velocity_control else len(n.zones) - 1
                if len(in_service) > 1 and len(n.failed_over) < limit:
                    zone = min(in_service, key=lambda z: (len(n.healthy(z)), z))
                    n.failed_over[zone] = now
                    n.last_failover = now
                    self.failovers_total += 1
                    changes.append(FailoverChange(n.name, zone, "remove", self.delay))
            elif n.failed_over and self.delay < cfg.failover_delay_seconds / 2:
                zone = min(n.failed_over, key=n.failed_over.get)
                del n.failed_over[zone]
                n.last_failover = now
                changes.append(FailoverChange(n.name, zone, "restore", self.delay))
        return changes

    def connect(self, nlb: str, zone: str | None, network_ready: Callable[[str], bool], rng: random.Random) -> str:
        """A client connection through one of the NLB's zone nodes: "ok" or why it failed."""
        n = self.nlbs[nlb]
        if zone is not None and zone not in n.zones_in_dns():
            return "connect_error"  # a node no longer in DNS (a cached answer) refuses
        in_dns = set(n.zones_in_dns())
        serving = [t for t in n.targets.values() if t.state == HEALTHY and t.zone in in_dns and network_ready(t.instance)]
        needed = self.config.required_capacity * max(1, len(n.targets))
        if not serving or rng.random() > len(serving) / needed:
            return "connect_error"
        return "ok"
