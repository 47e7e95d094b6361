"""How often does a scenario's race phase empty the regional endpoint? Ask the simulator.

Builds the deterministic world from the scenario's own settings (endpoints,
fleet, enactor settings, plan churn, Route 53 cost per change, conditions) and
runs it over many seeds - minutes of CPU instead of hours of live runs. This is
how the oct-2025 conditions were chosen; it never tells the live run what to do.

    python bench/calibrate_race.py [--scenario oct-2025] [--seeds 20] [--fix NAME]
"""

from __future__ import annotations

import argparse
import statistics
import time

from services.core.fixes import parse_fixes
from services.core.invariants import Violation
from services.core.plans import LEGACY_ENDPOINT
from services.lab.twin.sim import run_schedule, world_from_scenario
from services.runtime.clock import SimClock
from services.runtime.scenario import load_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="oct-2025")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--fix", action="append", default=[])
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    config = world_from_scenario(scenario)
    fixes = parse_fixes(args.fix)
    clock = SimClock(scenario.schedule, scenario.epoch, 0.0)
    began = time.perf_counter()
    legacy_times, other = [], 0
    for seed in range(args.seeds):
        result = run_schedule(seed, config, fixes)
        empties = {f.endpoint: f.at for f in result.findings if f.violation is Violation.ENDPOINT_EMPTY}
        if LEGACY_ENDPOINT in empties:
            legacy_times.append(empties[LEGACY_ENDPOINT])
        elif empties:
            other += 1
        where = (f"regional name empty at {clock.pdt(empties[LEGACY_ENDPOINT])}" if LEGACY_ENDPOINT in empties
                 else f"other endpoint(s) empty: {', '.join(sorted(empties))}" if empties else "no empty endpoint")
        print(f"seed {seed:>3}: {where}", flush=True)
    n = args.seeds
    print(f"\n{args.scenario}, fixes: {', '.join(sorted(f.value for f in fixes)) or 'none'}: regional name emptied "
          f"in {len(legacy_times)}/{n} seeds, only other endpoints in {other}/{n} "
          f"({time.perf_counter() - began:.0f}s)")
    if legacy_times:
        print(f"when: median {clock.pdt(statistics.median(legacy_times))}, "
              f"earliest {clock.pdt(min(legacy_times))}, latest {clock.pdt(max(legacy_times))}")


if __name__ == "__main__":
    main()
