"""kill -9 durability: the authority's change batches and the planner's plan history.

    PYTHONPATH=. python bench/kill9_authority.py [--iterations 100] [--target authority|planner|both] [--seed 1]
        [--account-records 100000]

Each iteration: three concurrent writers, SIGKILL at a random moment, restart
on the same state, check everything acknowledged is there and nothing is
half-applied (tests/harness/durability.py says exactly what is checked).
With --account-records N the authority also holds N account CNAMEs (oct-2025-scale's zone), so
every restart reloads a zone of that size.
Prints the tally per target as JSON; exit 1 if anything was lost.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # the harnesses live in tests/harness

from harness.durability import AuthorityKiller, PlannerKiller  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--target", choices=["authority", "planner", "both"], default="both")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--account-records", type=int, default=0,
                    help="account CNAMEs the authority holds besides the endpoint zones (0: the default zones)")
    args = ap.parse_args()
    scenario = None
    if args.account_records:
        scenario = Path(tempfile.mkdtemp(prefix="kill9-scenario-")) / "scenario.yaml"
        scenario.write_text(f"extends: oct-2025\ndns:\n  account_endpoints: {args.account_records}\n")
    results, ok = {}, True
    for target, killer in (("authority", AuthorityKiller), ("planner", PlannerKiller)):
        if args.target not in (target, "both"):
            continue
        started = time.monotonic()
        workdir = Path(tempfile.mkdtemp(prefix=f"kill9-{target}-"))
        made = killer(workdir, seed=args.seed, scenario=scenario) if target == "authority" \
            else killer(workdir, seed=args.seed)
        tally = made.run(args.iterations)
        results[target] = {**tally.summary(), "wall_seconds": round(time.monotonic() - started)}
        print(f"{target}: {json.dumps(results[target])}", flush=True)
        ok &= tally.ok
    print(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
