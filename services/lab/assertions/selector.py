"""The selector language: which spans (or span events) a check is about.

A selector is a YAML mapping; every key narrows the selection:

    name: enactor.batch            # glob, or a list of globs (any of them)
    service: racelab-enactor       # resource service.name (glob)
    instance: enactor-az*          # resource service.instance.id (glob)
    event: lock.lost               # select this event of the spans, each a point in time
    where:                         # conditions on attributes or span fields
      racelab.batch.step: flip                        # equal
      racelab.batch.result: [rejected, lock_lost]     # one of
      racelab.plan.generation: {lt: $self.racelab.endpoint.generation.replaced}
      duration: {gt: 2s}
    parent: {name: enactor.run}    # the parent span matches this selector
    ancestor: {name: enactor.run}  # some ancestor span matches it
    window: {from: "23:48 PDT", until: "02:25 PDT"}   # time (start, or the event's time)

Condition operators: eq ne lt le gt ge in not_in contains matches exists. A value
`$self.KEY` is the candidate's own field or attribute, `$this.KEY` the span a
check is looking at, `$that.KEY` the span related to it (in relations and chains).
An absent attribute is never equal, less or greater than anything (so `ne` and
`not_in` hold for it); `exists: false` selects spans without it.
"""

from __future__ import annotations

import fnmatch
import functools
import itertools
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping

import yaml

from services.lab.assertions.clock import RunClock, TimeError, is_pdt, parse_duration, parse_time
from services.lab.assertions.spans import FIELDS, RPC_METHOD, Span, SpanSet, rpc_method_as_written

_TIME_FIELDS = ("start", "end", "time")
_GLOB_KEYS = ("name", "service", "instance", "event")
_SELECTOR_KEYS = (*_GLOB_KEYS, "where", "parent", "ancestor", "window")


class SpecError(ValueError):
    """A spec that cannot be used; the message says where and why."""


@dataclass
class Context:
    """What a selector is evaluated against: the spans, the run's clock, and the spans bound to names."""

    spans: SpanSet
    clock: RunClock | None = None
    env: Mapping[str, Span] = field(default_factory=dict)

    def bind(self, **names: Span | None) -> "Context":
        return Context(self.spans, self.clock, {**self.env, **{k: v for k, v in names.items() if v is not None}})


@dataclass(frozen=True)
class Ref:
    """`$this.racelab.zone`: a field or attribute of a bound span."""

    binding: str
    key: str

    def resolve(self, ctx: Context, candidate: Span) -> Any:
        span = candidate if self.binding == "self" else ctx.env.get(self.binding)
        return None if span is None else span.get(self.key)

    def __str__(self) -> str:
        return f"${self.binding}.{self.key}"


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def check(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return False
        try:
            return op(a, b)
        except TypeError:  # e.g. a number against a string: not comparable, so not ordered
            return False
    return check


def _contains(a: Any, b: Any) -> bool:
    if isinstance(a, str):
        return isinstance(b, str) and b in a
    return isinstance(a, (list, tuple)) and b in a


def _matches(a: Any, b: Any) -> bool:
    return isinstance(a, str) and re.search(b, a) is not None


def _in(a: Any, b: Any) -> bool:
    return a is not None and isinstance(b, (list, tuple)) and a in b


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a is not None and a == b,
    "ne": lambda a, b: a != b,
    "lt": _compare(lambda a, b: a < b), "le": _compare(lambda a, b: a <= b),
    "gt": _compare(lambda a, b: a > b), "ge": _compare(lambda a, b: a >= b),
    "in": _in, "not_in": lambda a, b: not _in(a, b),
    "contains": _contains, "matches": _matches,
    "exists": lambda a, b: (a is not None) == bool(b),
}


@dataclass(frozen=True)
class Condition:
    """One key (field or attribute; of the candidate, or of a bound span) against an operator and a value."""

    key: str
    op: str
    value: Any  # a literal, a Ref, or for time fields an unparsed time string
    of: Ref | None = None  # the key is `$that.KEY`: look at the bound span, not the candidate

    def holds(self, span: Span, ctx: Context) -> bool:
        value = self.value
        if isinstance(value, Ref):
            value = value.resolve(ctx, span)
        elif isinstance(value, str) and self.key in _TIME_FIELDS:
            value = _time(value, ctx.clock)
        actual = self.of.resolve(ctx, span) if self.of is not None else span.get(self.key)
        if self.key == RPC_METHOD:
            actual = rpc_method_as_written(actual, value)
        return _OPS[self.op](actual, value)

    def __str__(self) -> str:
        return f"{self.of or self.key} {self.op} {self.value}"


