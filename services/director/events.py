"""The event log: notable events in memory, appended to events.jsonl, streamed to watchers.

The file is read back on start, so a restarted director still has the night's
story (and the operators know which of their actions are done).
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import AsyncIterator, Callable, Iterable

from google.protobuf import json_format

from racelab.v1 import director_pb2

log = logging.getLogger("racelab.director")


class EventLog:
    def __init__(self, path: Path | None, clock: Callable[[], float],
                 on_event: Callable[[director_pb2.Event], None] | None = None):
        self.path = path
        self.clock = clock
        self.on_event = on_event
        self.events: list[director_pb2.Event] = []
        self._watchers: set[asyncio.Queue] = set()
        self._file = None
        if path is not None:
            self._load(path)
            self._file = path.open("a", encoding="utf-8")

    def _load(self, path: Path) -> None:
        if not path.exists():
            return
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                self.events.append(json_format.ParseDict(json.loads(line), director_pb2.Event()))
            except (ValueError, json_format.ParseError) as exc:
                log.warning("%s:%d: skipping a bad event line: %s", path, n, exc)

    def append(self, event: director_pb2.Event) -> director_pb2.Event:
        stored = director_pb2.Event()
        stored.CopyFrom(event)
        if stored.sim_time_seconds == 0:
            stored.sim_time_seconds = self.clock()
        self.events.append(stored)
        if self._file is not None:
            self._file.write(json.dumps(json_format.MessageToDict(stored, preserving_proto_field_name=True), sort_keys=True) + "\n")
            self._file.flush()
        for queue in self._watchers:
            queue.put_nowait(stored)
        if self.on_event is not None:
            self.on_event(stored)
        return stored

    def record(self, source: str, kind: str, message: str, **attributes: str) -> director_pb2.Event:
        return self.append(director_pb2.Event(source=source, kind=kind, message=message,
                                              attributes={k: str(v) for k, v in attributes.items()}))

    def since(self, sim: float, kinds: Iterable[str] = ()) -> list[director_pb2.Event]:
        kinds = set(kinds)
        return [e for e in self.events if e.sim_time_seconds >= sim and (not kinds or e.kind in kinds)]

    async def watch(self, since: float, kinds: Iterable[str] = ()) -> AsyncIterator[director_pb2.Event]:
        """Past events at or after `since`, then each new one, until the caller stops."""
        kinds = set(kinds)
        queue: asyncio.Queue = asyncio.Queue()
        self._watchers.add(queue)  # before the replay, with no await between: nothing is missed
        try:
            for event in self.since(since, kinds):
                yield event
            while True:
                event = await queue.get()
                if event.sim_time_seconds >= since and (not kinds or event.kind in kinds):
                    yield event
        finally:
            self._watchers.discard(queue)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
