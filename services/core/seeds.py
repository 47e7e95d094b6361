"""One seeded tree: every random choice of a run comes from the scenario's one seed.

`derive(seed, "enactor", "enactor-az1")` is that enactor's generator, `derive(seed, "dwfm")` the
DWFM fleet's, `derive(seed, "planner", "109")` the planner's tree ids after generation 109, and so on:
a path names who draws, so adding a new consumer never shifts anyone else's numbers, and the live
services and the twins draw the same numbers for the same path (TigerBeetle's VOPR derives its
generators from one seed the same way). String seeds are hashed by `random.Random` with SHA-512,
so the same path gives the same stream on every machine and Python version.
"""

from __future__ import annotations

import random


def derive(seed: int, *path: str) -> random.Random:
    """The generator of whoever `path` names, from the run's one seed."""
    return random.Random("/".join((str(seed), *path)))
