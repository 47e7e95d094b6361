"""EC2's DropletWorkflow Manager (DWFM): droplet leases, lease work, launches.

INCIDENT.md §3: every few minutes each DWFM host completes a state check with
each of its droplets; the check writes the droplet's lease to DynamoDB. When
the checks fail, leases time out one by one; a droplet without a lease takes
no launch ("insufficient capacity"). When DynamoDB came back, DWFM tried to
re-lease the whole fleet at once: each attempt took longer than the lease
work timeout, timed-out work was queued again, and nothing progressed.

The collapse comes out of three numbers, never a switch. A host works on all
its admitted lease items at once, sharing itself between them (processor
sharing): with n items in flight each one needs n x `lease_work_seconds` to
finish. Once n x lease_work_seconds > lease_work_timeout_seconds every item
times out before it finishes, and the host retries it in place - so n never
shrinks and goodput is zero. Throttling admissions alone does not help (the
retries are already in flight); restarting a host drops them; both together
let a few items at a time finish inside the timeout.

The leases are kept in DynamoDB, one item per droplet under its host's
partition (`LeaseItem`). A host's state check reads its lease items, renews the
due leases the table still holds (a lease the table shows lapsed is lost and
re-leased, whatever DWFM remembers), writes them back with the new leases, and
only then counts them renewed: with DynamoDB out, neither the read nor the write
goes through and the leases run out.

Sans-IO: the shell calls `advance(now)`; for each host round it reads the host's
lease items (`HostRound.host` is the partition), asks `check` which items to
write, writes them (one batch per host) and reports back with `record_writes`.
No clock reads, no I/O here.
"""

from __future__ import annotations

import collections
from bisect import bisect_left
import math
import random
from dataclasses import dataclass, field
from itertools import chain
from typing import Iterable, NamedTuple


LAUNCH_BURST = 50.0  # launches a throttled caller may make at once after a quiet spell
# ...or this many simulated seconds of the throttled rate, if more. Live, the EC2 customers call in
# bursts a wall tick apart, and in the fast hours a wall tick spans minutes of simulated time: a
# bucket that held only a minute's worth threw away most of what the rate allowed in between.
LAUNCH_BURST_SECONDS = 300.0


@dataclass(frozen=True)
class DwfmConfig:
    droplets: int = 4000
    hosts: int = 8
    slots_per_droplet: int = 4
    state_check_interval_seconds: float = 300.0  # "every few minutes"
    lease_seconds: float = 1200.0  # a lease outlives its last good check by this much
    lease_work_seconds: float = 7.0  # host work to (re-)establish one lease, alone on the host
    lease_work_timeout_seconds: float = 600.0
    running_fraction: float = 0.5  # share of slots holding running instances at the start


LEASE_TABLE = "droplet-leases"
RENEWED, ESTABLISHED = "renewed", "established"


class LeaseItem(NamedTuple):
    """One droplet's lease as DWFM keeps it in DynamoDB: partition key the host (one Query reads a
    host's leases), sort key the droplet. A tuple: a state check makes one per droplet, thousands a
    simulated minute, and a tuple is built four times faster than a frozen dataclass."""

    host: str
    droplet: int
    expires_at: float  # simulated seconds
    state: str  # RENEWED | ESTABLISHED

    @property
    def sort_key(self) -> str:
        return f"droplet-{self.droplet:05d}"

    def attributes(self) -> dict[str, str]:
        return {"expires_at": f"{self.expires_at:.0f}", "state": self.state}

    @classmethod
    def parse(cls, host: str, sort_key: str, attributes: dict[str, str]) -> "LeaseItem":
        """The item as read back; ValueError naming what is wrong with a malformed one."""
        prefix, _, number = sort_key.partition("-")
        if prefix != "droplet" or not number.isdigit():
            raise ValueError(f"lease item {host}/{sort_key}: sort key is not droplet-<number>")
        try:
            expires_at = float(attributes["expires_at"])
        except (KeyError, ValueError):
            raise ValueError(f"lease item {host}/{sort_key}: expires_at missing or not a number") from None
        state = attributes.get("state", "")
        if state not in (RENEWED, ESTABLISHED):
            raise ValueError(f"lease item {host}/{sort_key}: state {state!r} is not {RENEWED} or {ESTABLISHED}")
        return cls(host, int(number), expires_at, state)


