"""Span times as people read them: simulated PDT when the run's clock is known, else UTC wall time.

Spans carry wall-clock times. A run directory holds what maps them to the
scenario's simulated time: scenario.yaml (schedule and epoch) and the wall-clock
start (summary.json).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from services.runtime.clock import ScheduleError, SimClock, parse_pdt
from services.runtime.scenario import ScenarioError, parse_scenario


class TimeError(ValueError):
    pass


@dataclass(frozen=True)
class RunClock:
    clock: SimClock

    def sim(self, ns: int) -> float:
        return self.clock.schedule.sim_at(ns / 1e9 - self.clock.wall_start)

    def pdt(self, ns: int) -> str:
        return self.clock.pdt(self.sim(ns))

    def wall_ns(self, pdt_text: str) -> int:
        sim = parse_pdt(pdt_text, self.clock.epoch)
        return int((self.clock.wall_start + self.clock.schedule.wall_at(sim)) * 1e9)

    @classmethod
    def for_run(cls, run_dir: Path) -> "RunClock | None":
        """The clock of a run directory, or None if it lacks scenario.yaml or summary.json (still running)."""
        scenario_file = run_dir / "scenario.yaml"
        try:
            wall_start = float(json.loads((run_dir / "summary.json").read_text())["wall_start"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        try:
            scenario = parse_scenario(scenario_file.read_text(), str(scenario_file))
        except (OSError, ScenarioError):
            return None
        return cls(SimClock(scenario.schedule, scenario.epoch, wall_start))


def format_time(ns: int, clock: RunClock | None) -> str:
    if clock is not None:
        return clock.pdt(ns)
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).strftime("%H:%M:%S.%f")[:-3] + " UTC"


_PDT = re.compile(r"^\s*(\d{1,2}:\d{2}(?::\d{2})?)\s*PDT\s*$", re.IGNORECASE)


def is_pdt(text: str) -> bool:
    return _PDT.match(text) is not None


def parse_time(text: str, clock: RunClock | None) -> int:
    """'02:25 PDT' (simulated, needs the run's clock) or an ISO 8601 wall time with a zone -> Unix ns."""
    m = _PDT.match(text)
    if m:
        if clock is None:
            raise TimeError(f"{text!r} is simulated PDT time: it needs the run's clock (a run directory with "
                            "scenario.yaml and summary.json)")
        try:
            return clock.wall_ns(m.group(1))
        except ScheduleError as exc:
            raise TimeError(str(exc)) from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise TimeError(f"not a time: {text!r} (expected 'HH:MM[:SS] PDT' or ISO 8601 with a zone)") from None
    if moment.tzinfo is None:
        raise TimeError(f"{text!r} has no time zone")
    return int(moment.timestamp() * 1e9)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_UNIT = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float:
    """Seconds from a number (seconds) or '250ms', '2s', '1.5m', '1h'."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise TimeError(f"not a duration: {value!r} (a number of seconds, or like 250ms, 2s, 5m, 1h)")
    return float(m.group(1)) * _UNIT[m.group(2)]
