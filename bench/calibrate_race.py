"""The race's shape in the twin: which endpoints a scenario's race empties, when, and how stale.

Builds the deterministic world from the scenario's own settings (endpoints, fleet, enactor
settings, plan churn, Route 53's cost per change and its one-batch-at-a-time zones, the
conditions on each call) and runs it over many seeds: minutes of CPU instead of hours of live
runs. It is where a change to the race's conditions is tried first; it never tells the live run
what to do, and only live runs (bench/race_emergence.py) are reported as the replica's behaviour.

    python bench/calibrate_race.py [--scenario oct-2025 | FILE.yaml] [--seeds 20] [--first-seed 0]
                                   [--fix NAME] [--workers 2]

For each seed: every endpoint that emptied, when (PDT), and how far behind the stale plan was
(the generation it replaced minus its own; 2025: 145 - 110 = 35). Then the 2025 shape's shares
(issue 19): the regional name emptied, another endpoint emptied, the regional name first empty at
23:48 +- 10 min, the stale plan >= 20 generations behind.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

from services.core.fixes import parse_fixes
from services.core.plans import LEGACY_ENDPOINT
from services.lab.twin.sim import run_schedule, world_from_scenario
from services.runtime.clock import SimClock, parse_pdt
from services.runtime.scenario import load_scenario

AS_IN_2025 = "23:48"
WITHIN_SECONDS = 600
BEHIND_2025 = 20


def one_seed(scenario_name: str, seed: int, fixes: tuple[str, ...]) -> list[tuple[str, float, int | None]]:
    scenario = load_scenario(scenario_name)
    result = run_schedule(seed, world_from_scenario(scenario), parse_fixes(list(fixes)))
    return [(e.endpoint, e.at, e.behind) for e in result.emptyings]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="oct-2025", help="a built-in scenario's name or a YAML file")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--fix", action="append", default=[])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)  # fails here, once, on a broken file
    clock = SimClock(scenario.schedule, scenario.epoch, 0.0)
    target = parse_pdt(AS_IN_2025, scenario.epoch)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    began = time.perf_counter()
    regional = other = on_time = stale_enough = 0
    times: list[float] = []
    with ProcessPoolExecutor(args.workers) as pool:
        futures = [pool.submit(one_seed, args.scenario, s, tuple(args.fix)) for s in seeds]
        for seed, future in zip(seeds, futures):
            emptied = future.result()
            first: dict[str, tuple[float, int | None]] = {}
            for endpoint, at, behind in emptied:
                first.setdefault(endpoint, (at, behind))
            if LEGACY_ENDPOINT in first:
                regional += 1
                at, behind = first[LEGACY_ENDPOINT]
                times.append(at)
                on_time += abs(at - target) <= WITHIN_SECONDS
                stale_enough += behind is not None and behind >= BEHIND_2025
            other += any(e != LEGACY_ENDPOINT for e in first)
            text = ", ".join(f"{e.split('.')[0]}{'' if e != LEGACY_ENDPOINT else ' (regional)'} at "
                             f"{clock.pdt(at)} ({behind} behind)" for e, (at, behind) in first.items())
            print(f"seed {seed:>4}: {text or 'nothing emptied'}", flush=True)
    n = args.seeds
    fixes = ", ".join(sorted(f.value for f in parse_fixes(args.fix))) or "none"
    print(f"\n{args.scenario}, fixes: {fixes}, {n} seeds ({time.perf_counter() - began:.0f} s):\n"
          f"  regional name emptied        {regional}/{n}\n"
          f"  another endpoint emptied     {other}/{n}\n"
          f"  regional at {AS_IN_2025} +- 10 min   {on_time}/{n}\n"
          f"  stale plan >= {BEHIND_2025} behind     {stale_enough}/{n}")
    if times:
        print(f"  first empty: median {clock.pdt(statistics.median(times))}, earliest {clock.pdt(min(times))}, "
              f"latest {clock.pdt(max(times))}")


if __name__ == "__main__":
    main()
