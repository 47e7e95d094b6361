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
import math
from dataclasses import dataclass
from typing import Iterable

NEW = "new"
TERMINATED = "terminated"
SUBSTEP_SECONDS = 10.0  # simulated: the rate is taken afresh at least this often


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
        self._rate_in: tuple[float, float] | None = None  # (start of a 10 s cell, the rate taken there)

    def add(self, instances: Iterable[str], kind: str, now: float, since: float | None = None) -> int:
        """Queue propagations; returns how many were ahead. `since`: the items became due one by one
        over (since, now], as a driver that reports once a tick saw them: they are queued at their
        share of that interval (never before what was already served), not all at its end."""
        ahead = len(self.queue)
        instances = list(instances)
        start = now if since is None else min(now, max(since, self.now))
        for k, iid in enumerate(instances):
            at = start + (now - start) * (k + 1) / len(instances)
            self._enqueue(Pending(iid, kind, at))
            self.counts[kind] += 1
            if kind == NEW:
                self.queued_at[iid] = at
                self._booting.append((at + self.config.boot_seconds, iid))
            else:
                self.ready_at.pop(iid, None)
        return ahead

    def _enqueue(self, item: Pending) -> None:
        """Keep the queue in the order items came: a driver may report a call made earlier in its step
        after one made at the step's end (the twin's launches after DWFM's released terminations)."""
        q = self.queue
        if not q or q[-1].queued_at <= item.queued_at:
            q.append(item)
            return
        i = len(q) - 1
        while i > 0 and q[i - 1].queued_at > item.queued_at:
            i -= 1
        q.insert(i, item)

    def advance(self, now: float) -> list[Pending]:
        """Serve the backlog, in order, up to `now`. Each item is served when its turn comes: once
        it has arrived and the capacity since has paid for it; idle capacity is not saved up. The
        rate follows what waits, taken afresh on a fixed 10 s grid (SUBSTEP_SECONDS) from the items
        already there, not from everything queued by `now`. So how often a driver advances (77-190 s
        ticks live, a 30 s step in the twin) does not change when any instance gets its network."""
        done: list[Pending] = []
        t = self.now
        while t < now:
            cell = math.floor(t / SUBSTEP_SECONDS) * SUBSTEP_SECONDS
            until = min(now, cell + SUBSTEP_SECONDS)
            if self._rate_in is not None and self._rate_in[0] == cell:
                rate = self._rate_in[1]  # an advance ended inside this cell: keep the rate taken at its start
            else:
                # Items arrive in time order: those queued after `t` are at the tail, not waiting yet.
                arriving = 0
                for item in reversed(self.queue):
                    if item.queued_at <= t:
                        break
                    arriving += 1
                rate = self._rate(len(self.queue) - arriving)
                self._rate_in = (cell, rate)
            clock = t
            while self.queue and self.queue[0].queued_at <= until:
                item = self.queue[0]
                if item.queued_at > clock:  # idle until it came
                    self.credit = min(self.credit + (item.queued_at - clock) * rate, 1.0)
                    clock = item.queued_at
                if self.credit < 1.0:
                    finish = clock + (1.0 - self.credit) / rate if rate > 0 else math.inf
                    if finish > until:
                        break
                    self.credit, clock = 1.0, finish
                self.queue.popleft()
                self.counts[item.kind] -= 1
                self.credit -= 1.0
                self.propagated[item.kind] += 1
                if item.kind == NEW:
                    self.queued_at.pop(item.instance, None)
                    self.ready_at[item.instance] = clock
                done.append(item)
            self.credit += (until - clock) * rate
            if not self.queue or self.queue[0].queued_at > until:
                self.credit = min(self.credit, 1.0)  # idle at the end: not saved up
            t = until
        while self._booting and self._booting[0][0] <= now:
            booted, iid = self._booting.popleft()
            if iid in self.queued_at or self.ready_at.get(iid, float("-inf")) > booted:
                self.without_network_total += 1
        self.now = max(self.now, now)
        return done

    def ready(self, instance: str) -> bool:
        return instance in self.ready_at

    def rate(self) -> float:
        return self._rate(len(self.queue))

    def _rate(self, waiting: int) -> float:
        rate = self.config.propagations_per_second / (1.0 + waiting / self.config.slowdown_items)
        return rate if self.throttle is None else min(rate, self.throttle)

    def pending(self, kind: str) -> int:
        return self.counts[kind]

    def oldest_age(self, now: float) -> float:
        # Items queued by a request after the last advance carry a later time than `now`: just queued.
        return max(0.0, now - self.queue[0].queued_at) if self.queue else 0.0

    def delay(self) -> float:
        """How long an instance queued now would wait for its network, in simulated seconds."""
        return len(self.queue) / self.rate()
