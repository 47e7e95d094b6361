"""Network Manager's margin in the cascade twin: the phases when the churn and the outage move a little.

    python bench/netmgr_margin.py [--scenario oct-2025 | FILE.yaml] [--churn 0.9,1.0,1.1]
                                  [--seeds 1,2] [--starts 23:33,23:48] [--workers 2]

The twin (services/lab/twin/cascade.py, the same core as the live run) is run for every churn scale
(`dependents.churn_per_hour` times it: a stand-in for what differs between live runs, which move
Network Manager's backlog by a few hundred items), seed and regional-name outage start (live runs
emptied it between 23:32 and 00:17; it ends at the operators' 02:25 repair). Each phase's duration
is read as the report reads it (services/lab/report/fidelity.py), and printed as its offset from
2025's, as a median over the seeds and starts of each churn scale ("never": the phase never ended
by 14:30 in any; "*": in some). A phase within +-25 % at every churn scale has a margin; one that
swings from -50 % to "never" is on a knife edge (bench/RESULTS-cascade.md).
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

from services.core.operators import repair_time
from services.lab.report.fidelity import fidelity, operator_times
from services.lab.twin.cascade import run_twin
from services.runtime.clock import parse_pdt
from services.runtime.scenario import load_scenario

PHASES = ("instances without network", "STS second window", "whole event")


def one(scenario_name: str, churn_scale: float, seed: int, start: str) -> dict[str, float | None]:
    """Each phase's offset from 2025 (a share of 2025's duration; None: not seen whole) in one twin run."""
    sc = load_scenario(scenario_name).with_overrides(seed=seed)
    sc = replace(sc, dependents=replace(sc.dependents, churn_per_hour=sc.dependents.churn_per_hour * churn_scale))
    empty_from = parse_pdt(start, sc.epoch)
    out = run_twin(sc, outages=[(empty_from, None)])
    _, windows = fidelity(sc, lambda key: out.series.get(key, []), operator_times(out.events),
                          (empty_from, repair_time(sc.operators)))
    return {w.what: w.off(sc) for w in windows if w.what in PHASES}


def cell(offs: list[float | None]) -> str:
    seen = [o for o in offs if o is not None]
    if not seen:
        return "never"
    return f"{statistics.median(seen) * 100:+.0f} %" + ("" if len(seen) == len(offs) else "*")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="oct-2025", help="a built-in scenario's name or a YAML file")
    parser.add_argument("--churn", default="0.9,1.0,1.1", help="churn scales, comma-separated")
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--starts", default="23:33,23:48", help="when the regional name empties (PDT)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    load_scenario(args.scenario)  # fails here, once, on a broken file
    churns = [float(c) for c in args.churn.split(",")]
    runs = [(c, int(s), st) for c in churns for s in args.seeds.split(",") for st in args.starts.split(",")]
    began = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(one, *zip(*[(args.scenario, c, s, st) for c, s, st in runs])))
    print(f"{args.scenario}: median offset from 2025 over seeds {args.seeds} and starts {args.starts}")
    print("| phase | " + " | ".join(f"churn x{c:g}" for c in churns) + " |")
    print("| --- |" + " ---: |" * len(churns))
    for phase in PHASES:
        cells = [cell([r[phase] for (c2, _, _), r in zip(runs, results) if c2 == c]) for c in churns]
        print(f"| {phase} | " + " | ".join(cells) + " |")
    print(f"{len(runs)} twin runs in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