@dataclass
class LeaseWrite:
    """What one host's state check writes back: the items, and the droplets they renew or establish."""

    host: str
    renewed: list[int]
    established: list[int]
    items: list[LeaseItem]


class InsufficientCapacity(Exception):
    """No droplet with a valid lease has room."""


class RequestLimitExceeded(Exception):
    """The operators' throttle refused the call."""


@dataclass
class _Item:
    droplet: int
    deadline: float  # when this attempt times out
    start_virtual: float  # the host's virtual time at admission


@dataclass
class Host:
    """One DWFM host: its droplets, its admission backlog and the work it has in flight."""

    index: int
    droplets: list[int]
    reachable: bool = True  # did its last DynamoDB write go through?
    backlog: collections.deque = field(default_factory=collections.deque)  # droplets waiting for admission
    in_flight: collections.deque = field(default_factory=collections.deque)  # _Item, oldest first
    virtual: float = 0.0  # work seconds each in-flight item has received since t=0 (processor sharing)
    tokens: float = 0.0  # admission tokens under a throttle
    awaiting_write: list[int] = field(default_factory=list)  # finished lease work, not yet written
    next_check: float = 0.0
    # No lease of this host's droplets ends before this (a lower bound, lowered at every write): a round
    # looks for lapsed leases only from then on, so a healthy fleet is scanned every ~15 min, not every round.
    expiry_floor: float = 0.0

    @property
    def name(self) -> str:
        return f"dwfm-{self.index + 1}"


@dataclass
class HostRound:
    """One host's state-check round: its droplets due a check (`checked`) and the leases its lease work
    has newly established; `check` turns it into the lease items to write."""

    host: str
    checked: list[int]
    established: list[int]


@dataclass
class Tick:
    rounds: list[HostRound]
    expired: dict[str, int]  # host -> leases that timed out in this step
    timeouts: dict[str, int]  # host -> lease work items that timed out in this step


