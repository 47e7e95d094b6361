"""Running specs over spans, and what a person (or a program) reads afterwards."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any, Iterable

from services.lab.assertions.checks import ChainLine, Outcome, Status
from services.lab.assertions.clock import RunClock, format_time
from services.lab.assertions.selector import Context
from services.lab.assertions.spans import FIELDS, Span, SpanSet
from services.lab.assertions.spec import Spec

_WIDTH = 110


@dataclass
class Report:
    outcomes: list[Outcome]
    spans: int
    clock: RunClock | None = None
    first: int | None = None  # earliest span start, ns
    last: int | None = None

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is Status.FAIL]

    @property
    def ok(self) -> bool:
        return not self.failed

    def count(self, status: Status) -> int:
        return sum(o.status is status for o in self.outcomes)


def run_specs(specs: Iterable[Spec], spans: SpanSet, clock: RunClock | None = None,
              only: Iterable[str] = ()) -> Report:
    ctx = Context(spans, clock)
    wanted = set(only)
    outcomes = [check.evaluate(ctx) for spec in specs for check in spec.checks
                if not wanted or check.name in wanted]
    times = [s.start for s in spans]
    return Report(outcomes, len(spans), clock, min(times, default=None), max(times, default=None))


def render_text(report: Report, max_spans: int = 3) -> str:
    clock = report.clock
    span_range = ""
    if report.first is not None:
        span_range = f" ({format_time(report.first, clock)} .. {format_time(report.last, clock)})"
    lines = [f"{len(report.outcomes)} checks over {report.spans} spans{span_range}: "
             f"{report.count(Status.FAIL)} failed, {report.count(Status.PASS)} passed, "
             f"{report.count(Status.SKIP)} skipped", ""]
    for o in report.outcomes:
        lines += _outcome_text(o, clock, max_spans)
    return "\n".join(lines).rstrip() + "\n"


def _outcome_text(o: Outcome, clock: RunClock | None, max_spans: int) -> list[str]:
    check = o.check
    head = f"{o.status.value.upper():<5} {check.name}"
    if o.status is not Status.FAIL:
        return [f"{head}: {o.reason}"]
    out = [f"{head}" + (f" - {check.title}" if check.title else "")]
    if check.explain:
        out += textwrap.wrap(check.explain, _WIDTH, initial_indent="      ", subsequent_indent="      ")
    out.append(f"      {o.reason}")
    keys = check.shown_keys()
    related_keys = tuple(dict.fromkeys(keys + tuple(sorted(check.rule.keys() - set(FIELDS)))))
    for f in o.findings[:max_spans]:
        out.append(f"      {format_time(f.subject.time, clock)}  {f.message or f.subject.label}")
        out += _span_ref(f.subject, keys, " " * 20)
        if f.related is not None:
            out.append(f"{' ' * 20}judged against {f.related.label} at {format_time(f.related.time, clock)}:")
            out += _span_ref(f.related, related_keys, " " * 20)
    if len(o.findings) > max_spans:
        out.append(f"      ... and {len(o.findings) - max_spans} more")
    for key, counts in o.groups.items():
        out.append(f"      by {key}: " + ", ".join(f"{v} ({n})" for v, n in counts.items()))
    if o.chain:
        out.append("      how it came to this (the first violation):")
        out += [line for c in o.chain for line in _chain_text(c, clock)]
    out.append("")
    return out


def _span_ref(span: Span, keys: tuple[str, ...], indent: str) -> list[str]:
    attrs = [f"{k}={_short(span.get(k))}" for k in keys if span.get(k) is not None]
    first = f"{indent}{span.label}  {span.service}/{span.instance}  trace {span.trace_id} span {span.span_id}"
    return [first] + textwrap.wrap("  ".join(attrs), _WIDTH, initial_indent=indent, subsequent_indent=indent,
                                   break_long_words=False, break_on_hyphens=False)


def _chain_text(line: ChainLine, clock: RunClock | None) -> list[str]:
    mark = {"violation": "=> ", "related": "-> "}.get(line.role, "   ")
    s = line.span
    return [f"      {format_time(line.time, clock)}  {s.instance:<12} {mark}{line.text}",
            f"{' ' * 36}({s.label}, trace {s.trace_id} span {s.span_id})"]


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)


def render_json(report: Report, max_spans: int = 50) -> dict[str, Any]:
    clock = report.clock

    def span(s: Span | None) -> dict[str, Any] | None:
        if s is None:
            return None
        return {"trace_id": s.trace_id, "span_id": s.span_id, "name": s.name, "event": s.event,
                "service": s.service, "instance": s.instance, "time": format_time(s.time, clock),
                "time_unix_nano": s.time, "attributes": dict(s.attrs)}

    return {
        "ok": report.ok, "spans": report.spans,
        "checks": [{
            "name": o.check.name, "title": o.check.title, "status": o.status.value, "reason": o.reason,
            "explain": o.check.explain, "violations": len(o.findings),
            "findings": [{"message": f.message, "span": span(f.subject), "related": span(f.related)}
                         for f in o.findings[:max_spans]],
            "groups": o.groups,
            "chain": [{"time": format_time(c.time, clock), "text": c.text, "role": c.role, "span": span(c.span)}
                      for c in o.chain],
        } for o in report.outcomes],
    }
