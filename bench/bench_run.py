"""The whole event, end to end: wall time of `racelab run` on oct-2025 (target: at most 3 minutes on
this 2-core machine), processes' startup and memory, and how many INCIDENT.md §3 rows it reproduced.

    .venv/bin/python bench/bench_run.py [--runs N] [--first-seed S] [--base-port P] [--fix NAME ...] [--keep DIR]

Each run is a separate `racelab run --no-tty` in a temporary directory (or DIR/seedN with --keep); the
figures come from its summary.json and report (fidelity table and phase durations), and the wall clock
of the command itself.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one(base_port: int, seed: int, fixes: list[str], out: Path) -> dict:
    cmd = [sys.executable, "-m", "services.lab.cli", "run", "--no-tty", "--seed", str(seed), "--out", str(out),
           "--base-port", str(base_port)] + [f"--fix={f}" for f in fixes]
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    report = (out / "report.html").read_text()
    seen = len(re.findall(r"<td>\d\d:\d\d</td><td>\d\d:\d\d</td><td>[^<]*</td><td>measured</td>", report))
    measured = report.count("<td>measured</td>")
    durations = report[report.find("Phase durations"):]
    phases = {name: f"{run} / {real} ({off})" for name, real, run, off in re.findall(
        r"<tr><td>([^<]+)</td><td>(\d+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>", durations)}
    return {"seed": seed, "fixes": fixes, "command_wall_seconds": round(wall, 1),
            "startup_seconds": summary.get("startup_seconds"), "memory_rss_mib": round(
                (summary.get("memory_rss_bytes") or 0) / 2**20), "spans": summary.get("spans"),
            "regional_name_emptied": summary.get("regional_name_emptied"),
            "emptied_endpoints": summary.get("emptied_endpoints"), "ended_at_pdt": summary.get("ended_at_pdt"),
            "measured_rows_reproduced": f"{seen}/{measured}", "phase_minutes_run_over_real": phases}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--base-port", type=int, default=28000)
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--fix", action="append", default=[])
    p.add_argument("--keep", type=Path, help="keep each run's directory here (DIR/seedN)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first_seed, args.first_seed + args.runs):
            out = (args.keep or Path(tmp)) / f"seed{seed}"
            print(json.dumps(one(args.base_port, seed, args.fix, out)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
