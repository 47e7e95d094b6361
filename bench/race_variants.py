"""How a scenario variant shapes the live race: which endpoints emptied, when, and how stale the plan was.

    python bench/race_variants.py bench/race_variants/f.yaml --seeds 401,402 [--until 00:05]

Each seed is one `racelab run --until HH:MM --no-what-if --no-prometheus` of the variant (a YAML that
`extends: oct-2025`); the line per seed comes from its summary.json and the director's event log.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from services.lab.live.run import read_events

ROOT = Path(__file__).resolve().parents[1]


def short(endpoint: str) -> str:
    return endpoint.split(".")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario")
    parser.add_argument("--seeds", default="401,402")
    parser.add_argument("--until", default="00:05")
    parser.add_argument("--base-port", type=int, default=28000)
    args = parser.parse_args()
    for seed in (int(s) for s in args.seeds.split(",")):
        out = Path(tempfile.mkdtemp(prefix=f"racelab-variant-seed{seed}-"))
        began = time.monotonic()
        subprocess.run([sys.executable, "-m", "services.lab.cli", "run", "--no-tty", "--seed", str(seed),
                        "--scenario", args.scenario, "--until", args.until, "--out", str(out), "--base-port",
                        str(args.base_port), "--no-what-if", "--no-prometheus"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, check=False)
        s = json.loads((out / "summary.json").read_text())
        stale: collections.Counter[str] = collections.Counter()
        worst: dict[str, int] = collections.defaultdict(int)
        for _, kind, a in read_events(out / "state" / "director" / "events.jsonl"):
            if kind == "enactor.flip" and a.get("stale") == "true":
                name = short(a["endpoint"])
                stale[name] += 1
                worst[name] = max(worst[name], int(a["replaced_generation"]) - int(a["generation"]))
        stories = [(short(e["endpoint"]), e["at_pdt"], e["behind"]) for e in s.get("emptyings", [])]
        print(f"seed {seed}: {time.monotonic() - began:.0f}s emptied={[short(e) for e in s['emptied_endpoints']]} "
              f"(endpoint, when, generations behind)={stories} stale flips={dict(stale)} "
              f"most behind={dict(worst)} generation-went-back={s['invariant_violations'].get('generation-went-back')}",
              flush=True)


if __name__ == "__main__":
    main()
