"""What the core's DNS machines (the enactor, the operators' repair) ask their drivers to do, and
the answers they get back. The machines never do I/O: a driver - the live gRPC service, the
director, the explorer's simulated world - performs each effect and hands back its result."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Union

from .records import Change


class Step(enum.Enum):
    INSTALL = "install"
    FLIP = "flip"
    CLEANUP = "cleanup"
    RESTORE = "restore"  # the operators' one batch: lock, tree if missing, alias and rollback to it


class SleepReason(enum.Enum):
    """Why a machine waits; a back-off is contention or failure, the rest is idle polling."""

    NO_NEWER_PLAN = "no newer plan"
    RUN_COMPLETE = "run complete"
    LOCK_BUSY = "lock held"
    LOCK_LOST = "lost the lock"
    ZONE_CHANGING = "zone changed under every read"
    BATCH_FAILED = "batch failed"

    @property
    def backoff(self) -> bool:
        return self in (SleepReason.LOCK_BUSY, SleepReason.LOCK_LOST, SleepReason.ZONE_CHANGING,
                        SleepReason.BATCH_FAILED)


@dataclass(frozen=True, slots=True)
class FetchLatestPlan:
    """Result: the newest Plan, None if there is none (or DNS automation is off), or Unavailable."""


@dataclass(frozen=True, slots=True)
class ReadZone:
    """Result: a ZoneSnapshot read through the control API, ZoneChanging, or Unavailable."""
    zone: str


@dataclass(frozen=True, slots=True)
class SubmitBatch:
    """Result: Accepted, the zone's BatchRejected, or Unavailable."""
    zone: str
    changes: tuple[Change, ...]
    step: Step
    generation: int
    endpoint: str


@dataclass(frozen=True, slots=True)
class Sleep:
    """Result: None, once the simulated time has passed."""
    seconds: float
    reason: SleepReason
    detail: str = ""  # e.g. who holds the lock


Effect = Union[FetchLatestPlan, ReadZone, SubmitBatch, Sleep]


@dataclass(frozen=True, slots=True)
class Accepted:
    """The control API accepted the batch; the zone is now at `zone_version`."""
    zone_version: int


@dataclass(frozen=True, slots=True)
class Unavailable:
    """The driver could not reach the plan store or the control API."""
    message: str


@dataclass(frozen=True, slots=True)
class ZoneChanging(Unavailable):
    """A zone read page by page kept changing under the read (batches landed between pages every
    time): contention, like a lost lock, not an outage. To a machine that does not tell them apart,
    the zone is unavailable."""