@functools.lru_cache(maxsize=256)
def _time(text: str, clock: RunClock | None) -> int:
    try:
        return parse_time(text, clock)
    except TimeError as exc:
        raise SpecError(str(exc)) from None


def parse_conditions(raw: Any, where: str, bindings: Iterable[str]) -> tuple[Condition, ...]:
    """`{key: value-or-{op: value}}` -> conditions; a bare value means eq, a bare list means in."""
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping of conditions, got {_show(raw)}")
    out = []
    for key, spec in raw.items():
        key = str(key)
        if key == "event":
            raise SpecError(f"{where}: 'event' selects events; put it beside 'where', not in it")
        of = None
        if key.startswith("$"):
            of = _ref(key, f"{where}.{key}", tuple(bindings))
            key = of.key
        if isinstance(spec, dict):
            if not spec:
                raise SpecError(f"{where}.{key}: empty condition")
            items = list(spec.items())
        elif isinstance(spec, list):
            items = [("in", spec)]
        else:
            items = [("eq", spec)]
        for op, value in items:
            if op not in _OPS:
                raise SpecError(f"{where}.{key}: unknown operator {op!r} (one of {', '.join(_OPS)})")
            out.append(Condition(key, op, _value(value, key, op, f"{where}.{key}", tuple(bindings)), of))
    return tuple(out)


def _ref(text: str, where: str, bindings: tuple[str, ...]) -> Ref:
    binding, _, key = text[1:].partition(".")
    if binding not in bindings or not key:
        raise SpecError(f"{where}: {text!r}: expected ${'.KEY, $'.join(bindings)}.KEY here")
    return Ref(binding, key)


def _value(value: Any, key: str, op: str, where: str, bindings: tuple[str, ...]) -> Any:
    if isinstance(value, str) and value.startswith("$") and not value.startswith("$$"):
        return _ref(value, where, bindings)
    if isinstance(value, str) and value.startswith("$$"):
        return value[1:]
    if op == "matches":
        try:
            re.compile(str(value))
        except re.error as exc:
            raise SpecError(f"{where}: bad regular expression {value!r}: {exc}") from None
        return str(value)
    if op in ("in", "not_in") and not isinstance(value, list):
        raise SpecError(f"{where}: '{op}' needs a list, got {_show(value)}")
    if key == "duration":
        try:
            return parse_duration(value)
        except TimeError as exc:
            raise SpecError(f"{where}: {exc}") from None
    if key in _TIME_FIELDS and not isinstance(value, (str, int)):
        raise SpecError(f"{where}: expected a time ('02:25 PDT', ISO 8601) or $ reference, got {_show(value)}")
    if key in _TIME_FIELDS and isinstance(value, str) and not is_pdt(value):  # PDT waits for the run's clock
        try:
            parse_time(value, None)
        except TimeError as exc:
            raise SpecError(f"{where}: {exc}") from None
    return value


