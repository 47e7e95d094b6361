"""Publishing notable events to the director: fire and forget.

A director that is down, slow or absent never blocks the caller (docs/live.md,
"Notable events"): events go into a bounded queue that one background task
sends; what cannot be sent is logged and dropped.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, Mapping

import grpc

from racelab.v1 import director_pb2, director_pb2_grpc

log = logging.getLogger("racelab.events")


class EventPublisher:
    def __init__(self, target: str | None, source: str, now: Callable[[], float] | None = None, *,
                 channel_factory: Callable[[str], grpc.aio.Channel] | None = None,
                 timeout: float = 2.0, max_queue: int = 1000):
        self.target = target
        self.source = source
        self._now = now  # simulated clock for events published without a time
        self.timeout = timeout
        self._channel_factory = channel_factory
        self._queue: asyncio.Queue | None = None
        self._max_queue = max_queue
        self._task: asyncio.Task | None = None
        self._channel: grpc.aio.Channel | None = None
        self.sent = self.dropped = 0

    def publish(self, kind: str, message: str, attributes: Mapping[str, object] | None = None,
                sim_time_seconds: float | None = None) -> None:
        log.info("event %s: %s", kind, message)
        if not self.target:
            return
        if sim_time_seconds is None:
            sim_time_seconds = self._now() if self._now else 0.0
        if self._queue is None:
            self._queue = asyncio.Queue(self._max_queue)
        event = director_pb2.Event(sim_time_seconds=sim_time_seconds, source=self.source, kind=kind,
                                   message=message, attributes={k: str(v) for k, v in (attributes or {}).items()})
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            return
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._send_loop())

    async def _send_loop(self) -> None:
        assert self._queue is not None
        if self._channel is None:
            if self._channel_factory is None:
                from services.runtime.service import channel
                self._channel_factory = channel
            self._channel = self._channel_factory(self.target)
        stub = director_pb2_grpc.DirectorStub(self._channel)
        while not self._queue.empty():
            event = self._queue.get_nowait()
            try:
                await stub.PublishEvent(director_pb2.PublishEventRequest(event=event), timeout=self.timeout)
                self.sent += 1
            except grpc.RpcError as exc:
                self.dropped += 1
                log.debug("director %s did not take event %s: %s", self.target, event.kind, exc)

    async def flush(self, timeout: float = 2.0) -> None:
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except asyncio.TimeoutError:
                pass

    async def close(self) -> None:
        await self.flush()
        if self._task is not None:
            self._task.cancel()
        if self._channel is not None:
            await self._channel.close()
