"""How often does the race emerge in the LIVE replica? Run `racelab run` over many seeds.

For each seed, as in 2025 and with every race fix, run the oct-2025 scenario
end to end (every process, real gRPC and DNS) and read its summary.json.

    python bench/race_emergence.py [--seeds 20] [--first-seed 1] [--until HH:MM] [--out bench/RESULTS-race.md]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from calibrate_race import AS_IN_2025, BEHIND_2025, WITHIN_SECONDS  # the 2025 shape, one definition
from services.core.plans import LEGACY_ENDPOINT
from services.runtime.clock import parse_pdt
from services.runtime.scenario import load_scenario


def run_once(seed: int, fixes: list[str], base_port: int, until: str | None = None) -> dict:
    """One run's summary; a run that cannot start (ports still held by a previous one) is retried once."""
    for attempt in range(2):
        out = Path(tempfile.mkdtemp(prefix=f"racelab-seed{seed}-"))
        cmd = [sys.executable, "-m", "services.lab.cli", "run", "--no-tty", "--seed", str(seed), "--out", str(out),
               "--base-port", str(base_port), "--no-what-if", "--no-prometheus"] + [f"--fix={f}" for f in fixes] + (["--until", until] if until else [])
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=600)
        if (out / "summary.json").exists():
            return json.loads((out / "summary.json").read_text())
        if attempt == 0:
            time.sleep(15)
    reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"stale_apply": None, "regional_name_emptied": None, "enactors_stuck": None, "empty_windows": [],
            "failed_process": f"did not start: {reason}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--base-port", type=int, default=19000)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--until", metavar="HH:MM", help="end each run here (the race is over by 02:30)")
    parser.add_argument("--only", choices=["as-in-2025", "fixed"], help="run one half only")
    args = parser.parse_args()
    rows = []
    halves = [("as in 2025", []), ("all race fixes", ["all"])]
    if args.only:
        halves = [halves[0] if args.only == "as-in-2025" else halves[1]]
    for label, fixes in halves:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            began = time.monotonic()
            s = run_once(seed, fixes, args.base_port, args.until)
            window = s["empty_windows"][0] if s["empty_windows"] else None
            regional = [e for e in s.get("emptyings", []) if e["endpoint"] == LEGACY_ENDPOINT]
            row = (label, seed, s["stale_apply"], s.get("regional_name_emptied"), s["enactors_stuck"],
                   window["from_pdt"] if window else "-", s["failed_process"] or "-",
                   ", ".join(e for e in s.get("emptied_endpoints", []) if e != LEGACY_ENDPOINT) or "-",
                   regional[0]["behind"] if regional else "-", time.monotonic() - began,
                   regional[0]["at_sim"] if regional else None)
            rows.append(row)
            print("%-15s seed %3d  stale %-5s emptied %-5s stuck %-5s from %-13s failed %s  other names emptied: %s"
                  "  behind %s  (%.0fs)" % row[:10],
                  flush=True)
    lines = ["| fixes | seed | stale apply | regional name emptied | enactors stuck | empty from | failed process "
             "| other names emptied | stale plan behind |", "| --- | ---: | --- | --- | --- | --- | --- | --- | ---: |"]
    lines += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} | {r[6]} | {r[7]} | {r[8]} |" for r in rows]
    target = parse_pdt(AS_IN_2025, load_scenario("oct-2025").epoch)
    for label, _ in halves:
        mine = [r for r in rows if r[0] == label]
        near = sum(1 for r in mine if r[10] is not None and abs(r[10] - target) <= WITHIN_SECONDS)
        lines.append(f"\n{label}: regional name emptied in {sum(bool(r[3]) for r in mine)}/{len(mine)} runs, "
                     f"stale apply in {sum(bool(r[2]) for r in mine)}/{len(mine)}, another name emptied in "
                     f"{sum(r[7] != '-' for r in mine)}/{len(mine)}, the regional name empty at 23:48 +-10 min in "
                     f"{near}/{len(mine)}, its stale plan >= 20 generations behind in "
                     f"{sum(1 for r in mine if isinstance(r[8], int) and r[8] >= BEHIND_2025)}/{len(mine)}")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(f"# Live race emergence\n\n`python bench/race_emergence.py --seeds {args.seeds}`\n\n"
                            + text + "\n")


if __name__ == "__main__":
    main()
