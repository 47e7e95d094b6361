"""Remediations as named switches. All off reproduces October 2025 (DESIGN.md principle 3)."""

from __future__ import annotations

import enum
from typing import Iterable


class Fix(enum.Enum):
    # The race (INCIDENT.md §4)
    FENCING = "fencing"  # re-check the endpoint's generation inside the committing batch
    PROTECT_ACTIVE = "protect-active"  # clean-up never deletes the active or rollback tree
    HEAL_ROLLBACK = "heal-rollback"  # a rollback record pointing at nothing is repaired, not fatal
    # The cascade (INCIDENT.md §4)
    NLB_VELOCITY = "nlb-velocity-control"  # cap the capacity one NLB may remove by AZ failover
    QUEUE_THROTTLE = "queue-throttle"  # DWFM and propagation admit work by the size of the waiting queue
    VALIDATING_FALLBACK = "validating-fallback"  # a fallback that tests correctness, not only failure

    @property
    def summary(self) -> str:
        return _SUMMARIES[self]


_SUMMARIES = {
    Fix.FENCING: "re-check freshness right before each write (a fencing token on the plan generation)",
    Fix.PROTECT_ACTIVE: "clean-up never deletes the active or rollback tree",
    Fix.HEAL_ROLLBACK: "a missing rollback target is healed instead of failing every batch",
    Fix.NLB_VELOCITY: "velocity control: one NLB may take at most one zone out of DNS by failover",
    Fix.QUEUE_THROTTLE: "DWFM admits lease work, and EC2 admits launches, by the size of the waiting queue",
    Fix.VALIDATING_FALLBACK: "Support Center falls back on invalid responses too, not only on failed ones",
}

RACE_FIXES = frozenset({Fix.FENCING, Fix.PROTECT_ACTIVE, Fix.HEAL_ROLLBACK})
CASCADE_FIXES = frozenset({Fix.NLB_VELOCITY, Fix.QUEUE_THROTTLE, Fix.VALIDATING_FALLBACK})


class UnknownFix(ValueError):
    pass


def parse_fixes(names: Iterable[str]) -> frozenset[Fix]:
    """`["fencing", "protect-active"]`, `["all"]` or `[]` -> a set of fixes; clear error otherwise.

    "all" is every fix of the race; the cascade's fixes are named one by one."""
    chosen: set[Fix] = set()
    for name in names:
        for part in filter(None, (p.strip() for p in name.split(","))):
            if part == "all":
                chosen |= RACE_FIXES
                continue
            try:
                chosen.add(Fix(part))
            except ValueError:
                known = ", ".join(f.value for f in Fix)
                raise UnknownFix(f"unknown fix {part!r}; known: {known}, all") from None
    return frozenset(chosen)
