#!/usr/bin/env python3
"""Does the race come back after the operators' 02:25 repair? The race twin of oct-2025 through the
repair (`racelab explore --scenario oct-2025`), as written (enactor-az1 slow until 02:20) and with
enactor-az1 kept slow past the repair (as machine load makes an enactor slow in a live run).

    .venv/bin/python bench/rerace_after_repair.py [--schedules 40] [--workers 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.core.invariants import Violation  # noqa: E402
from services.lab.twin import explore  # noqa: E402
from services.lab.twin.sim import AFTER_REPAIR, world_from_scenario  # noqa: E402
from services.runtime.scenario import load_scenario  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=40)
    parser.add_argument("--workers", type=int, default=explore.default_workers())
    args = parser.parse_args()
    written = load_scenario("oct-2025")
    repair = next(o.at for o in written.operators if o.action == "restore-dns")
    slow = dataclasses.replace(written, conditions=tuple(dataclasses.replace(c, end=repair + AFTER_REPAIR)
                                                         for c in written.conditions))
    for label, scenario in (("as written (az1 slow until 02:20)", written),
                            ("az1 slow until 02:55, past the repair", slow)):
        began = time.perf_counter()
        config = world_from_scenario(scenario, through_repair=True)
        verdicts = list(explore.verdicts(1, args.schedules, config, frozenset(), args.workers))
        again = [v.seed for v in verdicts if Violation.EMPTIED_AFTER_REPAIR in v.violations]
        emptied = sum(Violation.ENDPOINT_EMPTY in v.violations for v in verdicts)
        print(f"{label}: {len(again)} of {len(verdicts)} schedules emptied an endpoint again after the repair "
              f"({emptied} emptied one at all); seeds {again[:10]}; {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
