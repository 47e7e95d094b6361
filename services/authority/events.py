"""Notable events to the director: fire and forget, never in a batch's way."""

from __future__ import annotations

import asyncio
import logging

from racelab.v1 import director_pb2, director_pb2_grpc

log = logging.getLogger(__name__)


class EventSink:
    def __init__(self, target: str | None, source: str, timeout: float = 1.0):
        self.target = target
        self.source = source
        self.timeout = timeout
        self._channel = None
        self._stub = None
        self._tasks: set[asyncio.Task] = set()
        self.sent = 0
        self.failed = 0

    def publish(self, kind: str, message: str, sim_time: float = 0.0, attributes: dict[str, str] | None = None) -> None:
        if not self.target:
            return
        if self._stub is None:
            from services.runtime.service import channel
            self._channel = channel(self.target)
            self._stub = director_pb2_grpc.DirectorStub(self._channel)
        event = director_pb2.Event(sim_time_seconds=sim_time, source=self.source, kind=kind, message=message,
                                   attributes=attributes or {})
        task = asyncio.ensure_future(self._send(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, event: director_pb2.Event) -> None:
        try:
            await self._stub.PublishEvent(director_pb2.PublishEventRequest(event=event), timeout=self.timeout)
            self.sent += 1
        except Exception as exc:  # the director being down is never our problem
            self.failed += 1
            log.debug("event not delivered to the director: %s", exc)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.timeout)
        if self._channel is not None:
            await self._channel.close()
