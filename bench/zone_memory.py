"""Does the authority's memory grow with the plans written into it? In process, no sockets.

    PYTHONPATH=. python bench/zone_memory.py [--plans 400] [--lbs 24]

Writes plans into the oct-2025 zones as the enactors do (a new tree, the alias
flip, the tree of three plans ago deleted) and rebuilds the answers each batch
touched, as the authority does; every 25 plans prints the memory Python holds
(tracemalloc, after a collection), the pre-encoded answers and the zone's cache
of validated record sets (bounded: services/core/zone.py `_validate`). The
memory must stop growing once that cache is full.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests")]

from services.authority.answers import AnswerCache  # noqa: E402
from services.authority.state import initial_zones  # noqa: E402
from harness.authority import fleet_planner  # noqa: E402
from services.core import tree  # noqa: E402
from services.core.zone import ZoneSet, _validate  # noqa: E402
from services.runtime.scenario import load_scenario  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plans", type=int, default=400)
    ap.add_argument("--lbs", type=int, default=24)
    args = ap.parse_args()
    scenario = load_scenario("oct-2025")
    zones = ZoneSet()
    for z in initial_zones(scenario):
        zones.add(z)
    cache = AnswerCache(zones)
    cache.rebuild_all()

    def write(zone: str, changes) -> None:
        zones[zone].apply(changes)
        cache.rebuild(zone, [c.record_set.name for c in changes])

    planner = fleet_planner(lbs=args.lbs)
    plans = []
    tracemalloc.start()
    print("plans  traced_MB  answers  validated_record_sets", flush=True)
    for i in range(args.plans + 1):
        plan = planner.next_plan(0.0)
        for ep in plan.endpoints:
            write(ep.zone, tree.install_changes(ep, plan.generation, 5))
            previous = tree.tree_root(plans[-1].for_endpoint(ep.endpoint)) if plans else None
            write(ep.zone, tree.activation_changes(ep.endpoint, ep.dual_stack, tree.tree_root(ep), previous))
            if len(plans) >= 3:
                snap = zones[ep.zone].snapshot
                old = tree.tree_root(plans[-3].for_endpoint(ep.endpoint))
                if tree.tree_generation(snap, old) is not None:
                    write(ep.zone, tree.deletion_changes(snap, [old]))
        plans = (plans + [plan])[-3:]
        if i % 25 == 0:
            gc.collect()
            print(f"{i:5d}  {tracemalloc.get_traced_memory()[0] / 1e6:9.2f}  {len(cache.entries):7d}  "
                  f"{_validate.cache_info().currsize:21d}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
