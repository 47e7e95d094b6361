"""Explorer benchmark: schedules per second, and how soon the race is found.

Reported beside the public Spin/Promela model of the race (INCIDENT.md §5),
which finds `never_delete_active` violated after 23,201 states. A schedule here
is a whole timed run of 1 planner, 3 enactors and 2 zones; its "events" are the
discrete steps the scheduler executed (the nearest thing to Spin's states).

    python bench/bench_explore.py [--fixed-schedules 100000] [--starts 20] [--json]

Time to find is measured twice from each fresh starting seed: in one process, schedule by
schedule (schedules, events and seconds to each violation kind), and as `racelab explore` finds the
race - the worker pool started from nothing, wall seconds until the first schedule in which the
active tree was deleted.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

from services.core.fixes import RACE_FIXES
from services.core.invariants import Violation
from services.lab.twin import explore
from services.lab.twin.sim import WorldConfig

SPIN_STATES_TO_VIOLATION = 23_201


def time_to_each_violation(start: int, config: WorldConfig, limit: int) -> dict[str, object]:
    """From one starting seed, run schedules (one process) until every violation kind is seen."""
    found = explore.Search(frozenset())
    kinds = explore.possible(config)  # emptied-after-repair needs the operators, which this world has not
    seen_at: dict[Violation, tuple[int, int, float]] = {}
    began = time.perf_counter()
    for seed in range(start, start + limit):
        verdict = explore.judge(seed, config, frozenset())
        found.add(verdict)
        for v in verdict.violations:
            seen_at.setdefault(v, (found.schedules, found.events, time.perf_counter() - began))
        if len(seen_at) == len(kinds):
            break
    return {v.value: seen_at.get(v) for v in kinds}


def wall_to_race(start: int, config: WorldConfig, workers: int, limit: int = 20_000) -> tuple[float, int]:
    """Wall seconds (pool start-up included) and schedules until a search from `start` sees the
    active tree deleted, as `racelab explore` would find it."""
    began = time.perf_counter()
    stream = explore.verdicts(start, limit, config, frozenset(), workers)
    try:
        for n, verdict in enumerate(stream, 1):
            if Violation.ACTIVE_TREE_DELETED in verdict.violations:
                return time.perf_counter() - began, n
    finally:
        stream.close()
    return float("nan"), limit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixed-schedules", type=int, default=100_000)
    parser.add_argument("--starts", type=int, default=20, help="independent starting seeds for time-to-find")
    parser.add_argument("--workers", type=int, default=explore.default_workers())
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    config = WorldConfig()

    runs = [time_to_each_violation(start * 1_000_000, config, 5000) for start in range(args.starts)]
    finds: dict[str, dict[str, float]] = {}
    for v in explore.possible(config):
        hits = [r[v.value] for r in runs if r[v.value] is not None]
        if hits:
            finds[v.value] = {
                "found_in_runs": len(hits),
                "median_schedules": statistics.median(h[0] for h in hits),
                "median_events": statistics.median(h[1] for h in hits),
                "median_seconds": round(statistics.median(h[2] for h in hits), 3),
                "max_seconds": round(max(h[2] for h in hits), 3),
            }
    races = [wall_to_race(start * 1_000_000 + 500_000, config, args.workers) for start in range(args.starts)]
    race_seconds = [r[0] for r in races]
    as_2025 = explore.search(0, 5000, config, frozenset(), until="none", workers=args.workers)
    fixed = explore.search(0, args.fixed_schedules, config, RACE_FIXES, until="none", workers=args.workers)
    report = {
        "machine": {"python": platform.python_version(), "cores_used": args.workers},
        "time_to_find_one_process": finds,
        "spin_states_to_never_delete_active": SPIN_STATES_TO_VIOLATION,
        "race_found_with_pool": {"starts": args.starts, "workers": args.workers,
                                 "median_seconds": round(statistics.median(race_seconds), 3),
                                 "max_seconds": round(max(race_seconds), 3),
                                 "median_schedules": statistics.median(r[1] for r in races),
                                 "seconds": [round(x, 3) for x in race_seconds]},
        "as_2025": {"schedules": as_2025.schedules, "seconds": round(as_2025.seconds, 2),
                    "schedules_per_second": round(as_2025.rate, 1),
                    "violations": {v.value: as_2025.counts[v] for v in Violation}},
        "all_fixes": {"schedules": fixed.schedules, "seconds": round(fixed.seconds, 2),
                      "schedules_per_second": round(fixed.rate, 1),
                      "violations": {v.value: fixed.counts[v] for v in Violation}},
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"time to find, {args.starts} independent seed ranges, one process (Spin: "
          f"{SPIN_STATES_TO_VIOLATION:,} states to never_delete_active):")
    for name, f in finds.items():
        print(f"  {name:<22} found in {f['found_in_runs']}/{args.starts}: median {f['median_schedules']:.0f} "
              f"schedules = {f['median_events']:,.0f} events, {f['median_seconds']:.2f}s (max {f['max_seconds']:.2f}s)")
    r = report["race_found_with_pool"]
    print(f"race (active tree deleted) found from {args.starts} fresh seeds with {args.workers} processes, pool "
          f"start-up included: median {r['median_seconds']:.2f}s ({r['median_schedules']:.0f} schedules), "
          f"max {r['max_seconds']:.2f}s")
    for label, key in (("as in 2025", "as_2025"), ("all fixes", "all_fixes")):
        r = report[key]
        print(f"{label:<11} {r['schedules']:>7,} schedules in {r['seconds']:>7.2f}s = {r['schedules_per_second']:>6.0f}/s "
              f"on {args.workers} processes; violations: {r['violations']}")


if __name__ == "__main__":
    main()
