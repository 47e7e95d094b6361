"""Trace-based assertions: state what the spans of a run must (or must not) show.

    from services.lab.assertions import assert_traces, read_traces
    spans = read_traces(Path("runs/x/traces.jsonl"))
    assert_traces("incident", spans)            # a built-in pack, a YAML file, YAML text or a Spec

The language (selectors, rules, relations, chains) is described in
docs/assertions.md; `racelab assert` runs the same specs from the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from services.lab.assertions.checks import Check, Finding, Outcome, Status
from services.lab.assertions.clock import RunClock
from services.lab.assertions.report import Report, render_json, render_text, run_specs
from services.lab.assertions.selector import Context, Selector, SpecError, parse_selector
from services.lab.assertions.spans import Span, SpanEvent, SpanSet, TraceError, read_traces
from services.lab.assertions.spec import Spec, builtin_packs, load_spec, parse_spec

__all__ = ["Check", "Context", "Finding", "Outcome", "Report", "RunClock", "Selector", "Span", "SpanEvent", "SpanSet",
           "Spec", "SpecError", "Status", "TraceError", "assert_traces", "builtin_packs", "load_spec",
           "parse_selector", "parse_spec", "read_traces", "render_json", "render_text", "run_specs", "select",
           "to_spec"]


def to_spec(spec: Spec | str | Path | dict | list) -> Spec:
    """A Spec from a Spec, a pack name or file path, YAML text, or the parsed YAML (dict or list)."""
    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, (dict, list)):
        return parse_spec(yaml.safe_dump(spec), "<spec>")
    if isinstance(spec, str) and "\n" in spec:
        return parse_spec(spec, "<spec>")
    return load_spec(spec)


def select(spans: SpanSet, selector: dict | str, clock: RunClock | None = None) -> list[Span]:
    """The spans (or events) a selector picks, in time order."""
    return parse_selector(selector, "selector").select(Context(spans, clock))


def assert_traces(spec: Any, spans: SpanSet, clock: RunClock | None = None) -> Report:
    """Run a spec over spans; raise AssertionError with the full report if any check fails."""
    report = run_specs([to_spec(spec)], spans, clock)
    if not report.ok:
        raise AssertionError("trace assertions failed:\n" + render_text(report))
    return report
