"""Simulated time: one piecewise-linear map from wall time to simulated time.

Every process of a run loads the same schedule and the same wall-clock start,
so they agree on "now" without talking to each other. The race can crawl while
the long recovery flies by. All durations in config are simulated seconds.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence

PDT = timezone(timedelta(hours=-7), "PDT")


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True)
class Schedule:
    """Breakpoints (wall seconds since start, simulated seconds since the epoch); linear between them.

    Before the first point and after the last, time runs at the rate of the
    nearest segment. Both coordinates must strictly increase.
    """

    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if len(self.points) < 2:
            raise ScheduleError("a schedule needs at least two points")
        for (w0, s0), (w1, s1) in zip(self.points, self.points[1:]):
            if not (w1 > w0 and s1 > s0):
                raise ScheduleError(f"schedule must move forward: ({w0}, {s0}) then ({w1}, {s1})")
        # Each axis once: the twins ask for the rate at every call they simulate.
        object.__setattr__(self, "_axes", (tuple(p[0] for p in self.points), tuple(p[1] for p in self.points)))

    @classmethod
    def realtime(cls, rate: float = 1.0) -> "Schedule":
        return cls(((0.0, 0.0), (1.0, rate)))

    def sim_at(self, wall: float) -> float:
        return _interpolate(self.points, self._axes[0], wall, 0, 1)

    def wall_at(self, sim: float) -> float:
        return _interpolate(self.points, self._axes[1], sim, 1, 0)

    def rate_at(self, wall: float) -> float:
        """Simulated seconds per wall second at this moment."""
        i = min(max(bisect.bisect_right(self._axes[0], wall) - 1, 0), len(self.points) - 2)
        (w0, s0), (w1, s1) = self.points[i], self.points[i + 1]
        return (s1 - s0) / (w1 - w0)

    @property
    def wall_length(self) -> float:
        return self.points[-1][0]


def _interpolate(points: Sequence[tuple[float, float]], xs: Sequence[float], x: float, src: int, dst: int) -> float:
    i = min(max(bisect.bisect_right(xs, x) - 1, 0), len(points) - 2)
    a, b = points[i], points[i + 1]
    return a[dst] + (x - a[src]) * (b[dst] - a[dst]) / (b[src] - a[src])


class SimClock:
    """Simulated seconds since the scenario epoch, derived from the wall clock."""

    def __init__(self, schedule: Schedule, epoch: datetime, wall_start: float,
                 wall: Callable[[], float] = time.time):
        if epoch.tzinfo is None:
            raise ScheduleError("the scenario epoch needs a time zone")
        self.schedule = schedule
        self.epoch = epoch
        self.wall_start = wall_start
        self._wall = wall

    def now(self) -> float:
        """Simulated seconds since the epoch; the epoch itself until the run's wall-clock start. Processes
        started ahead of the clock (pods given a lead to come up, a local run's few seconds) wait at
        23:30 instead of living through a prelude at the first segment's pace: 100 s ahead is an hour
        of simulated time, in which pods once ran the whole race before 23:30."""
        return max(0.0, self.schedule.sim_at(self._wall() - self.wall_start))

    def unix(self, sim: float | None = None) -> float:
        """Simulated time as Unix epoch seconds (what the lock's expiry is written in)."""
        return self.epoch.timestamp() + (self.now() if sim is None else sim)

    def datetime(self, sim: float | None = None) -> datetime:
        return (self.epoch + timedelta(seconds=self.now() if sim is None else sim)).astimezone(PDT)

    def pdt(self, sim: float | None = None) -> str:
        return self.datetime(sim).strftime("%H:%M:%S PDT")

    def wall_until(self, sim: float) -> float:
        """Wall seconds from now until simulated time `sim` (0 if it has passed)."""
        return max(0.0, self.schedule.wall_at(sim) - (self._wall() - self.wall_start))

    async def sleep(self, sim_seconds: float) -> None:
        await self.sleep_until(self.now() + sim_seconds)

    async def sleep_until(self, sim: float) -> None:
        # Re-check after waking: the rate may change inside the interval.
        while (wait := self.wall_until(sim)) > 0:
            await asyncio.sleep(min(wait, 0.5))


def parse_pdt(text: str, epoch: datetime) -> float:
    """'02:25' or '02:25:30' (PDT, the first such moment at or after the epoch) -> simulated seconds."""
    parts = text.strip().split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise ScheduleError(f"not a PDT time of day (HH:MM[:SS]): {text!r}")
    h, m, s = (int(p) for p in parts + ["0"] * (3 - len(parts)))
    if h > 23 or m > 59 or s > 59:
        raise ScheduleError(f"not a time of day: {text!r}")
    local = epoch.astimezone(PDT)
    moment = local.replace(hour=h, minute=m, second=s, microsecond=0)
    if moment < local:
        moment += timedelta(days=1)
    return (moment - local).total_seconds()
