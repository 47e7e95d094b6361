#!/usr/bin/env python3
"""What does one change batch cost as the zone grows? In process, the core alone (HostedZone.prepare).

    .venv/bin/python bench/batch_latency.py [--sizes 1000,10000,100000,1000000] [--repeat 200] [--lbs 300]
                                            [--no-freeze]

For each zone size (filled with account-style CNAMEs and one endpoint's trees, as the scale scenario
holds them), times `--repeat` batches of two kinds on the same zone:
  - one change: an UPSERT of the endpoint's alias (the enactors' flip);
  - a whole-tree install: the TXT, one weighted alias per LB and its leaf, dual stack (`--lbs` LBs:
    1 + 4 x LBs record sets, 1 + 2 x LBs values, under Route 53's 1,000-value quota at 300),
    each followed by the delete of that tree so the zone keeps its size.
Prints p50 / p99 in milliseconds and the ratio of each size's p50 to the smallest's (the aim: flat
within 2x from 1 k to 1 M records).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.core import tree  # noqa: E402
from services.core.plans import EndpointPlan, Target  # noqa: E402
from services.core.records import RecordSet, RRType, create  # noqa: E402
from services.core.zone import HostedZone  # noqa: E402

ZONE = "ddb.bench.example"
ENDPOINT = ZONE


def filled(size: int) -> HostedZone:
    zone = HostedZone(ZONE)
    cnames = [RecordSet(f"{100000000000 + i}.{ZONE}", RRType.CNAME, 300, (f"legacy.{ZONE}",))
              for i in range(size)]
    for start in range(0, size, 1000):  # the quota: 1,000 values a batch
        zone.apply([create(rs) for rs in cnames[start:start + 1000]])
    return zone


def plan_for(lbs: int, tree_id: str) -> EndpointPlan:
    targets = tuple(Target(f"lb-{i:04d}", f"10.{i // 250}.{i % 250}.1", f"2001:db8::{i:x}", 1) for i in range(lbs))
    return EndpointPlan(ENDPOINT, tree_id, targets, dual_stack=True)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--lbs", type=int, default=300)
    parser.add_argument("--no-freeze", dest="freeze", action="store_false",
                        help="leave the loaded zone to the garbage collector (the authority freezes it)")
    args = parser.parse_args()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        began = time.perf_counter()
        gc.disable()  # loading, as the authority loads its zones: no collections over the growing zone
        zone = filled(size)
        first = plan_for(args.lbs, str(uuid.UUID(int=1)))
        zone.apply(tree.install_changes(first, 1, 60))
        zone.apply(tree.activation_changes(ENDPOINT, True, tree.tree_root(first), None))
        fill_s = time.perf_counter() - began
        gc.enable()
        gc.collect()
        if args.freeze:  # as the authority does once its zones are loaded (services/authority/server.py)
            gc.freeze()
        flips, installs = [], []
        root = tree.tree_root(first)
        for i in range(args.repeat):
            batch = [c for c in tree.activation_changes(ENDPOINT, True, root, root)]
            t0 = time.perf_counter()
            zone.apply(batch)
            flips.append(time.perf_counter() - t0)
            ep = plan_for(args.lbs, str(uuid.UUID(int=1000 + i)))
            batch = tree.install_changes(ep, 2 + i, 60)
            t0 = time.perf_counter()
            zone.apply(batch)
            installs.append(time.perf_counter() - t0)
            zone.apply(tree.deletion_changes(zone.snapshot, [tree.tree_root(ep)]))
        records = len(zone.snapshot.records)
        rows.append((size, records, fill_s, flips, installs))
        gc.unfreeze()
        print(f"{records:>9,} records (filled in {fill_s:.1f} s): one change p50 {statistics.median(flips) * 1e3:.3f} ms "
              f"p99 {percentile(flips, 0.99) * 1e3:.3f} ms; tree install ({len(batch)} changes) p50 "
              f"{statistics.median(installs) * 1e3:.2f} ms p99 {percentile(installs, 0.99) * 1e3:.2f} ms", flush=True)
    base_flip, base_install = statistics.median(rows[0][3]), statistics.median(rows[0][4])
    print("\n| records | one change p50 | p99 | x smallest | tree install p50 | p99 | x smallest |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size, records, _, flips, installs in rows:
        print(f"| {records:,} | {statistics.median(flips) * 1e3:.3f} ms | {percentile(flips, 0.99) * 1e3:.3f} ms | "
              f"{statistics.median(flips) / base_flip:.2f} | {statistics.median(installs) * 1e3:.2f} ms | "
              f"{percentile(installs, 0.99) * 1e3:.2f} ms | {statistics.median(installs) / base_install:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
