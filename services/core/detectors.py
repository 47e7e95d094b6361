"""The cascade's named states, judged from the core objects (as core/invariants.py judges the race's).

Each watcher turns what a step of the fleet or the health checker did into the moments an operator
would name: droplet leases expiring, DWFM's congestive collapse, an NLB's targets flapping. The live
dwfm and nlb services publish them as events; the cascade's twin records the same events from the
same watchers. They are plain data, so a service's snapshot saves them as they are.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

FLAP_WINDOW_SECONDS = 600.0  # simulated: flips counted over this long
FLAP_THRESHOLD = 10  # flips in the window that make an NLB "flapping"


@dataclass(frozen=True)
class Change:
    """A watcher's state changed: the event kind, its message and its attributes."""

    kind: str
    message: str
    attrs: dict[str, object]


@dataclass
class LeaseWatch:
    """Droplet leases: every droplet leased ("all"), some expiring, or none left ("none")."""

    state: str = "all"

    def observe(self, leased: int, droplets: int) -> Change | None:
        state = "all" if leased == droplets else "none" if leased == 0 else "expiring"
        if state == self.state:
            return None
        before, self.state = self.state, state
        if state == "expiring" and before == "all":
            message = (f"droplet leases are expiring: {droplets - leased} of {droplets} droplets without a lease "
                       f"(state checks cannot reach DynamoDB)")
        elif state == "expiring":
            message = f"leases coming back: {leased} of {droplets} droplets leased"
        elif state == "none":
            message = f"every droplet lease has expired: all {droplets} droplets refuse launches (insufficient capacity)"
        else:
            message = f"every droplet has a lease again ({droplets})"
        return Change("dwfm.leases", message, {"leased": leased, "droplets": droplets, "state": state})


@dataclass
class CollapseWatch:
    """DWFM's congestive collapse: over the last `window` simulated seconds lease work timed out and
    none was established; it ends when a lease is established again."""

    window: float
    collapsed: bool = False
    recent: deque = field(default_factory=deque)  # (sim, timeouts, established) per step
    totals: tuple[int, int] = (0, 0)  # the fleet's timeouts and leases established, as last seen

    def observe(self, now: float, timeouts_total: int, established_total: int, depth: int) -> Change | None:
        """The fleet's running totals now; the watch takes what changed since its last look."""
        timeouts, established = timeouts_total - self.totals[0], established_total - self.totals[1]
        self.totals = (timeouts_total, established_total)
        self.recent.append((now, timeouts, established))
        while self.recent and self.recent[0][0] < now - self.window:
            self.recent.popleft()
        t = sum(x[1] for x in self.recent)
        e = sum(x[2] for x in self.recent)
        if not self.collapsed and t > 0 and e == 0:
            self.collapsed = True
            return Change("dwfm.collapse", f"DWFM congestive collapse: {t} lease work items timed out and none "
                          f"finished in the last {self.window / 60:.0f} min; {depth} waiting or in flight",
                          {"state": "collapsed", "timeouts": t, "queue_depth": depth})
        if self.collapsed and e > 0:
            self.collapsed = False
            return Change("dwfm.collapse", f"DWFM lease work is progressing again: {e} leases established in the "
                          f"last {self.window / 60:.0f} min; {depth} waiting or in flight",
                          {"state": "progressing", "established": e, "queue_depth": depth})
        return None


@dataclass
class FlapWatch:
    """An NLB whose targets flip healthy <-> unhealthy at least `threshold` times in `window`."""

    names: tuple[str, ...]
    window: float = FLAP_WINDOW_SECONDS
    threshold: int = FLAP_THRESHOLD
    flips: dict[str, deque] = field(default_factory=dict)
    flapping: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for name in self.names:
            self.flips.setdefault(name, deque())

    def flipped(self, nlb: str, now: float) -> None:
        self.flips.setdefault(nlb, deque()).append(now)

    def observe(self, now: float) -> list[Change]:
        changes = []
        for name, flips in self.flips.items():
            while flips and flips[0] < now - self.window:
                flips.popleft()
            if name not in self.flapping and len(flips) >= self.threshold:
                self.flapping.add(name)
                changes.append(Change("nlb.flapping", f"{name} targets are flapping: {len(flips)} healthy<->unhealthy "
                                      f"flips in the last {self.window / 60:.0f} min (targets without network pass "
                                      f"some checks)", {"nlb": name, "state": "flapping", "flips": len(flips)}))
            elif name in self.flapping and not flips:
                self.flapping.discard(name)
                changes.append(Change("nlb.flapping", f"{name} targets stopped flapping",
                                      {"nlb": name, "state": "steady"}))
        return changes
