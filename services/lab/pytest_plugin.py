"""pytest plugin: the spans of a run for a test, and `assert_traces(spec)`.

Registered through the `pytest11` entry point, so installing racelab is enough:

    def test_no_stale_apply(assert_traces):            # spans of --racelab-traces PATH
        assert_traces("incident")                      # a pack, a YAML file, YAML text, or a dict

    def test_my_run(racelab_run, assert_traces):       # or run the replica from the test
        run = racelab_run(seed=1, fixes=["all"], base_port=24000)
        assert_traces({"checks": [...]}, run.spans, run.clock)

Fixtures: `racelab_spans` and `racelab_clock` (the run given by --racelab-traces or RACELAB_TRACES; tests that
use them skip when none is given), `racelab_run` (a factory that runs `racelab run` and loads its spans;
`until="02:45"` ends it at that PDT time),
`assert_traces` (raises AssertionError with the full report when a check fails; returns the Report).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest

from services.lab import assertions
from services.lab.assertions import Report, RunClock, SpanSet


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--racelab-traces", metavar="PATH", default=os.environ.get("RACELAB_TRACES"),
                     help="a run directory or OTLP/JSON traces file for the racelab_spans fixture "
                     "(default: $RACELAB_TRACES)")


def _traces_path(config: pytest.Config) -> Path | None:
    value = config.getoption("--racelab-traces")
    if not value:
        return None
    path = Path(value)
    return path / "traces.jsonl" if path.is_dir() else path


@pytest.fixture(scope="session")
def racelab_spans(pytestconfig: pytest.Config) -> SpanSet:
    path = _traces_path(pytestconfig)
    if path is None:
        pytest.skip("no run to check: pass --racelab-traces PATH (a run directory or traces file)")
    try:
        return assertions.read_traces(path)
    except assertions.TraceError as exc:
        raise pytest.UsageError(f"--racelab-traces: {exc}") from None


@pytest.fixture(scope="session")
def racelab_clock(pytestconfig: pytest.Config) -> RunClock | None:
    path = _traces_path(pytestconfig)
    return RunClock.for_run(path.parent) if path is not None else None


@dataclass
class RacelabRun:
    run_dir: Path
    summary: dict
    spans: SpanSet
    clock: RunClock | None


@pytest.fixture
def racelab_run(tmp_path: Path) -> Callable[..., RacelabRun]:
    """Run the live replica (`racelab run`, about 80 s) and hand back its spans."""

    def run(*, seed: int | None = None, fixes: Iterable[str] = (), scenario: str = "oct-2025",
            until: str | None = None, base_port: int = 17000, env: dict[str, str] | None = None,
            timeout: float = 400) -> RacelabRun:
        out = tmp_path / f"run-{scenario}-{seed}-{'-'.join(fixes) or 'nofix'}"
        cmd = [sys.executable, "-m", "services.lab.cli", "run", "--no-tty", "--scenario", scenario,
               "--out", str(out), "--base-port", str(base_port), *(f"--fix={f}" for f in fixes)]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        if until is not None:
            cmd += ["--until", until]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
        if done.returncode != 0:
            raise AssertionError(f"racelab run failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return RacelabRun(out, json.loads((out / "summary.json").read_text()),
                          assertions.read_traces(out / "traces.jsonl"), RunClock.for_run(out))
    return run


@pytest.fixture
def assert_traces(request: pytest.FixtureRequest) -> Callable[..., Report]:
    def check(spec: Any, spans: SpanSet | None = None, clock: RunClock | None = None) -> Report:
        if spans is None:
            spans = request.getfixturevalue("racelab_spans")
            clock = clock or request.getfixturevalue("racelab_clock")
        __tracebackhide__ = True
        return assertions.assert_traces(spec, spans, clock)
    return check
