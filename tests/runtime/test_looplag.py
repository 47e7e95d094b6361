"""The event-loop lag watch sees the loop held up, and only then."""

from __future__ import annotations

import asyncio
import time

from services.runtime.looplag import start_lag_watch


def test_a_blocked_loop_shows_as_lag_at_least_as_long_as_the_block():
    seen: list[float] = []

    async def main() -> None:
        task = start_lag_watch(seen.append, interval=0.01)
        await asyncio.sleep(0.05)
        time.sleep(0.3)  # a batch holding the loop
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(main())
    assert len(seen) >= 3
    assert max(seen) >= 0.25  # the wake-up due during the block came when it ended
    assert min(seen) < 0.25 and all(s >= 0 for s in seen)
