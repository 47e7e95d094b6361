"""The planner's durable state: the plan history (an append-only JSON-lines log)
and the fleet it plans over (one JSON file, replaced atomically).

A plan is appended and fsync'd before anyone can be served it. On load, a torn
last line (a crash in the middle of an append) is dropped and cut off the file,
so the next append starts on a clean line. Anything else unreadable is an error.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from services.core.plans import EndpointPlan, LoadBalancer, Plan, Target

PLAN_LOG = "plans.jsonl"
AUTOMATION_OFF_FILE = "automation-disabled"
FLEET_FILE = "fleet.json"


class StateError(Exception):
    """Durable state that cannot be read back (not a torn last line)."""


def plan_to_json(plan: Plan) -> str:
    return json.dumps({
        "generation": plan.generation, "created_at": plan.created_at, "trace_parent": plan.trace_parent,
        "endpoints": [{"endpoint": ep.endpoint, "tree_id": ep.tree_id, "dual_stack": ep.dual_stack,
                       "targets": [[t.lb_id, t.ipv4, t.ipv6, t.weight] for t in ep.targets]}
                      for ep in plan.endpoints]}, separators=(",", ":"))


def plan_from_json(text: str) -> Plan:
    raw = json.loads(text)
    return Plan(int(raw["generation"]), float(raw["created_at"]), tuple(
        EndpointPlan(ep["endpoint"], ep["tree_id"], tuple(Target(*t) for t in ep["targets"]),
                     bool(ep["dual_stack"]))
        for ep in raw["endpoints"]), raw.get("trace_parent", ""))


class PlanLog:
    def __init__(self, state_dir: str | os.PathLike[str]):
        self.dir = Path(state_dir)
        self.path = self.dir / PLAN_LOG
        self._fd: int | None = None

    def load(self) -> list[Plan]:
        """Every plan in the log, oldest first; a torn last line is dropped (and truncated away)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        plans: list[Plan] = []
        good = 0  # bytes of the file that hold whole, valid lines
        lines = data.split(b"\n")
        for i, line in enumerate(lines):
            last = i == len(lines) - 1
            if not line:
                if not last:
                    good += 1
                continue
            try:
                if last:
                    raise ValueError("no newline: torn append")
                plan = plan_from_json(line.decode())
            except (ValueError, KeyError, TypeError) as exc:
                if last or all(not rest for rest in lines[i + 1:]):
                    break  # torn last line
                raise StateError(f"{self.path}: line {i + 1} is unreadable ({exc})") from None
            if plans and plan.generation <= plans[-1].generation:
                raise StateError(f"{self.path}: line {i + 1}: generation {plan.generation} "
                                 f"after {plans[-1].generation}")
            plans.append(plan)
            good += len(line) + 1
        if good != len(data):
            with open(self.path, "r+b") as f:
                f.truncate(good)
                f.flush()
                os.fsync(f.fileno())
        return plans

    def append(self, plan: Plan) -> None:
        """Durable when this returns (blocking: call it off the event loop)."""
        if self._fd is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self._fd, (plan_to_json(plan) + "\n").encode())
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class FleetFile:
    """The registered load balancers and drained zones; rewritten whole on each change."""

    def __init__(self, state_dir: str | os.PathLike[str]):
        self.path = Path(state_dir) / FLEET_FILE

    def load(self) -> tuple[list[LoadBalancer], set[str]]:
        if not self.path.exists():
            return [], set()
        try:
            raw = json.loads(self.path.read_text())
            lbs = [LoadBalancer(**{**lb, "endpoints": tuple(lb.get("endpoints", ()))})
                   for lb in raw["load_balancers"]]
            return lbs, set(raw.get("drained_zones", []))
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"{self.path}: unreadable ({exc})") from None

    def save(self, lbs: list[LoadBalancer], drained: set[str]) -> None:
        tmp = self.path.with_suffix(".tmp")
        text = json.dumps({"load_balancers": [asdict(lb) for lb in lbs], "drained_zones": sorted(drained)})
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class AutomationFile:
    """Whether DNS automation is on: off while a marker file exists (the operators' switch survives restarts)."""

    def __init__(self, state_dir: str | os.PathLike[str]):
        self.path = Path(state_dir) / AUTOMATION_OFF_FILE

    def enabled(self) -> bool:
        return not self.path.exists()

    def save(self, enabled: bool) -> None:
        if enabled:
            self.path.unlink(missing_ok=True)
        else:
            with open(self.path, "w") as f:
                f.write("DNS automation disabled by the operators\n")
                f.flush()
                os.fsync(f.fileno())
