"""`racelab explore`: search seeds for schedules that break the invariants.

Each seed is one schedule of the deterministic world in `sim`: the same core
Planner, Enactors and zones, with timings drawn from the seed. Nothing is
pre-recorded: violations are found by running schedules, and every one is
replayed exactly by its seed.
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Iterator

from services.core.fixes import Fix
from services.core.invariants import Violation
from services.core.plans import LEGACY_ENDPOINT
from services.lab.twin.sim import Entry, ScheduleResult, WorldConfig, run_schedule

CHUNK = 500  # schedules per worker task, at most; the first tasks are smaller so early stops come early
FIRST_CHUNK = 20


@dataclass(frozen=True)
class Verdict:
    """What one schedule showed, small enough to ship between processes."""

    seed: int
    violations: frozenset[Violation]
    empty_seconds: float
    events: int


@dataclass
class Search:
    fixes: frozenset[Fix]
    kinds: list[Violation] = field(default_factory=lambda: list(Violation))  # what the world can show
    schedules: int = 0
    events: int = 0
    seconds: float = 0.0
    counts: dict[Violation, int] = field(default_factory=lambda: {v: 0 for v in Violation})
    first_seed: dict[Violation, int] = field(default_factory=dict)
    first_violation_after: int | None = None  # schedules run when the first violation appeared
    worst: Verdict | None = None

    def add(self, verdict: Verdict) -> None:
        self.schedules += 1
        self.events += verdict.events
        for v in verdict.violations:
            self.counts[v] += 1
            self.first_seed.setdefault(v, verdict.seed)
        if verdict.violations and self.first_violation_after is None:
            self.first_violation_after = self.schedules
        if verdict.violations and (self.worst is None or _severity(verdict) > _severity(self.worst)):
            self.worst = verdict

    @property
    def rate(self) -> float:
        return self.schedules / self.seconds if self.seconds else 0.0


def _severity(v: Verdict) -> tuple[int, int, int]:
    return (len(v.violations), Violation.ENDPOINT_EMPTY in v.violations, -v.seed)


def judge(seed: int, config: WorldConfig, fixes: frozenset[Fix]) -> Verdict:
    r = run_schedule(seed, config, fixes)
    return Verdict(seed, frozenset(r.violations), sum(end - start for _, start, end in r.empty_windows), r.events)


def _judge_chunk(args: tuple[int, int, WorldConfig, frozenset[Fix]]) -> list[Verdict]:
    start, count, config, fixes = args
    return [judge(seed, config, fixes) for seed in range(start, start + count)]


def verdicts(first_seed: int, count: int, config: WorldConfig, fixes: frozenset[Fix],
             workers: int) -> Iterator[Verdict]:
    """Verdicts in seed order. With several workers, a few chunks are in flight at a time,
    so a caller that stops early does not wait for the rest."""
    if workers <= 1 or count <= CHUNK:
        for seed in range(first_seed, first_seed + count):
            yield judge(seed, config, fixes)
        return
    pool = ProcessPoolExecutor(max_workers=workers)
    in_flight: deque[Future[list[Verdict]]] = deque()
    try:
        start, size, end = first_seed, FIRST_CHUNK, first_seed + count
        while start < end:
            n = min(size, end - start)
            in_flight.append(pool.submit(_judge_chunk, (start, n, config, fixes)))
            start, size = start + n, min(CHUNK, size * 2)
            if len(in_flight) > workers:
                yield from in_flight.popleft().result()
        while in_flight:
            yield from in_flight.popleft().result()
    finally:
        for future in in_flight:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def possible(config: WorldConfig) -> list[Violation]:
    """The violations a world can show: emptied-after-repair only where the operators repair."""
    return [v for v in Violation if v is not Violation.EMPTIED_AFTER_REPAIR or config.repair_at is not None]


def search(first_seed: int, count: int, config: WorldConfig, fixes: frozenset[Fix], *,
           until: str = "all", workers: int = 1) -> Search:
    """Run schedules until `until` is met: "first" violation, "all" kinds the world can show
    seen, or "none" (run every one)."""
    found = Search(fixes, kinds=possible(config))
    began = time.perf_counter()
    for verdict in verdicts(first_seed, count, config, fixes, workers):
        found.add(verdict)
        if until == "first" and verdict.violations:
            break
        if until == "all" and len(found.first_seed) == len(found.kinds):
            break
    found.seconds = time.perf_counter() - began
    return found


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


# ---- the readable timeline ----

def focused_timeline(result: ScheduleResult) -> list[Entry]:
    """The story of the worst endpoint: its zone's events and every run, with repetition folded."""
    focus = _focus_zone(result)
    kept = [e for e in result.timeline
            if e.kind in ("plan", "run") or e.zone == focus or (e.kind == "violation" and not focus)]
    return _fold_repeats(_fold_runs(kept))


