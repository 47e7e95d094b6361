"""State a process keeps in memory, carried across a kill -9 in its state directory.

dwfm, netmgr and nlb hold what matters in their core objects (the fleet and its leases, the
propagation backlog, the health checker and its targets). Between ticks they pickle it to
RACELAB_STATE_DIR/<name>.pickle: written to a temporary file, then renamed over the last one, so a
kill at any moment leaves the last whole snapshot. A restart loses what changed after it, at most
SAVE_EVERY wall seconds. Without a state directory nothing is saved. The file is this process's
own (mode 0600): it is read back only by the same code, for the same run.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from pathlib import Path

from services.runtime.service import ConfigError

log = logging.getLogger("racelab.snapshot")

SAVE_EVERY = 1.0  # wall seconds: pickling dwfm's 4000 droplets takes ~10 ms


class Snapshots:
    def __init__(self, state_dir: str | None, name: str, run: tuple):
        """`run` names the run (scenario, seed, wall start): a snapshot of another run is not restored."""
        self.path = Path(state_dir) / f"{name}.pickle" if state_dir else None
        self.run = run
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"--state-dir: cannot create {state_dir}: {exc.strerror}") from None
        self._saved_at = float("-inf")

    def load(self) -> dict | None:
        """The state saved last by this run, or None."""
        if self.path is None or not self.path.exists():
            return None
        try:
            with self.path.open("rb") as f:
                saved = pickle.load(f)
        except Exception as exc:  # unpickling can raise almost anything
            raise ConfigError(f"--state-dir: cannot read {self.path} ({type(exc).__name__}: {exc}); "
                              f"delete it to start afresh") from None
        if saved.get("run") != self.run:
            log.warning("%s is from another run %s; starting afresh", self.path, saved.get("run"))
            return None
        return saved["state"]

    def save(self, state: dict, force: bool = False) -> None:
        if self.path is None or (not force and time.monotonic() - self._saved_at < SAVE_EVERY):
            return
        self._saved_at = time.monotonic()
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            pickle.dump({"run": self.run, "state": state}, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, self.path)


def for_context(ctx, name: str) -> Snapshots:
    """The snapshots of a service's Context (its state directory, its run)."""
    return Snapshots(ctx.args.state_dir, name, (ctx.scenario.name, ctx.scenario.seed, round(ctx.clock.wall_start, 3)))
