"""Small synthetic spans for the assertion tests, and their OTLP/JSON form (the Collector file-exporter's)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Iterable

from services.lab.assertions import Span, SpanEvent

_ids = itertools.count(1)
T0 = 1_800_000_000 * 10**9  # an arbitrary wall time, ns


def span(name: str, t: float, *, attrs: dict | None = None, service: str = "racelab-test", instance: str = "t1",
         trace: str | None = None, parent: Span | None = None, duration: float = 0.001,
         events: Iterable[tuple[str, float, dict]] = (), span_id: str | None = None, status: str = "unset") -> Span:
    """A span starting `t` seconds after T0; events as (name, seconds after T0, attributes)."""
    trace_id = trace or (parent.trace_id if parent else f"{next(_ids):032x}")
    return Span(trace_id=trace_id, span_id=span_id or f"{next(_ids):016x}", parent_id=parent.span_id if parent else "",
                name=name, service=service, instance=instance, start=T0 + int(t * 1e9),
                end=T0 + int((t + duration) * 1e9), attrs=dict(attrs or {}), status=status,
                events=tuple(SpanEvent(n, T0 + int(et * 1e9), dict(a)) for n, et, a in events))


def _value(v: Any) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, (list, tuple)):
        return {"arrayValue": {"values": [_value(x) for x in v]}}
    return {"stringValue": str(v)}


def _attrs(attrs: dict) -> list[dict]:
    return [{"key": k, "value": _value(v)} for k, v in attrs.items()]


def otlp_line(spans: Iterable[Span]) -> str:
    """One export request holding `spans`, one resource per (service, instance)."""
    by_resource: dict[tuple[str, str], list[Span]] = {}
    for s in spans:
        by_resource.setdefault((s.service, s.instance), []).append(s)
    codes = {"unset": 0, "ok": 1, "error": 2}
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": _attrs({"service.name": svc, "service.instance.id": inst})},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": [{
            "traceId": s.trace_id, "spanId": s.span_id, **({"parentSpanId": s.parent_id} if s.parent_id else {}),
            "name": s.name, "kind": s.kind, "startTimeUnixNano": str(s.start), "endTimeUnixNano": str(s.end),
            "attributes": _attrs(dict(s.attrs)), "status": {"code": codes[s.status]} if s.status != "unset" else {},
            "events": [{"timeUnixNano": str(e.time), "name": e.name, "attributes": _attrs(dict(e.attrs))}
                       for e in s.events],
        } for s in group]}],
    } for (svc, inst), group in by_resource.items()]}, separators=(",", ":"))


def write_traces(path: Path, spans: Iterable[Span], per_line: int = 50) -> Path:
    spans = list(spans)
    path.write_text("".join(otlp_line(spans[i:i + per_line]) + "\n" for i in range(0, len(spans), per_line)))
    return path