@dataclass(frozen=True)
class Selector:
    names: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    instances: tuple[str, ...] = ()
    events: tuple[str, ...] = ()  # set: select events, not spans
    conditions: tuple[Condition, ...] = ()
    parent: "Selector | None" = None
    ancestor: "Selector | None" = None
    text: str = ""  # the selector as written, for messages

    def candidates(self, ctx: Context) -> Iterator[Span]:
        spans: Iterable[Span] = ctx.spans
        if self.names and not any(ch in n for n in self.names for ch in "*?["):  # exact names: look them up
            spans = itertools.chain.from_iterable(ctx.spans.by_name.get(n, ()) for n in dict.fromkeys(self.names))
        for span in spans:
            if not self._span_matches(span):
                continue
            if self.events:
                for item in span.event_items():
                    if _glob(item.event or "", self.events):
                        yield item
            else:
                yield span

    def select(self, ctx: Context) -> list[Span]:
        """Every matching span or event, in time order."""
        found = [s for s in self.candidates(ctx) if self._rest_matches(s, ctx)]
        found.sort(key=lambda s: (s.time, s.span_id))
        return found

    def matches(self, span: Span, ctx: Context) -> bool:
        if span.event is not None:
            if not self.events or not _glob(span.event, self.events):
                return False
        elif self.events:
            return False
        return self._span_matches(span) and self._rest_matches(span, ctx)

    def _span_matches(self, span: Span) -> bool:
        name_matches = _glob(span.name, self.names) or (  # an RPC span: "/pkg.Service/Method" (old) or without "/"
            "rpc.system" in span.attrs and _glob("/" + span.name.lstrip("/"), self.names) or
            "rpc.system" in span.attrs and _glob(span.name.lstrip("/"), self.names))
        return name_matches and _glob(span.service, self.services) and _glob(span.instance, self.instances)

    def _rest_matches(self, span: Span, ctx: Context) -> bool:
        if not all(c.holds(span, ctx) for c in self.conditions):
            return False
        if self.parent is not None:
            parent = ctx.spans.parent(span)
            if parent is None or not self.parent.matches(parent, ctx):
                return False
        if self.ancestor is not None:
            if not any(self.ancestor.matches(a, ctx) for a in ctx.spans.ancestors(span)):
                return False
        return True

    def references(self) -> set[str]:
        """Attribute keys this selector looks at (what a report shows of a span)."""
        keys = {c.key for c in self.conditions if c.key not in FIELDS}
        keys |= {c.value.key for c in self.conditions if isinstance(c.value, Ref) and c.value.key not in FIELDS}
        return keys

    def __str__(self) -> str:
        return self.text


def _glob(value: str, patterns: tuple[str, ...]) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(value, p) for p in patterns)


def parse_selector(raw: Any, where: str, bindings: Iterable[str] = ("self",)) -> Selector:
    bindings = tuple(bindings)
    if isinstance(raw, str):  # a bare name
        raw = {"name": raw}
    if not isinstance(raw, dict) or not raw:
        raise SpecError(f"{where}: a selector is a mapping (name, service, instance, event, where, parent, "
                        f"ancestor, window), got {_show(raw)}")
    unknown = [k for k in raw if k not in _SELECTOR_KEYS]
    if unknown:
        hint = " (attribute and field conditions go under 'where')" if any("." in str(k) or k in FIELDS
                                                                          for k in unknown) else ""
        raise SpecError(f"{where}: unknown selector key {unknown[0]!r}{hint}; known: {', '.join(_SELECTOR_KEYS)}")
    globs = {}
    for key in _GLOB_KEYS:
        value = raw.get(key)
        if value is None:
            globs[key] = ()
        elif isinstance(value, str):
            globs[key] = (value,)
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            globs[key] = tuple(value)
        else:
            raise SpecError(f"{where}.{key}: expected a name or a list of names, got {_show(value)}")
    conditions = parse_conditions(raw.get("where", {}), f"{where}.where", bindings)
    if "window" in raw:
        conditions += _window(raw["window"], f"{where}.window", bindings)
    parent = parse_selector(raw["parent"], f"{where}.parent", bindings) if "parent" in raw else None
    ancestor = parse_selector(raw["ancestor"], f"{where}.ancestor", bindings) if "ancestor" in raw else None
    return Selector(globs["name"], globs["service"], globs["instance"], globs["event"], conditions, parent, ancestor,
                    _show(raw))


def _window(raw: Any, where: str, bindings: tuple[str, ...]) -> tuple[Condition, ...]:
    if not isinstance(raw, dict) or not raw or set(raw) - {"from", "until"}:
        raise SpecError(f"{where}: expected {{from: TIME, until: TIME}} (either may be left out)")
    out = []
    for key, op in (("from", "ge"), ("until", "lt")):
        if key in raw:
            out.append(Condition("time", op, _value(raw[key], "time", op, f"{where}.{key}", bindings)))
    return tuple(out)


def _show(raw: Any) -> str:
    return yaml.safe_dump(raw, default_flow_style=True, width=10**6).strip()
