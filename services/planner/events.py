"""Notable events to the director: fire and forget (docs/live.md, "Notable events").

A director that is missing, slow or down never blocks the caller: each event is
one background RPC with a short deadline, and failures are only logged.
(The enactor has the same helper; it belongs in services/runtime.)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

import grpc

from racelab.v1 import director_pb2, director_pb2_grpc
from services.runtime.service import channel

log = logging.getLogger(__name__)


class DirectorEvents:
    def __init__(self, target: str | None, source: str, now: Callable[[], float], timeout: float = 2.0):
        self.source = source
        self._now = now
        self._timeout = timeout
        self._channel = channel(target) if target else None
        self._stub = director_pb2_grpc.DirectorStub(self._channel) if self._channel else None
        self._pending: set[asyncio.Task] = set()

    def publish(self, kind: str, message: str, **attributes: object) -> None:
        if self._stub is None:
            return
        event = director_pb2.Event(sim_time_seconds=self._now(), source=self.source, kind=kind, message=message,
                                   attributes={k: str(v) for k, v in attributes.items()})
        task = asyncio.ensure_future(self._send(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(self, event: director_pb2.Event) -> None:
        try:
            await self._stub.PublishEvent(director_pb2.PublishEventRequest(event=event), timeout=self._timeout)
        except grpc.RpcError as exc:
            log.debug("director did not take event %s: %s", event.kind, exc.code())
        except Exception:  # never let telemetry break the caller
            log.debug("director event %s failed", event.kind, exc_info=True)

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        if self._channel is not None:
            await self._channel.close()
