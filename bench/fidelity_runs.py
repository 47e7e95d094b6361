"""Fidelity over many live runs: the report's fidelity table, run after run, summed up per row.

For each seed, run the whole oct-2025 night live (`racelab run --no-what-if`: every process, real
gRPC and DNS) and read its fidelity table exactly as report.html does (services/lab/report/fidelity.py
over the run's scraped metrics). Then, per row, the median and the 10th-90th percentile of how far
off 2025 it came (minutes), and per phase the median duration and how often it landed within
+-25 % of 2025's. Fitted, operator-input and predicted rows are kept apart. The race's emergence
(which names emptied, when, how stale the flip) is listed run by run.

    python bench/fidelity_runs.py [--seeds 10] [--first-seed 7001] [--keep DIR] [--out FILE.md]

Seeds 7001 on were never used to choose the scenario's knobs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.core.plans import LEGACY_ENDPOINT  # noqa: E402
from services.lab.report.page import load_run, run_fidelity  # noqa: E402
from services.runtime.clock import parse_pdt  # noqa: E402
from services.runtime.scenario import load_scenario  # noqa: E402
from calibrate_race import AS_IN_2025, BEHIND_2025, WITHIN_SECONDS  # noqa: E402  (the 2025 shape, one definition)

WITHIN = 0.25  # a phase "lands" within this share of 2025's duration


def run_once(seed: int, out: Path, base_port: int) -> Path | None:
    cmd = [sys.executable, "-m", "services.lab.cli", "run", "--no-tty", "--no-what-if", "--seed", str(seed),
           "--out", str(out), "--base-port", str(base_port)]
    for attempt in range(2):  # a run that cannot start (ports still held by the last one) is tried again
        if out.exists():
            shutil.rmtree(out)
        done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              timeout=900)
        if (out / "summary.json").exists():
            return out
        if attempt == 0:
            time.sleep(15)
    print(f"seed {seed}: no summary: {(done.stderr.strip().splitlines() or ['no output'])[-1]}", flush=True)
    return None


def read_run(run_dir: Path) -> dict:
    """The run's fidelity rows and phases, as its report computes them, and its emergence."""
    summary, scenario, series = load_run(run_dir)
    rows, windows = run_fidelity(scenario, series, summary)
    at = lambda hhmm: parse_pdt(hhmm, scenario.epoch)  # noqa: E731
    return {
        "seed": summary["seed"],
        "wall_seconds": summary["wall_seconds"],
        "emptyings": summary.get("emptyings", []),
        "regional_emptied": summary.get("regional_name_emptied"),
        "rows": [{"what": r.what, "real": r.real, "how": r.how, "basis": r.basis,
                  "off_minutes": None if r.reproduced is None else (r.reproduced - at(r.real)) / 60} for r in rows],
        "phases": [{"what": w.what, "real": w.real_minutes(scenario), "minutes": w.minutes(), "basis": w.basis}
                   for w in windows],
    }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def spread(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    return f"{fmt.format(statistics.median(values))} ({fmt.format(percentile(values, 0.1))} .. " \
           f"{fmt.format(percentile(values, 0.9))})"


def tables(runs: list[dict]) -> str:
    n = len(runs)
    out = [f"{n} runs, seeds {', '.join(str(r['seed']) for r in runs)}.", "",
           "### The race, run by run", "",
           "| seed | regional name emptied | names emptied (first time, PDT) | stale plan behind the newest | wall s |",
           "| ---: | --- | --- | --- | ---: |"]
    for r in runs:
        names = "; ".join(f"{e['endpoint'].split('.')[0]} {e['at_pdt'][:8]}" for e in r["emptyings"]) or "none"
        behind = ", ".join(str(e["behind"]) for e in r["emptyings"]) or "-"
        out.append(f"| {r['seed']} | {'yes' if r['regional_emptied'] else 'no'} | {names} | {behind} | "
                   f"{r['wall_seconds']:.0f} |")
    regional = [e for r in runs for e in r["emptyings"] if e["endpoint"] == LEGACY_ENDPOINT]
    others = sum(any(e["endpoint"] != LEGACY_ENDPOINT for e in r["emptyings"]) for r in runs)
    target = parse_pdt(AS_IN_2025, load_scenario("oct-2025").epoch)
    near = sum(any(e["endpoint"] == LEGACY_ENDPOINT and abs(e["at_sim"] - target) <= WITHIN_SECONDS
                   for e in r["emptyings"]) for r in runs)
    stale = sum(any(e["endpoint"] == LEGACY_ENDPOINT and (e["behind"] or 0) >= BEHIND_2025 for e in r["emptyings"])
                for r in runs)
    out += ["", f"Regional name emptied in {sum(bool(r['regional_emptied']) for r in runs)}/{n} runs "
            f"({len(regional)} emptyings of it); another name emptied in {others}/{n}; the regional name empty "
            f"at 23:48 +-10 min in {near}/{n}; its stale plan >= 20 generations behind in {stale}/{n} "
            "(issue 19's aim: >= 95 %, <= 1 in 10, >= 8 in 10, and every time).", ""]

    by_row: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        for row in r["rows"]:
            by_row.setdefault((row["real"], row["what"]), []).append(row)

    def rows_of(basis_is) -> list[str]:
        lines = ["| real (PDT) | what | how | seen in | off 2025, minutes: median (p10 .. p90) |",
                 "| --- | --- | --- | ---: | --- |"]
        for what, mine in by_row.items():
            if not basis_is(usual_basis(mine)):
                continue
            seen = [row["off_minutes"] for row in mine if row["off_minutes"] is not None]
            lines.append(f"| {what[0]} | {what[1]} | {mine[0]['how']} | {len(seen)}/{n} | {spread(seen, '{:+.0f}')} |")
        return lines

    out += ["### Rows predicted (no knob was chosen to land them)", ""] + rows_of(lambda b: b == "predicted")
    out += ["", "### Rows fitted (a knob was chosen to land them) or arithmetic on the operators' input", ""]
    out += rows_of(lambda b: b != "predicted")
    out += ["", "### Phases", "",
            f"| phase | basis | 2025 (min) | this replica, median (p10 .. p90) | within +-{WITHIN:.0%} of 2025 |",
            "| --- | --- | ---: | --- | ---: |"]
    names = list(dict.fromkeys(p["what"] for r in runs for p in r["phases"]))
    for what in names:
        mine = [p for r in runs for p in r["phases"] if p["what"] == what]
        got = [p["minutes"] for p in mine if p["minutes"] is not None]
        real = mine[0]["real"]
        within = sum(1 for m in got if abs(m - real) <= WITHIN * real)
        out.append(f"| {what} | {mine[0]['basis']} | {real:.0f} | {spread(got, '{:.0f}')} | {within}/{n} |")
    return "\n".join(out)


def usual_basis(rows: list[dict]) -> str:
    """A row's basis in most runs (a run whose race emptied nothing has no DNS outage to fit)."""
    return statistics.mode(row["basis"] for row in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=7001)
    parser.add_argument("--base-port", type=int, default=29000)
    parser.add_argument("--keep", type=Path, help="keep each run directory under here (default: removed)")
    parser.add_argument("--from-runs", type=Path, nargs="*", help="read these finished run directories instead")
    parser.add_argument("--out", type=Path, help="also write the tables to this Markdown file")
    args = parser.parse_args()
    runs = []
    if args.from_runs:
        runs = [read_run(d) for d in args.from_runs]
    for seed in range(args.first_seed, args.first_seed + args.seeds) if not args.from_runs else ():
        base = args.keep or Path(tempfile.mkdtemp(prefix="racelab-fidelity-"))
        base.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        run_dir = run_once(seed, base / f"seed{seed}", args.base_port)
        if run_dir is None:
            continue
        r = read_run(run_dir)
        runs.append(r)
        if not args.keep:
            shutil.rmtree(base)
        names = ", ".join(f"{e['endpoint'].split('.')[0]} {e['at_pdt'][:5]} ({e['behind']} behind)"
                          for e in r["emptyings"]) or "nothing emptied"
        print(f"seed {seed}: {names}; {time.monotonic() - began:.0f} s", flush=True)
    if not runs:
        print("no run finished", file=sys.stderr)
        return 1
    text = tables(runs)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