class Fleet:
    """The droplets, their leases and the DWFM hosts, in simulated time."""

    def __init__(self, config: DwfmConfig, now: float = 0.0, *, queue_throttle: bool = False,
                 rng: random.Random | None = None):
        self.config = config
        self.queue_throttle = queue_throttle  # INCIDENT.md §4: admit only what can finish in time
        self.rng = rng or random.Random(0)
        n = config.droplets
        self.hosts = [Host(h, [d for d in range(n) if d % config.hosts == h]) for h in range(config.hosts)]
        self.lease_expires = [0.0] * n
        self.next_check = [0.0] * n
        self.needs_lease = [False] * n
        for d in range(n):
            # Checks are spread over the interval; every lease is fresh at the start.
            self.next_check[d] = now + self.rng.uniform(0, config.state_check_interval_seconds)
            self.lease_expires[d] = self.next_check[d] + config.lease_seconds
        for h in self.hosts:
            h.next_check = now
            h.expiry_floor = min((self.lease_expires[d] for d in h.droplets), default=math.inf)
        self._by_name = {h.name: h for h in self.hosts}
        self.slots_free = [config.slots_per_droplet] * n
        self.instances: dict[str, int] = {}  # instance id -> droplet
        # Whose each instance is: "" the general EC2 customers, else an NLB app or Redshift. A group's
        # instances are kept in launch order, which is id order (ids grow), so a pick is one draw.
        self.group_of: dict[str, str] = {}
        self._members: dict[str, list[str]] = collections.defaultdict(list)
        self.pending_terminations: dict[int, list[str]] = collections.defaultdict(list)
        self._seq = 0
        # Per host: its droplets with a lease and a free slot, and their free slots; None: to be counted
        # again (a slot or a lease of one of its droplets changed). Launches come several a step and
        # each needs them; a host's are recounted only after it changed, not for every launch.
        self._open: list[tuple[list[int], int] | None] = [None] * len(self.hosts)
        running = int(n * config.slots_per_droplet * config.running_fraction)
        for i in range(running):
            d = i % n
            self._place(d)
        self.now = now
        self.admit_rate: float | None = None  # per host per simulated second; None: no throttle
        self.launch_rate: float | None = None  # RunInstances per simulated second; None: no throttle
        self.launch_tokens = 0.0
        self._tokens_at = now  # when launch_tokens was last topped up
        self._relax: tuple[float, float, float] | None = None  # (start, end, from rate) of a ramp to no throttle
        self.timeouts_total = 0
        self.established_total = 0
        self.expired_total = 0

    # ---- what the metrics show ----

    def leased(self) -> int:
        return self.config.droplets - sum(self.needs_lease)  # bools, summed in C

    def queue_depth(self) -> int:
        return sum(len(h.backlog) + len(h.in_flight) + len(h.awaiting_write) for h in self.hosts)

    def in_flight(self) -> int:
        return sum(len(h.in_flight) for h in self.hosts)

    def stuck(self) -> bool:
        """A congestive collapse that cannot end by itself. With no admission throttle, every host that
        has lease work has so much of it in flight that each item gets less than `lease_work_seconds`
        of the host before its timeout (n x lease_work_seconds > lease_work_timeout_seconds); a timed-out
        item is retried in place, so n never shrinks and nothing ever finishes. Only an operator breaks
        it: a throttle with restarts that drop what is in flight."""
        if self.admit_rate is not None or self.queue_throttle:
            return False
        cfg = self.config
        busy = [h for h in self.hosts if h.in_flight or h.backlog]
        return bool(busy) and all(len(h.in_flight) * cfg.lease_work_seconds > cfg.lease_work_timeout_seconds
                                  for h in busy)

    # ---- time ----

    def advance(self, now: float) -> Tick:
        """Move to `now`: leases expire, lease work progresses or times out, checks fall due."""
        dt = max(0.0, now - self.now)
        self._update_ramp(now)  # the launch tokens are topped up at each call, at the call's time
        expired: dict[str, int] = {}
        timeouts: dict[str, int] = {}
        rounds = []
        cfg = self.config
        for h in self.hosts:
            round_due = now >= h.next_check
            if round_due and now >= h.expiry_floor:  # leases are looked at once a round (a tenth of the check interval)
                needs, expires = self.needs_lease, self.lease_expires
                gone = [d for d in h.droplets if expires[d] <= now and not needs[d]]
                for d in gone:
                    needs[d] = True
                h.backlog.extend(gone)
                if gone:
                    self._open[h.index] = None
                h.expiry_floor = min((expires[d] for d in h.droplets if not needs[d]), default=math.inf)
                lost = len(gone)
                if lost:
                    expired[h.name] = lost
                    self.expired_total += lost
            if h.reachable:  # a host that cannot reach DynamoDB does not start lease work
                self._admit(h, dt)
            t = self._work(h, self.now, now)
            if t:
                timeouts[h.name] = t
                self.timeouts_total += t
            if round_due:
                h.next_check = now + cfg.state_check_interval_seconds / 10  # a round every tenth of the interval
                needs, next_check = self.needs_lease, self.next_check
                due = [d for d in h.droplets if next_check[d] <= now and not needs[d]]
                next_at = now + cfg.state_check_interval_seconds
                for d in due:
                    next_check[d] = next_at
                rounds.append(HostRound(h.name, due, h.awaiting_write))
                h.awaiting_write = []
        self.now = now
        return Tick(rounds, expired, timeouts)

    def _admit(self, h: Host, dt: float) -> None:
        cfg = self.config
        limit = len(h.backlog)
        if self.admit_rate is not None:
            # The burst cap bounds what is carried over, never what this tick earned: a live tick may span
            # minutes of simulated time, and capping the sum threw away each tick's leftover fraction
            # (at 77 s ticks the fleet took 82 minutes to re-lease instead of 76).
            h.tokens = min(h.tokens, max(1.0, self.admit_rate * 60)) + dt * self.admit_rate
            limit = min(limit, int(h.tokens))
        if self.queue_throttle:
            # Admit only while everything in flight can still finish inside the timeout.
            room = int(cfg.lease_work_timeout_seconds / cfg.lease_work_seconds * 0.5) - len(h.in_flight)
            limit = min(limit, max(0, room))
        for _ in range(limit):
            d = h.backlog.popleft()
            h.in_flight.append(_Item(d, self.now + cfg.lease_work_timeout_seconds, h.virtual))
            if self.admit_rate is not None:
                h.tokens -= 1

    def _work(self, h: Host, start: float, end: float) -> int:
        """Processor sharing from `start` to `end`; returns how many items timed out."""
        cfg = self.config
        t = start
        timed_out = 0
        while h.in_flight and t < end:
            n = len(h.in_flight)
            head = h.in_flight[0]
            finish_at = t + (head.start_virtual + cfg.lease_work_seconds - h.virtual) * n
            next_event = min(finish_at, head.deadline, end)
            h.virtual += (next_event - t) / n
            t = next_event
            if t >= head.deadline and head.deadline <= finish_at:
                # Timed out: the work is wasted and the host queues it again, at the back, at once.
                h.in_flight.popleft()
                h.in_flight.append(_Item(head.droplet, t + cfg.lease_work_timeout_seconds, h.virtual))
                timed_out += 1
            elif t >= finish_at:
                h.in_flight.popleft()
                h.awaiting_write.append(head.droplet)
        return timed_out

    def check(self, r: HostRound, now: float, stored: Iterable[LeaseItem]) -> LeaseWrite:
        """A host's state check, given the lease items read from its partition: which items to write.
        A due droplet whose item shows its lease lapsed has lost it (the table is the record) and is
        queued for lease work; a droplet with no item yet gets one (the table starts empty)."""
        h = self._host(r.host)
        table = {item.droplet: item for item in stored if item.host == r.host}
        expires = float(round(now + self.config.lease_seconds))  # as the table keeps it: whole seconds
        renewed = []
        for d in r.checked:
            item = table.get(d)
            if item is not None and item.expires_at <= now and not self.needs_lease[d]:
                self.needs_lease[d] = True
                self._open[h.index] = None
                h.backlog.append(d)
                self.expired_total += 1
            elif not self.needs_lease[d]:
                renewed.append(d)
        items = [LeaseItem(r.host, d, expires, RENEWED) for d in renewed]
        items += [LeaseItem(r.host, d, expires, ESTABLISHED) for d in r.established]
        return LeaseWrite(r.host, renewed, list(r.established), items)

    def record_writes(self, host: str, now: float, checked: Iterable[int], established: Iterable[int],
                      ok: bool) -> list[str]:
        """The outcome of one host's DynamoDB write. Returns terminations that may now propagate."""
        h = self._host(host)
        h.reachable = ok
        released: list[str] = []
        if not ok:
            for d in established:  # written nowhere: the lease is not there; do the work again later
                h.backlog.append(d)
            return released
        h.expiry_floor = min(h.expiry_floor, now + self.config.lease_seconds)
        for d in checked:
            if not self.needs_lease[d]:
                self.lease_expires[d] = now + self.config.lease_seconds
        if established:
            self._open[h.index] = None
        for d in established:
            self.needs_lease[d] = False
            self.lease_expires[d] = now + self.config.lease_seconds
            self.next_check[d] = now + self.config.state_check_interval_seconds
            self.established_total += 1
            released.extend(self.pending_terminations.pop(d, []))
        return released

    # ---- operators ----

    def throttle(self, admit_per_host_second: float | None, launches_per_second: float | None,
                 now: float | None = None) -> None:
        """Set the throttles at `now` (default: the last tick): the launch tokens earned until then
        are earned at the old rate, the new rate counts from then on."""
        at = self.now if now is None else now
        self._refill(at)
        self._tokens_at = max(self._tokens_at, at)
        self.admit_rate = admit_per_host_second
        self.launch_rate = launches_per_second
        self._relax = None

    def relax(self, now: float, over_seconds: float, to_launches_per_second: float) -> None:
        """Raise the launch limit evenly to `to_launches_per_second` over `over_seconds`, then lift it."""
        self._refill(now)
        if self.launch_rate is not None:
            self._relax = (now, now + over_seconds, self.launch_rate, to_launches_per_second)

    def _refill(self, now: float) -> None:
        """Top up the launch tokens for the time since the last call: tokens are only spent by calls, so
        topping up at each call, at its own time, gives the same bucket however often the fleet advances."""
        self._update_ramp(now)
        if self.launch_rate is not None and now > self._tokens_at:
            earned = (now - self._tokens_at) * self.launch_rate
            self.launch_tokens = min(self.launch_tokens + earned, max(LAUNCH_BURST, self.launch_rate * LAUNCH_BURST_SECONDS))
        self._tokens_at = max(self._tokens_at, now)

    def _update_ramp(self, now: float) -> None:
        if self._relax is None:
            return
        start, end, base, top = self._relax
        if now >= end:
            self.launch_rate = None
            self.admit_rate = None
            self._relax = None
        else:
            self.launch_rate = base + (top - base) * (now - start) / (end - start)

    def restart_hosts(self, count: int | None = None, names: Iterable[str] | None = None) -> tuple[list[str], int]:
        """Restart the hosts `names`, or else the `count` most backlogged hosts (all if None): their
        in-flight work is dropped back into their backlogs. Returns (host names, items dropped)."""
        if names is not None:
            hosts = [self._host(n) for n in names]
        else:
            hosts = sorted(self.hosts, key=lambda h: -len(h.in_flight))[: count or len(self.hosts)]
        dropped = 0
        for h in hosts:
            dropped += len(h.in_flight)
            for item in h.in_flight:
                h.backlog.append(item.droplet)
            h.in_flight.clear()
            h.tokens = 0.0
        return [h.name for h in hosts], dropped

    # ---- launches ----

    def run_instances(self, count: int, propagation_room: int | None = None, now: float | None = None,
                      group: str = "") -> list[str]:
        """Launch `count` instances for `group` at `now` (default: the last tick). `propagation_room`: with the
        queue-throttle fix, how many more launches Network Manager's queue admits (None: no limit)."""
        if count <= 0:
            raise ValueError("count must be positive")
        self._refill(self.now if now is None else now)
        if self.queue_throttle and propagation_room is not None and count > propagation_room:
            raise RequestLimitExceeded(f"request limit exceeded: Network Manager's queue admits {propagation_room} "
                                       "more launches")
        if self.launch_rate is not None:
            if self.launch_tokens < count:
                raise RequestLimitExceeded(f"request limit exceeded: throttled to {self.launch_rate:.3g} launches/s")
            self.launch_tokens -= count
        # A launch is DWFM work too, queued on the droplet's host behind any lease work there:
        # only hosts with nothing to re-lease can start one in time.
        opened = [self._open_on(h) for h in self.hosts if not (h.backlog or h.in_flight or h.awaiting_write)]
        candidates = list(chain.from_iterable(ds for ds, _ in opened))
        if sum(room for _, room in opened) < count:
            raise InsufficientCapacity(f"insufficient capacity: {len(candidates)} leased droplets with room")
        launched = []
        start = self.rng.randrange(len(candidates))  # spread launches over the fleet
        for d in candidates[start:] + candidates[:start]:
            while self.slots_free[d] > 0 and len(launched) < count:
                launched.append(self._place(d, group))
            if len(launched) == count:
                break
        return launched

    def terminate(self, instance_ids: Iterable[str]) -> tuple[list[str], list[str]]:
        """Terminate instances. Returns (propagate now, held until their droplet has a lease)."""
        now_, held = [], []
        for iid in instance_ids:
            d = self.instances.pop(iid, None)
            if d is None:
                continue
            members = self._members[self.group_of.pop(iid)]
            at = bisect_left(members, iid)
            if at < len(members) and members[at] == iid:
                del members[at]
            else:  # ids out of order (past 16**8 launches): slower, never wrong
                members.remove(iid)
            self.slots_free[d] += 1
            self._open[d % len(self.hosts)] = None
            if self.needs_lease[d]:
                self.pending_terminations[d].append(iid)
                held.append(iid)
            else:
                now_.append(iid)
        return now_, held

    def pick(self, group: str, count: int, rng: random.Random) -> list[str]:
        """`count` of `group`'s running instances at random (all of them if it has fewer): whom a
        TerminateInstances by count for that group ends. Both drivers ask here, each with its own stream."""
        members = self._members.get(group, [])  # an unknown group has no instances (and gets no entry)
        return [members[j] for j in rng.sample(range(len(members)), min(count, len(members)))]

    def _place(self, d: int, group: str = "") -> str:
        self._seq += 1
        iid = f"i-{self._seq:08x}"
        self.instances[iid] = d
        self.group_of[iid] = group
        self._members[group].append(iid)  # the newest id: the list stays sorted
        self.slots_free[d] -= 1
        self._open[d % len(self.hosts)] = None
        return iid

    def _open_on(self, h: Host) -> tuple[list[int], int]:
        """The host's droplets with a lease and a free slot (in its order), and their free slots."""
        known = self._open[h.index]
        if known is None:
            needs, slots = self.needs_lease, self.slots_free
            droplets = [d for d in h.droplets if slots[d] > 0 and not needs[d]]
            known = self._open[h.index] = (droplets, sum(map(slots.__getitem__, droplets)))
        return known

    def _host(self, name: str) -> Host:
        return self._by_name[name]