def _focus_zone(result: ScheduleResult) -> str:
    order = [Violation.ENDPOINT_EMPTY, Violation.ACTIVE_TREE_DELETED, Violation.AUTOMATION_STUCK,
             Violation.GENERATION_WENT_BACK]
    for violation in order:
        endpoints = [f.endpoint for f in result.findings if f.violation is violation]
        if endpoints:
            return LEGACY_ENDPOINT if LEGACY_ENDPOINT in endpoints else endpoints[0]
    return ""


def _fold_runs(entries: list[Entry]) -> list[Entry]:
    """Fold consecutive plan publications, and consecutive back-offs of one actor, into one line."""
    out: list[Entry] = []
    i = 0
    while i < len(entries):
        e = entries[i]
        j = i
        while j + 1 < len(entries) and entries[j + 1].kind == e.kind and entries[j + 1].actor == e.actor \
                and e.kind in ("plan", "lock", "failed"):
            j += 1
        if j > i and e.kind == "plan":
            first, last = e.text.split()[-1], entries[j].text.split()[-1]
            out.append(Entry(e.at, e.actor, e.kind, f"published generations {first} .. {last} "
                                                     f"(until t={entries[j].at:.2f}s)"))
        elif j > i:
            out.append(Entry(e.at, e.actor, e.kind, f"{e.text}  [x{j - i + 1} until t={entries[j].at:.2f}s]",
                             e.zone))
        else:
            out.append(e)
        i = j + 1
    return out


# Times, attempts and fold counts vary between repeats; generations do not.
_VARYING = re.compile(r"\d+\.\d+|attempt \d+|\[x\d+ until[^\]]*\]")


def _fold_repeats(entries: list[Entry], keep: int = 2) -> list[Entry]:
    """Show a line that recurs (numbers aside) `keep` times, then one line saying how often it went on."""
    shape = [(e.actor, _VARYING.sub("#", e.text)) for e in entries]
    total: dict[tuple[str, str], list[float]] = {}
    for key, e in zip(shape, entries):
        total.setdefault(key, []).append(e.at)
    seen: dict[tuple[str, str], int] = {}
    out = []
    for key, e in zip(shape, entries):
        n = seen[key] = seen.get(key, 0) + 1
        if n <= keep:
            out.append(e)
        elif n == keep + 1:
            times = total[key]
            out.append(Entry(e.at, e.actor, e.kind, f"... the same again {len(times) - keep} more times, "
                                                     f"until t={times[-1]:.2f}s", e.zone))
    return out


def format_timeline(result: ScheduleResult, *, full: bool = False) -> str:
    entries = result.timeline if full else focused_timeline(result)
    width = max((len(e.actor) for e in entries), default=8)
    lines = [f"  t={e.at:8.3f}s  {e.actor:<{width}}  {e.text}" for e in entries]
    return "\n".join(lines)


def format_schedule(result: ScheduleResult, *, full: bool = False) -> str:
    fixes = ", ".join(sorted(f.value for f in result.fixes)) or "none (as in October 2025)"
    out = [f"schedule seed={result.seed}   fixes: {fixes}",
           "conditions: " + "; ".join(f"{k} {v}" for k, v in result.conditions.items()),
           f"batches: {result.batches_committed} committed, {result.batches_failed} rejected; "
           f"newest plan {result.latest_generation}",
           "", "timeline" + (" (all events)" if full else " (the affected endpoint; --full for everything)") + ":",
           format_timeline(result, full=full), ""]
    if result.findings:
        out.append("violations:")
        seen = set()
        for f in result.findings:
            if (f.violation, f.endpoint) in seen:
                continue
            seen.add((f.violation, f.endpoint))
            out.append(f"  {f.violation.value:<22} t={f.at:8.3f}s  {f.endpoint}: {f.detail}")
        for endpoint, start, end in result.empty_windows:
            still = " - still empty when the schedule ended" if end >= result.ended_at else ""
            out.append(f"  empty window: {endpoint} answered NODATA from t={start:.3f}s to t={end:.3f}s "
                       f"({end - start:.3f}s{still})")
    else:
        out.append("no violation")
    return "\n".join(out)
