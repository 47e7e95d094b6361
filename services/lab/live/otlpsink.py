"""A local OTLP/gRPC trace receiver: what `racelab run` uses instead of a Collector.

Every export is appended to `traces.jsonl` in the OpenTelemetry Collector's
file-exporter format (one OTLP/JSON `ExportTraceServiceRequest` per line:
lowerCamelCase fields, trace and span ids as hex, enums as integers, 64-bit
integers as strings), so the files of a run can be read by anything that reads
the Collector's output. The spans are also kept in memory for live queries.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any, Callable, Collection, Sequence

import grpc
import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

_ID_FIELDS = {"traceId", "spanId", "parentSpanId"}
FORWARD_TIMEOUT_SECONDS = 5.0


def otlp_json(request: trace_service_pb2.ExportTraceServiceRequest) -> dict[str, Any]:
    """The OTLP/JSON form of an export (ids hex, not protobuf-JSON base64)."""
    data = json_format.MessageToDict(request, use_integers_for_enums=True)
    _hex_ids(data)
    return data


def _hex_ids(node: Any) -> None:
    import base64
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                _hex_ids(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids(item)


class TraceSink(trace_service_pb2_grpc.TraceServiceServicer):
    """Writes every export to `path` (if any), hands it to `on_export`, and passes it on to `forward` receivers."""

    def __init__(self, path: Path | None, on_export: Callable[[dict[str, Any]], None] | None = None,
                 forward: Sequence[str] = ()):
        self.path = path
        self._file = path.open("a", encoding="utf-8") if path is not None else None
        self._lock = threading.Lock()
        self.exports = 0
        self.spans = 0
        self.forward_failures = 0
        self.spans_not_forwarded = 0  # spans of exports a forward receiver did not take (down, slow, stopping)
        self._on_export = on_export
        self._forward = [trace_service_pb2_grpc.TraceServiceStub(grpc.aio.insecure_channel(target))
                         for target in forward]

    async def Export(self, request, context):  # noqa: N802 (gRPC method name)
        data = otlp_json(request)
        with self._lock:
            if self._file is not None:
                self._file.write(orjson.dumps(data).decode() + "\n")
                self._file.flush()
            self.exports += 1
            count = sum(len(ss.get("spans", [])) for rs in data.get("resourceSpans", [])
                        for ss in rs.get("scopeSpans", []))
            self.spans += count
        if self._on_export:
            self._on_export(data)
        if self._forward:
            await asyncio.gather(*(self._send(stub, request, count) for stub in self._forward))
        return trace_service_pb2.ExportTraceServiceResponse()

    @property
    def forwarding(self) -> bool:
        return bool(self._forward)

    async def _send(self, stub: trace_service_pb2_grpc.TraceServiceStub, request, count: int) -> None:
        # A receiver that is down or slow loses spans; the run and its own file never wait long for it,
        # but what it lost is counted (summary.json: spans_not_forwarded).
        try:
            await stub.Export(request, timeout=FORWARD_TIMEOUT_SECONDS)
        except grpc.RpcError:
            self.forward_failures += 1
            self.spans_not_forwarded += count
        except asyncio.CancelledError:  # the sink stopped before the receiver answered
            self.forward_failures += 1
            self.spans_not_forwarded += count
            raise

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()


async def start_sink(listen: str, path: Path | None,
                     on_export: Callable[[dict[str, Any]], None] | None = None,
                     forward: Sequence[str] | None = None) -> tuple[grpc.aio.Server, TraceSink]:
    """Serve OTLP/gRPC on `listen`. `forward` (default: RACELAB_OTLP_FORWARD, comma-separated HOST:PORTs)
    receives a copy of every export, e.g. `racelab assert --live` watching a run."""
    if forward is None:
        forward = [t.strip() for t in os.environ.get("RACELAB_OTLP_FORWARD", "").split(",") if t.strip()]
    sink = TraceSink(path, on_export, forward)
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)
    if server.add_insecure_port(listen) == 0:
        raise OSError(f"OTLP sink cannot listen on {listen}")
    await server.start()
    return server, sink


def read_spans(path: Path, services: Collection[str] | None = None) -> list[dict[str, Any]]:
    """Flatten a traces.jsonl into span dicts, each with its resource's service.name and instance;
    only those of `services` (service.name) if given. A line that names none of them is not parsed:
    the file holds every process's spans (about 90 MB for a default run), the report needs two
    services'."""
    spans = []
    wanted = None if services is None else [s.encode() for s in services]
    with path.open("rb") as f:
        for line in f:
            if not line.strip() or (wanted is not None and not any(w in line for w in wanted)):
                continue
            for rs in orjson.loads(line).get("resourceSpans", []):
                attrs = {a["key"]: _value(a.get("value", {})) for a in rs.get("resource", {}).get("attributes", [])}
                if services is not None and attrs.get("service.name") not in services:
                    continue
                for ss in rs.get("scopeSpans", []):
                    for span in ss.get("spans", []):
                        span = dict(span)
                        span["service"] = attrs.get("service.name", "")
                        span["instance"] = attrs.get("service.instance.id", "")
                        span["attrs"] = {a["key"]: _value(a.get("value", {})) for a in span.get("attributes", [])}
                        spans.append(span)
    return spans


def _value(v: dict[str, Any]) -> Any:
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in v:
            return v[key]
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [_value(x) for x in v["arrayValue"].get("values", [])]
    return None


if __name__ == "__main__":  # a standalone sink: python -m services.lab.live.otlpsink HOST:PORT FILE
    import sys

    async def _serve() -> None:
        server, _ = await start_sink(sys.argv[1], Path(sys.argv[2]))
        await server.wait_for_termination()
    asyncio.run(_serve())
