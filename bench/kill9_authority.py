"""kill -9 durability: the authority's change batches and the planner's plan history.

    PYTHONPATH=. python bench/kill9_authority.py [--iterations 100] [--target authority|planner|both] [--seed 1]

Each iteration: three concurrent writers, SIGKILL at a random moment, restart
on the same state, check everything acknowledged is there and nothing is
half-applied (tests/harness/durability.py says exactly what is checked).
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
    args = ap.parse_args()
    results, ok = {}, True
    for target, killer in (("authority", AuthorityKiller), ("planner", PlannerKiller)):
        if args.target not in (target, "both"):
            continue
        started = time.monotonic()
        tally = killer(Path(tempfile.mkdtemp(prefix=f"kill9-{target}-")), seed=args.seed).run(args.iterations)
        results[target] = {**tally.summary(), "wall_seconds": round(time.monotonic() - started)}
        print(f"{target}: {json.dumps(results[target])}", flush=True)
        ok &= tally.ok
    print(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
