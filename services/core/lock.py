"""The enactor lock: one TXT record per hosted zone, "<holder> <expiry epoch seconds> <serial>".

There is no lock service. Every batch starts with DELETE of the exact lock
record the writer read and CREATE of a fresh one, so a batch built from a
stale read fails as a whole: the lock doubles as a compare-and-swap on the
zone. The serial counts the lock's writes, so no two are alike: without it a
holder renewing its lock within the same second wrote the value it replaced,
and a writer who had read the zone before that renewal still matched it (the
explorer found such a write with every fix on: seed 17989). What the lock does
not do is say anything about how fresh the writer's plan is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from .records import Change, RecordSet, RRType, create, delete
from .zone import ZoneSnapshot

LOCK_LABEL = "_lock"


def lock_name(zone: str) -> str:
    return f"{LOCK_LABEL}.{zone}"


@dataclass(frozen=True, slots=True)
class Lock:
    holder: str
    expires_at: int  # epoch seconds (simulated)
    serial: int = 0  # the lock's writes so far (0: a value written without one)

    @classmethod
    def parse(cls, rs: RecordSet) -> "Lock | None":
        """None for a value that is not "<holder> <expiry> [<serial>]" (treated as expired)."""
        return _parse_lock(rs.values[0]) if rs.values else None

    def blocks(self, who: str, now: float) -> bool:
        return self.holder != who and self.expires_at > now


@lru_cache(maxsize=1 << 12)
def _parse_lock(value: str) -> Lock | None:
    parts = value.split()
    if len(parts) not in (2, 3) or not all(p.isascii() and p.isdigit() for p in parts[1:]):
        return None
    return Lock(parts[0], int(parts[1]), int(parts[2]) if len(parts) == 3 else 0)


def read_lock(snap: ZoneSnapshot) -> tuple[RecordSet | None, Lock | None]:
    rs = snap.get(lock_name(snap.origin), RRType.TXT)
    return rs, (Lock.parse(rs) if rs is not None else None)


LOCK_VALUES = 2  # what lock_changes adds to a batch's values: the lock it replaces and the new one


def lock_changes(zone: str, seen: RecordSet | None, holder: str, now: float,
                 lease_seconds: float) -> list[Change]:
    """DELETE exactly what was read, CREATE the renewed lock (its serial one more): the head of every batch."""
    before = Lock.parse(seen) if seen is not None else None
    serial = (before.serial if before is not None else 0) + 1
    renewed = RecordSet(lock_name(zone), RRType.TXT, 0,
                        (f"{holder} {math.ceil(now + lease_seconds)} {serial}",))
    head = [delete(seen)] if seen is not None else []
    return head + [create(renewed)]
