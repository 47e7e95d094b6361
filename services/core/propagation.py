"""EC2's Network Manager: network state propagates through one backlog.

INCIDENT.md §3: from 05:28 Network Manager worked through a backlog - new
instances plus those terminated during the event - and from 06:21 instances
launched without network until propagation caught up at 10:36.

Terminations made on a droplet without a lease reach the backlog only when
DWFM leases the droplet again, so the event's terminations arrive in a burst
during the lease recovery, ahead of the launches that resume at 05:28. Items are served in order, and every pass reconciles the
whole waiting set, so the more is waiting the slower each item goes
(`propagations_per_second / (1 + waiting / slowdown_items)`) - which is why
throttling by queue size (INCIDENT.md §4) helps. An instance whose network
state has not propagated by the time it has booted runs without network.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Iterable

NEW = "new"
TERMINATED = "terminated"


@dataclass(frozen=True)
class PropagationConfig:
    propagations_per_second: float = 2.0  # with nothing else waiting
    slowdown_items: float = 300.0  # waiting items that halve the rate
    boot_seconds: float = 600.0  # an instance is up this long after launch; without network if not propagated


@dataclass
class Pending:
    instance: str
    kind: str
    queued_at: float


def admission_room(config: PropagationConfig, waiting: int) -> int:
    """With the queue-throttle fix, how many more launches EC2 admits: no more than Network Manager
    can propagate before they boot at its rate with `waiting` ahead of them (INCIDENT.md §4)."""
    rate = config.propagations_per_second / (1.0 + waiting / config.slowdown_items)
    return max(0, int(rate * config.boot_seconds) - waiting)


class Backlog:
    def __init__(self, config: PropagationConfig, now: float = 0.0):
        self.config = config
        self.queue: collections.deque[Pending] = collections.deque()
        self.counts = collections.Counter()  # waiting, by kind
        self.ready_at: dict[str, float] = {}  # instance -> when its network propagated
        self.queued_at: dict[str, float] = {}  # new instances still waiting
        self.now = now
        self.credit = 0.0
        self.propagated = collections.Counter()
        self.without_network_total = 0
        self.throttle: float | None = None  # operators' cap, propagations per simulated second
        self._booting: collections.deque[tuple[float, str]] = collections.deque()

    def add(self, instances: Iterable[str], kind: str, now: float) -> int:
        """Queue propagations; returns how many were ahead."""
        ahead = len(self.queue)
        for iid in instances:
            self.queue.append(Pending(iid, kind, now))
            self.counts[kind] += 1
            if kind == NEW:
                self.queued_at[iid] = now
                self._booting.append((now + self.config.boot_seconds, iid))
            else:
                self.ready_at.pop(iid, None)
        return ahead

    def advance(self, now: float) -> list[Pending]:
        """Serve the backlog, in order, up to `now`."""
        dt = max(0.0, now - self.now)
        done: list[Pending] = []
        self.credit += dt * self.rate()
        while self.queue and self.credit >= 1.0:
            item = self.queue.popleft()
            self.counts[item.kind] -= 1
            self.credit -= 1.0
            self.propagated[item.kind] += 1
            if item.kind == NEW:
                self.queued_at.pop(item.instance, None)
                self.ready_at[item.instance] = now
            done.append(item)
        if not self.queue:
            self.credit = min(self.credit, 1.0)
        while self._booting and self._booting[0][0] <= now:
            _, iid = self._booting.popleft()
            if iid in self.queued_at:
                self.without_network_total += 1
        self.now = now
        return done

    def ready(self, instance: str) -> bool:
        return instance in self.ready_at

    def rate(self) -> float:
        rate = self.config.propagations_per_second / (1.0 + len(self.queue) / self.config.slowdown_items)
        return rate if self.throttle is None else min(rate, self.throttle)

    def pending(self, kind: str) -> int:
        return self.counts[kind]

    def oldest_age(self, now: float) -> float:
        # Items queued by a request after the last advance carry a later time than `now`: just queued.
        return max(0.0, now - self.queue[0].queued_at) if self.queue else 0.0

    def delay(self) -> float:
        """How long an instance queued now would wait for its network, in simulated seconds."""
        return len(self.queue) / self.rate()
