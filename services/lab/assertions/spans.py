"""Spans as the assertions see them, loaded from OTLP (JSON lines or protobuf).

A `Span` is one span, or one of its events seen as a point in time (`event` set,
`start == end` = the event's time, attributes = the span's overlaid with the
event's). That one shape lets a selector pick `tree.deleted` events of
`authority.apply_batch` as easily as whole spans.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import grpc
import orjson
from google.protobuf import json_format

# The span fields a selector or predicate may name; anything else is an attribute key.
FIELDS = ("name", "service", "instance", "event", "trace_id", "span_id", "parent_id", "start", "end", "time",
          "duration", "status", "kind")
_STATUS = {0: "unset", 1: "ok", 2: "error"}


class TraceError(ValueError):
    """Traces that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class SpanEvent:
    name: str
    time: int  # Unix nanoseconds
    attrs: Mapping[str, Any]


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    service: str  # resource service.name
    instance: str  # resource service.instance.id
    start: int  # Unix nanoseconds
    end: int
    attrs: Mapping[str, Any] = field(default_factory=dict)
    status: str = "unset"
    kind: int = 0
    events: tuple[SpanEvent, ...] = ()
    links: tuple[tuple[str, str], ...] = ()  # (trace id, span id)
    event: str | None = None  # set: this is one event of the span, at `start`

    @property
    def time(self) -> int:
        return self.start

    @property
    def duration(self) -> float:
        """Seconds (wall clock)."""
        return (self.end - self.start) / 1e9

    def get(self, key: str) -> Any:
        """A field (see FIELDS) or, failing that, an attribute; None when absent."""
        if key in FIELDS:
            return getattr(self, key)
        return self.attrs.get(key)

    def event_items(self, name: str | None = None) -> Iterator["Span"]:
        for ev in self.events:
            if name is None or ev.name == name:
                yield replace(self, start=ev.time, end=ev.time, attrs={**self.attrs, **ev.attrs}, events=(),
                              event=ev.name)

    @property
    def label(self) -> str:
        return f"{self.name} #{self.event}" if self.event else self.name


class SpanSet:
    """Spans with the indexes selectors need (by id, children), in start order."""

    def __init__(self, spans: Iterable[Span] = ()):
        self.spans: list[Span] = sorted(spans, key=lambda s: (s.start, s.span_id))
        self.by_id: dict[tuple[str, str], Span] = {(s.trace_id, s.span_id): s for s in self.spans}
        self.by_name: dict[str, list[Span]] = {}
        for s in self.spans:
            self.by_name.setdefault(s.name, []).append(s)

    def __len__(self) -> int:
        return len(self.spans)

    def __iter__(self) -> Iterator[Span]:
        return iter(self.spans)

    def parent(self, span: Span) -> Span | None:
        return self.by_id.get((span.trace_id, span.parent_id)) if span.parent_id else None

    def ancestors(self, span: Span) -> Iterator[Span]:
        seen = set()
        node = self.parent(span)
        while node is not None and node.span_id not in seen:  # ids are data: never loop forever
            seen.add(node.span_id)
            yield node
            node = self.parent(node)


# ---- RPC attributes under both conventions ----
#
# opentelemetry-instrumentation-grpc 0.66b2 writes the old RPC attributes: rpc.system, rpc.service,
# a short rpc.method and an integer rpc.grpc.status_code. Semantic conventions 1.40+ name them
# rpc.system.name, a fully-qualified rpc.method ("racelab.v1.Authority/ApplyBatch") and
# rpc.response.status_code (by name). Spans are read with both, so an assertion written in either
# convention holds on traces from either instrumentation; `rpc.method` is the qualified name, and a
# condition on it with a bare method name ("ApplyBatch") compares with the method part.

GRPC_CODES = {code.value[0]: code.name for code in grpc.StatusCode}
RPC_METHOD = "rpc.method"


def rpc_conventions(attrs: dict[str, Any]) -> dict[str, Any]:
    system = attrs.get("rpc.system.name", attrs.get("rpc.system"))
    if system is None:
        return attrs
    out = {**attrs, "rpc.system": system, "rpc.system.name": system}
    method, service = attrs.get(RPC_METHOD), attrs.get("rpc.service")
    if isinstance(method, str) and "/" not in method and service:
        out[RPC_METHOD] = f"{service}/{method}"
    elif isinstance(method, str) and "/" in method and not service:
        out["rpc.service"] = method.rpartition("/")[0]
    code = attrs.get("rpc.grpc.status_code")
    name = attrs.get("rpc.response.status_code")
    if isinstance(code, int) and name is None:
        out["rpc.response.status_code"] = GRPC_CODES.get(code, str(code))
    elif isinstance(name, str) and code is None:
        out["rpc.grpc.status_code"] = next((v for v, n in GRPC_CODES.items() if n == name), None)
    return out


