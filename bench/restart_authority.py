"""Authority restart time at scale: the snapshot loaded and the write-ahead log replayed.

    PYTHONPATH=. python bench/restart_authority.py [--records 1000000] [--batches 500] [--repeats 3]

The authority holds `--records` account CNAMEs (as oct-2025-scale, ten times over by default)
besides the endpoint zones. Each repeat writes `--batches` acknowledged change batches (5 record
sets each, into the endpoint zones) that stay in the log (snapshots only every 1,000,000
batches), kills the process with SIGKILL, and times a restart from `exec` until the control API
answers: read the snapshot, replay the log through the core's HostedZone, write the new
snapshot, pre-encode the answers, start serving. It then checks every acknowledged batch is there
and reports the restart's wall time, what the authority said it recovered, and its RSS.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # the harnesses live in tests/harness

from harness.authority import AuthorityProcess  # noqa: E402
from services.core.plans import ACCOUNT_ZONE  # noqa: E402
from services.core.records import RecordSet, RRType, create  # noqa: E402
from services.runtime.scenario import load_scenario  # noqa: E402


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024


def recovered(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if "serving" in line and "zones (" in line]
    return lines[-1].split("zones (", 1)[1].split("); control", 1)[0] if lines else "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--batches", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-restart-"))
    scenario = work / "scenario.yaml"
    scenario.write_text(f"extends: oct-2025\ndns:\n  account_endpoints: {args.records}\n")
    zones = [ep.zone for ep in load_scenario("oct-2025").endpoints]
    auth = AuthorityProcess(work / "state", env={"RACELAB_LOG_LEVEL": "INFO", "RACELAB_SCENARIO": str(scenario)},
                            extra=["--snapshot-every", "1000000"])
    began = time.monotonic()
    auth.start(timeout=600)
    first = {"seconds": round(time.monotonic() - began, 2), "rss_mib": round(rss_mib(auth.proc.pid)),
             "recovered": recovered(auth.log_path)}
    print(f"first start (zones built, first snapshot written): {json.dumps(first)}", flush=True)
    accounts = len(auth.list(ACCOUNT_ZONE).record_sets)
    print(f"account zone: {accounts:,} record sets", flush=True)
    restarts = []
    acknowledged: list[tuple[str, str]] = []
    try:
        for repeat in range(args.repeats):
            for b in range(args.batches):
                zone = zones[b % len(zones)]
                tag = f"r{repeat}-b{b}"
                auth.change(zone, [create(RecordSet(f"{tag}-{i}.{zone}", RRType.TXT, 60, (tag,))) for i in range(5)])
                acknowledged += [(zone, f"{tag}-{i}.{zone}") for i in range(5)]
            auth.kill()
            began = time.monotonic()
            auth.start(timeout=600)
            seconds = time.monotonic() - began
            present = {(z, rs.name) for z in zones for rs in auth.list(z).record_sets}
            lost = [a for a in acknowledged if a not in present]
            row = {"seconds": round(seconds, 2), "rss_mib": round(rss_mib(auth.proc.pid)),
                   "recovered": recovered(auth.log_path), "acknowledged_lost": len(lost)}
            restarts.append(row)
            print(f"restart {repeat + 1}: {json.dumps(row)}", flush=True)
    finally:
        auth.stop()
    report = {"records_in_account_zone": accounts, "batches_replayed_per_restart": args.batches,
              "first_start": first, "restarts": restarts,
              "restart_seconds_median": round(statistics.median(r["seconds"] for r in restarts), 2),
              "restart_seconds_max": max(r["seconds"] for r in restarts),
              "lost": sum(r["acknowledged_lost"] for r in restarts)}
    print(json.dumps(report, indent=2) if args.json else
          f"restart with {accounts:,} records and {args.batches} batches to replay: median "
          f"{report['restart_seconds_median']} s, max {report['restart_seconds_max']} s; "
          f"acknowledged batches lost: {report['lost']}")
    return 1 if report["lost"] else 0


if __name__ == "__main__":
    sys.exit(main())
