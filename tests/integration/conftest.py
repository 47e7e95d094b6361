"""Live runs shared by the integration tests.

`racelab run` is started at most once per (seed, fixes, end) in a session and read back from
the files it writes - the spans the processes exported (traces.jsonl) and the metrics scraped
during the run (metrics.jsonl) - never from a process's own verdict.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import pytest
from procs import event_time

from services.core.plans import LEGACY_ENDPOINT
from services.lab.live.otlpsink import read_spans
from services.lab.live.scrape import Series, load_series
from services.runtime.scenario import Scenario, parse_scenario

BASE_PORT = 24000  # the shared runs' ports (test_live_race.py runs its own on 21000)
RUN_TIMEOUT = 420  # wall seconds; the whole oct-2025 event takes about 3 minutes


@dataclass
class LiveRun:
    run_dir: Path
    summary: dict
    scenario: Scenario

    @cached_property
    def spans(self) -> list[dict]:
        spans = read_spans(self.run_dir / "traces.jsonl")
        return sorted(spans, key=lambda s: int(s["startTimeUnixNano"]))

    @cached_property
    def series(self) -> Series:
        return load_series(self.run_dir / "metrics.jsonl")

    def sim(self, span: dict) -> float:
        """Simulated seconds since the scenario's epoch at which the span started."""
        return self.sim_of_wall_ns(int(span["startTimeUnixNano"]))

    def sim_end(self, span: dict) -> float:
        """Simulated seconds since the scenario's epoch at which the span ended."""
        return self.sim_of_wall_ns(int(span["endTimeUnixNano"]))

    def sim_of_wall_ns(self, wall_ns: int) -> float:
        return self.scenario.schedule.sim_at(wall_ns / 1e9 - self.summary["wall_start"])

    def pdt(self, sim: float) -> str:
        total = int(self.scenario.epoch.hour * 3600 + self.scenario.epoch.minute * 60 + sim)
        return f"{total // 3600 % 24:02d}:{total % 3600 // 60:02d}"

    def named(self, name: str, **attrs: object) -> list[dict]:
        return [s for s in self.spans if s["name"] == name and all(s["attrs"].get(k) == v for k, v in attrs.items())]

    def operator_time(self, action: str, done: bool = False) -> float:
        """When the operators' `action` started (or, `done`, had taken effect: its call returned),
        from the director's operator.action span."""
        spans = [s for s in self.named("operator.action", **{"racelab.operator.action": action})
                 if s.get("status", {}).get("code") != 2]  # 2: ERROR; a failed attempt changed nothing
        assert len(spans) == 1, f"expected one operator.action span for {action} that did not fail, found {len(spans)}"
        return self.sim_end(spans[0]) if done else self.sim(spans[0])

    def history(self, name: str, **labels: str) -> list[tuple[float, float]]:
        """The one scraped series `name{labels}` as (simulated seconds, value)."""
        found = self.series.history(name, **labels)
        assert len(found) == 1, f"expected one series {name}{labels}, found {len(found)}"
        return next(iter(found.values()))

    def regional_name_emptied_after(self, sim: float) -> list[float]:
        """When the authority saw the regional name answer NODATA again, after `sim`."""
        return [self.sim_of_wall_ns(t) for s in self.named("authority.apply_batch", **{"racelab.zone": LEGACY_ENDPOINT})
                if (t := event_time(s, "invariant.violated", **{"racelab.violation": "endpoint-empty"}))
                and self.sim_of_wall_ns(t) > sim]

    def emptied_endpoints(self) -> dict[str, float]:
        """Each endpoint the authority saw answer NODATA, with when it first did (simulated s)."""
        first: dict[str, float] = {}
        for s in self.named("authority.apply_batch"):
            t = event_time(s, "invariant.violated", **{"racelab.violation": "endpoint-empty"})
            if t:
                first.setdefault(s["attrs"].get("racelab.zone", "?"), self.sim_of_wall_ns(t))
        return first

    def end(self) -> float:
        """The last scrape's simulated time."""
        return max(points[-1][0] for points in self.series.points.values() if points)

    def require_regional_name_held(self, until: float) -> float:
        """The cascade after 02:25 needs DynamoDB reachable again: fail clearly if the race emptied
        the regional name a second time between the operators' restore and `until`, which would end
        this run's replay of the incident. Returns the restore's time."""
        restore = self.operator_time("restore-dns")
        again = [t for t in self.regional_name_emptied_after(restore) if t <= until]
        assert not again, (
            f"the regional name emptied AGAIN at {self.pdt(again[0])} PDT, after the operators' restore at "
            f"{self.pdt(restore)} (the enactors raced again): from then on DWFM cannot reach DynamoDB, so what "
            f"this test checks up to {self.pdt(until)} did not happen as in the incident ({self.run_dir})")
        return restore


def run_racelab(out: Path, seed: int, fixes: tuple[str, ...] = (), until: str | None = None,
                scenario: str = "oct-2025") -> LiveRun:
    cmd = [sys.executable, "-m", "services.lab.cli", "run", "--no-tty", "--no-what-if", "--scenario", scenario,
           "--seed", str(seed), "--out", str(out), "--base-port", str(BASE_PORT)]
    cmd += [f"--fix={f}" for f in fixes] + ([f"--until={until}"] if until else [])
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed_process"] is None, f"{summary['failed_process']} died during the run ({out})"
    return LiveRun(out, summary, parse_scenario((out / "scenario.yaml").read_text()))


@pytest.fixture(scope="session")
def live_run(tmp_path_factory) -> Callable[..., LiveRun]:
    """`live_run(seed, fixes=(), until=None)`: a finished run of oct-2025, started once per session."""
    runs: dict[tuple, LiveRun] = {}

    def get(seed: int, fixes: tuple[str, ...] = (), until: str | None = None) -> LiveRun:
        key = (seed, tuple(sorted(fixes)), until)
        if key not in runs:
            name = f"seed{seed}" + "".join(f"-{f}" for f in key[1]) + (f"-until{until.replace(':', '')}" if until else "")
            runs[key] = run_racelab(tmp_path_factory.mktemp(name) / "run", seed, key[1], until)
        return runs[key]
    return get