def rpc_method_as_written(actual: Any, expected: Any) -> Any:
    """The span's rpc.method in the form a condition names it: qualified, or the bare method."""
    if isinstance(actual, str) and isinstance(expected, str) and "/" not in expected:
        return actual.rpartition("/")[2]
    return actual


# ---- OTLP/JSON (the Collector's file exporter: one ExportTraceServiceRequest per line) ----

def spans_from_otlp(data: Mapping[str, Any]) -> Iterator[Span]:
    """The spans of one OTLP/JSON export request (ids hex, as the file exporter writes them)."""
    for rs in data.get("resourceSpans") or []:
        resource = _attributes(rs.get("resource", {}).get("attributes"))
        service = str(resource.get("service.name", ""))
        instance = str(resource.get("service.instance.id", ""))
        for ss in rs.get("scopeSpans") or []:
            for raw in ss.get("spans") or []:
                yield Span(
                    trace_id=_hex_id(raw.get("traceId", "")), span_id=_hex_id(raw.get("spanId", "")),
                    parent_id=_hex_id(raw.get("parentSpanId", "")), name=raw.get("name", ""),
                    service=service, instance=instance,
                    start=int(raw.get("startTimeUnixNano", 0)), end=int(raw.get("endTimeUnixNano", 0)),
                    attrs=rpc_conventions(_attributes(raw.get("attributes"))),
                    status=_STATUS.get(int(raw.get("status", {}).get("code", 0)), "unset"),
                    kind=int(raw.get("kind", 0)),
                    events=tuple(SpanEvent(e.get("name", ""), int(e.get("timeUnixNano", 0)),
                                           _attributes(e.get("attributes"))) for e in raw.get("events") or []),
                    links=tuple((_hex_id(link.get("traceId", "")), _hex_id(link.get("spanId", "")))
                                for link in raw.get("links") or []))


def spans_from_request(request: Any) -> list[Span]:
    """The spans of a protobuf ExportTraceServiceRequest (what an OTLP/gRPC receiver gets)."""
    data = json_format.MessageToDict(request, use_integers_for_enums=True)
    return list(spans_from_otlp(_ids_to_hex(data)))


def _ids_to_hex(node: Any) -> Any:
    # protobuf JSON writes bytes as base64; OTLP/JSON writes trace and span ids as hex.
    if isinstance(node, dict):
        return {k: base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str)
                else _ids_to_hex(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_ids_to_hex(x) for x in node]
    return node


def _hex_id(value: str) -> str:
    return value.lower()


def _attributes(raw: Any) -> dict[str, Any]:
    return {a["key"]: _value(a.get("value") or {}) for a in raw or [] if "key" in a}


def _value(v: Mapping[str, Any]) -> Any:
    if "stringValue" in v:
        return v["stringValue"]
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "arrayValue" in v:
        return [_value(x) for x in v["arrayValue"].get("values") or []]
    if "kvlistValue" in v:
        return _attributes(v["kvlistValue"].get("values"))
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def read_traces(path: Path) -> SpanSet:
    """Every span of an OTLP/JSON lines file (a run's traces.jsonl, a Collector file exporter's output)."""
    spans: list[Span] = []
    with TraceFile(path) as f:
        for batch in f.read_new(final=True):
            spans.extend(batch)
    return SpanSet(spans)


class TraceFile:
    """Reads an OTLP/JSON lines file, and later whatever has been appended since (for --follow)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self._file = path.open("rb")
        except OSError as exc:
            raise TraceError(f"{path}: cannot read: {exc.strerror}") from None
        self._line = 0
        self._partial = b""

    def __enter__(self) -> "TraceFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def read_new(self, final: bool = False) -> Iterator[list[Span]]:
        """The spans of every complete line appended since the last call.

        A half-written last line waits for the next call, unless `final` (the file is complete).
        """
        for chunk in iter(lambda: self._file.read(1 << 20), b""):
            *lines, self._partial = (self._partial + chunk).split(b"\n")
            for line in lines:
                yield self._parse(line)
        if final and self._partial:
            line, self._partial = self._partial, b""
            yield self._parse(line)

    def _parse(self, line: bytes) -> list[Span]:
        self._line += 1
        if not line.strip():
            return []
        where = f"{self.path}:{self._line}"
        try:
            data = orjson.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TraceError(f"{where}: not OTLP/JSON: {exc}") from None
        if not isinstance(data, dict) or "resourceSpans" not in data:
            raise TraceError(f"{where}: not an OTLP/JSON trace export (no resourceSpans)")
        try:
            return list(spans_from_otlp(data))
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise TraceError(f"{where}: malformed span: {exc!r}") from None
