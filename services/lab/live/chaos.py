"""Chaos during a run: `racelab run --chaos kill:authority@23:40` SIGKILLs one process at a simulated
time (PDT, as the scenario's operators) and starts it again on the same state, ports and credentials.

The run must complete anyway: the authority recovers its zones from its log, the planner its plan
history, the others reconnect.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from services.lab.live.supervisor import Supervisor
from services.runtime.clock import ScheduleError, SimClock, parse_pdt
from services.runtime.scenario import Scenario


class ChaosError(ValueError):
    pass


@dataclass(frozen=True)
class Kill:
    instance: str
    at: float  # simulated seconds since the scenario's epoch
    spec: str


def parse_chaos(spec: str, scenario: Scenario, instances: list[str]) -> Kill:
    """'kill:INSTANCE@HH:MM[:SS]' -> Kill (ChaosError with one clear line otherwise)."""
    action, _, rest = spec.partition(":")
    instance, _, when = rest.partition("@")
    if action != "kill" or not instance or not when:
        raise ChaosError(f"--chaos {spec!r}: expected kill:INSTANCE@HH:MM[:SS]")
    if instance not in instances:
        raise ChaosError(f"--chaos {spec!r}: no process {instance!r} (one of: {', '.join(instances)})")
    try:
        at = parse_pdt(when, scenario.epoch)
    except ScheduleError as exc:
        raise ChaosError(f"--chaos {spec!r}: {exc}") from None
    if at >= scenario.end:
        raise ChaosError(f"--chaos {spec!r}: {when} is after the scenario's end")
    return Kill(instance, at, spec)


async def run_chaos(kills: list[Kill], supervisor: Supervisor, clock: SimClock,
                    say: Callable[[str], None]) -> list[dict]:
    """Perform the kills in time order; what happened, for the summary."""
    done = []
    for kill in sorted(kills, key=lambda k: k.at):
        await clock.sleep_until(kill.at)
        killed_at = clock.now()  # on a busy machine, a little after kill.at
        say(f"chaos: kill -9 {kill.instance} at {clock.pdt(killed_at)}")
        started = time.monotonic()
        ready = await supervisor.restart(kill.instance)
        say(f"chaos: {kill.instance} back in {ready:.1f}s at {clock.pdt()}")
        done.append({"instance": kill.instance, "spec": kill.spec, "killed_at_pdt": clock.pdt(killed_at),
                     "killed_at_sim": round(killed_at, 1), "back_at_sim": round(clock.now(), 1),
                     "ready_seconds": round(ready, 2), "wall_seconds": round(time.monotonic() - started, 2)})
    return done
