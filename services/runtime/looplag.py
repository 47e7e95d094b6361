"""How late an asyncio event loop runs what is due: a task asks to wake every `interval` seconds
and records how much later than that it woke. A batch or a rebuild holding the loop, or a machine
too busy to run the process, shows here; a DNS query arriving meanwhile waited at least as long."""

from __future__ import annotations

import asyncio
from typing import Callable


async def watch_loop_lag(observe: Callable[[float], None], interval: float = 0.05) -> None:
    """Observe each wake-up's lateness in seconds, until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval
        await asyncio.sleep(interval)
        observe(max(0.0, loop.time() - due))


def start_lag_watch(observe: Callable[[float], None], interval: float = 0.05) -> asyncio.Task:
    return asyncio.get_running_loop().create_task(watch_loop_lag(observe, interval), name="loop-lag")


__all__ = ["watch_loop_lag", "start_lag_watch"]
