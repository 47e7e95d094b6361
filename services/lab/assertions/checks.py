"""Checks: what must hold of the selected spans, and what a failure points at.

Each check selects spans, applies one rule, and ends PASS, FAIL or SKIP:

    count / exists / none   how many spans match (exists: at least one, none: zero)
    each                    every selected span meets conditions
    monotonic               per group, a value never decreases in some order (a relation over pairs)
    latest                  each span against the latest span of another selection at or before it
    after                   every selected span at or after the first span of another selection

SKIP means the traces cannot say: nothing matched `requires`, or a relation or an
order had no spans to look at. An existence check that finds nothing FAILS.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from services.lab.assertions.clock import format_time
from services.lab.assertions.selector import Condition, Context, Selector, SpecError
from services.lab.assertions.spans import FIELDS, Span


class Status(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Finding:
    """One violation: the span that breaks the rule, and the span it is judged against."""

    subject: Span
    related: Span | None = None
    message: str = ""


@dataclass(frozen=True)
class ChainLine:
    time: int
    span: Span
    text: str
    role: str = ""  # "violation" or "related" for the finding's own spans


@dataclass
class Outcome:
    check: "Check"
    status: Status
    reason: str
    findings: list[Finding] = field(default_factory=list)
    chain: list[ChainLine] = field(default_factory=list)
    groups: dict[str, dict[str, int]] = field(default_factory=dict)  # summarize key -> value -> count


_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True)
class Template:
    """Plain words with {KEY} (the span's field or attribute), {this.KEY}, {that.KEY}, {count}, {first}, {last}."""

    text: str

    @classmethod
    def parse(cls, text: Any, where: str) -> "Template":
        if not isinstance(text, str):
            raise SpecError(f"{where}: expected text, got {text!r}")
        return cls(" ".join(text.split()))

    def render(self, span: Span, ctx: Context, extra: dict[str, str] | None = None) -> str:
        def one(m: re.Match) -> str:
            key = m.group(1)
            if extra and key in extra:
                return extra[key]
            binding, dot, rest = key.partition(".")
            target = span
            if dot and binding in ("this", "that", "self"):
                target, key = (span if binding == "self" else ctx.env.get(binding)), rest
            if target is None:
                return "?"
            value = target.get(key)
            if key in ("start", "end", "time") and value is not None:
                return format_time(value, ctx.clock)
            return _text(value)
        return _PLACEHOLDER.sub(one, self.text)


def _text(value: Any) -> str:
    if value is None:
        return "?"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return str(value)


class Rule(Protocol):
    """Judges the selected spans (never empty: a check with nothing selected does not ask its rule)."""

    def evaluate(self, items: list[Span], ctx: Context) -> tuple[Status, str, list[Finding]]: ...
    def keys(self) -> set[str]: ...


def _noun(n: int) -> str:
    return f"{n} span{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class Count:
    min: int | None = None
    max: int | None = None

    def evaluate(self, items: list[Span], ctx: Context) -> tuple[Status, str, list[Finding]]:
        n = len(items)
        if self.min is not None and n < self.min:
            return Status.FAIL, f"{_noun(n)} match, expected at least {self.min}", []
        if self.max is not None and n > self.max:
            expected = "none" if self.max == 0 else f"at most {self.max}"
            return Status.FAIL, f"{_noun(n)} match, expected {expected}", [Finding(s) for s in items]
        return Status.PASS, f"{_noun(n)} match", []

    def keys(self) -> set[str]:
        return set()


@dataclass(frozen=True)
class Each:
    conditions: tuple[Condition, ...]

    def evaluate(self, items: list[Span], ctx: Context) -> tuple[Status, str, list[Finding]]:
        bad = [Finding(s) for s in items if not all(c.holds(s, ctx.bind(this=s)) for c in self.conditions)]
        if bad:
            return Status.FAIL, f"{len(bad)} of {_noun(len(items))} break: {', '.join(map(str, self.conditions))}", bad
        return Status.PASS, f"all {_noun(len(items))} meet: {', '.join(map(str, self.conditions))}", []

    def keys(self) -> set[str]:
        return {c.key for c in self.conditions}


def _group_key(span: Span, by: tuple[str, ...]) -> tuple:
    return tuple(_hashable(span.get(k)) for k in by)


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _sort(spans: list[Span], order: str) -> None:
    """In `order` (a field or attribute), then by time: ties keep the order they happened in."""
    try:
        spans.sort(key=lambda s: (s.get(order), s.time))
    except TypeError:
        raise SpecError(f"{order} has values that do not order: "
                        f"{sorted({type(s.get(order)).__name__ for s in spans})}") from None


@dataclass(frozen=True)
class Monotonic:
    """Per group (`by`), `value` never decreases (strict: always increases) in `order`."""

    value: str
    by: tuple[str, ...] = ()
    order: str = "time"
    strict: bool = False

    def evaluate(self, items: list[Span], ctx: Context) -> tuple[Status, str, list[Finding]]:
        groups: dict[tuple, list[Span]] = {}
        for s in items:
            if s.get(self.value) is not None and s.get(self.order) is not None:
                groups.setdefault(_group_key(s, self.by), []).append(s)
        if not groups:
            return Status.SKIP, f"no spans with {self.value} and {self.order}", []
        bad = []
        for spans in groups.values():
            _sort(spans, self.order)
            for before, after in zip(spans, spans[1:]):
                a, b = before.get(self.value), after.get(self.value)
                try:
                    broken = b <= a if self.strict else b < a
                except TypeError:
                    raise SpecError(f"monotonic: {self.value} has values that do not order: {a!r}, {b!r}") from None
                if broken:
                    bad.append(Finding(after, before))
        bad.sort(key=lambda f: f.subject.time)
        word = "increases" if self.strict else "never decreases"
        per = f" per {', '.join(self.by)}" if self.by else ""
        n = sum(len(g) for g in groups.values())
        if bad:
            return Status.FAIL, f"{len(bad)} times {self.value} went back{per} (in {self.order} order)", bad
        return Status.PASS, f"{self.value} {word}{per} over {_noun(n)} in {len(groups)} groups", []

    def keys(self) -> set[str]:
        return {self.value, *self.by}


@dataclass(frozen=True)
class Latest:
    """Each selected span against the latest `of` span at or before it (same `by` values, in `order`)."""

    of: Selector
    expect: tuple[Condition, ...]
    by: tuple[str, ...] = ()
    order: str = "time"

    def evaluate(self, items: list[Span], ctx: Context) -> tuple[Status, str, list[Finding]]:
        index: dict[tuple, tuple[list, list[Span]]] = {}  # per group: order keys, spans, both in order
        for s in self.of.select(ctx):
            if s.get(self.order) is not None:
                index.setdefault(_group_key(s, self.by), ([], []))[1].append(s)
        for orders, spans in index.values():
            _sort(spans, self.order)
            orders.extend(s.get(self.order) for s in spans)
        bad, judged = [], 0
        for s in items:
            key = s.get(self.order)
            orders, spans = index.get(_group_key(s, self.by), ([], []))
            try:
                at = bisect.bisect_right(orders, key) if key is not None else 0
            except TypeError:
                raise SpecError(f"latest: {self.order} has values that do not order: {key!r}") from None
            if at == 0:
                continue  # nothing to judge it against
            judged += 1
            latest = spans[at - 1]
            if not all(c.holds(s, ctx.bind(this=s, that=latest)) for c in self.expect):
                bad.append(Finding(s, latest))
        if not judged:
            return Status.SKIP, f"none of {_noun(len(items))} has a span of {self.of} at or before it", []
        if bad:
            return Status.FAIL, f"{len(bad)} of {judged} break: {', '.join(map(str, self.expect))}", bad
        return Status.PASS, f"all {judged} meet: {', '.join(map(str, self.expect))}", []

    def keys(self) -> set[str]:
        return {*self.by, *(c.key for c in self.expect)} | self.of.references()


@dataclass(frozen=True)
class After:
    """Every selected span starts at or after the first span of `reference`."""

    reference: Selector

    def evaluate(self, items: list[Span], ctx: Context) -> tuple[Status, str, list[Finding]]:
        refs = self.reference.select(ctx)
        if not refs:
            return Status.FAIL, f"{_noun(len(items))} match, but nothing like {self.reference} ever happened", \
                [Finding(items[0])]
        first = refs[0]
        early = [Finding(s, first) for s in items if s.time < first.time]
        if early:
            return Status.FAIL, f"{len(early)} of {_noun(len(items))} came before the first {first.label}", early
        return Status.PASS, f"all {_noun(len(items))} at or after the first {first.label} " \
            f"({format_time(first.time, ctx.clock)})", []

    def keys(self) -> set[str]:
        return self.reference.references()


@dataclass(frozen=True)
class ChainStep:
    """One kind of event in the story that led to a violation (no selector: the related span itself)."""

    select: Selector | None
    say: Template
    pick: str = "first"  # first | last | all | count

    def lines(self, ctx: Context, limit: int) -> list[ChainLine]:
        if self.select is None:
            that = ctx.env.get("that")
            return [ChainLine(that.time, that, self.say.render(that, ctx), "related")] if that else []
        found = self.select.select(ctx)
        if not found:
            return []
        if self.pick == "count":
            extra = {"count": str(len(found)), "first": format_time(found[0].time, ctx.clock),
                     "last": format_time(found[-1].time, ctx.clock)}
            return [ChainLine(found[0].time, found[0], self.say.render(found[0], ctx, extra))]
        chosen = {"first": found[:1], "last": found[-1:], "all": found[:limit]}[self.pick]
        return [ChainLine(s.time, s, self.say.render(s, ctx)) for s in chosen]


@dataclass(frozen=True)
class Check:
    name: str
    select: Selector
    rule: Rule
    title: str = ""
    explain: str = ""
    requires: Selector | None = None
    say: Template | None = None
    chain: tuple[ChainStep, ...] = ()
    show: tuple[str, ...] = ()
    summarize: tuple[str, ...] = ()

    def evaluate(self, ctx: Context, chain_limit: int = 5) -> Outcome:
        if self.requires is not None and not self.requires.select(ctx):
            return Outcome(self, Status.SKIP, f"no spans like {self.requires} in these traces")
        items = self.select.select(ctx)
        if not items and not isinstance(self.rule, Count):
            if self.requires is not None:  # the traces can say, and nothing was selected: nothing broke
                return Outcome(self, Status.PASS, f"no spans like {self.select}")
            return Outcome(self, Status.SKIP, f"no spans like {self.select}: nothing to judge")
        status, reason, findings = self.rule.evaluate(items, ctx)
        if self.say is not None:
            findings = [Finding(f.subject, f.related, self.say.render(f.subject, ctx.bind(this=f.subject,
                                                                                            that=f.related)))
                        for f in findings]
        outcome = Outcome(self, status, reason, findings)
        if findings:
            outcome.groups = {k: _counts(f.subject.get(k) for f in findings) for k in self.summarize}
            outcome.chain = self._chain(findings[0], ctx, chain_limit)
        return outcome

    def _chain(self, finding: Finding, ctx: Context, limit: int) -> list[ChainLine]:
        if not self.chain:
            return []
        bound = ctx.bind(this=finding.subject, that=finding.related)
        lines = [line for step in self.chain for line in step.lines(bound, limit)]
        lines.append(ChainLine(finding.subject.time, finding.subject, finding.message or finding.subject.label,
                               "violation"))
        lines.sort(key=lambda line: line.time)
        return lines

    def shown_keys(self) -> tuple[str, ...]:
        """The attributes a report prints with each span: `show`, else what the check looks at."""
        if self.show:
            return self.show
        keys = self.select.references() | {k for k in self.rule.keys() if k not in FIELDS}
        return tuple(sorted(keys))


def _counts(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[_text(v)] = out.get(_text(v), 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))
