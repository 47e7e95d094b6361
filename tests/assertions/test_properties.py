"""Property tests of the selector and relation language over generated span sets.

Each property states what a selector or rule must mean in terms a reader can check by hand (set algebra,
brute force over all pairs, the parent chain walked one step at a time), and hypothesis looks for a span set
where the implementation disagrees.
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spanfactory import T0, write_traces

from services.lab.assertions import Span, SpanEvent, SpanSet, Status, parse_spec, read_traces, run_specs
from services.lab.assertions import select as select_spans
from services.lab.assertions.checks import After, Latest, Monotonic
from services.lab.assertions.selector import Context, parse_conditions, parse_selector
from services.lab.assertions.spans import TraceFile

NAMES = ("a", "b", "c")
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def span_sets(draw, max_spans: int = 25) -> SpanSet:
    n = draw(st.integers(0, max_spans))
    spans: list[Span] = []
    for i in range(n):
        parent = draw(st.one_of(st.none(), st.sampled_from(spans))) if spans else None
        attrs = {}
        if draw(st.booleans()):
            attrs["g"] = draw(st.integers(0, 6))
        if draw(st.booleans()):
            attrs["k"] = draw(st.sampled_from(["p", "q"]))
        if draw(st.booleans()):
            attrs["v"] = draw(st.integers(-3, 3))
        start = T0 + draw(st.integers(0, 40)) * 10**9
        events = tuple(SpanEvent(draw(st.sampled_from(["e", "f"])), start + draw(st.integers(0, 5)) * 10**9,
                                 {"g": draw(st.integers(0, 6))})
                       for _ in range(draw(st.integers(0, 2))))
        spans.append(Span(trace_id=parent.trace_id if parent else f"{i:032x}", span_id=f"{i + 1:016x}",
                          parent_id=parent.span_id if parent else "", name=draw(st.sampled_from(NAMES)),
                          service="svc", instance=draw(st.sampled_from(["x", "y"])), start=start,
                          end=start + draw(st.integers(0, 3)) * 10**9, attrs=attrs, events=events))
    return SpanSet(spans)


def ident(s: Span) -> tuple[str, str | None, int]:
    return s.span_id, s.event, s.time


def ids(found) -> set[tuple[str, str | None, int]]:
    return {ident(s) for s in found}


def everything(spans: SpanSet) -> set:
    return ids(spans)


keys = st.sampled_from(["g", "k", "v", "name", "instance"])
values = st.one_of(st.integers(-3, 6), st.sampled_from(["p", "q", "a", "b", "x"]))


@SETTINGS
@given(span_sets(), keys, values, values)
def test_conditions_partition_the_spans(spans, key, v1, v2):
    def sel(cond):
        return ids(select_spans(spans, {"where": {key: cond}}))
    every = everything(spans)
    present = {ident(s) for s in spans if s.get(key) is not None}
    assert sel({"in": [v1, v2]}) == sel(v1) | sel(v2)
    assert sel({"in": [v1]}) | sel({"not_in": [v1]}) == every
    assert not sel({"in": [v1]}) & sel({"not_in": [v1]})
    assert sel({"eq": v1}) | sel({"ne": v1}) == every
    assert sel({"exists": True}) == present and sel({"exists": False}) == every - present
    assert sel({"le": v1}) == sel({"lt": v1}) | (sel({"eq": v1}) & sel({"le": v1}))
    assert sel({"ge": v1, "le": v2}) == sel({"ge": v1}) & sel({"le": v2})  # operators combine with and
    ordered = sel({"lt": v1}) | sel({"ge": v1})  # every present value that orders against v1, once
    assert ordered <= present and not sel({"lt": v1}) & sel({"ge": v1})
    assert ordered == {ident(s) for s in spans if s.get(key) is not None and type(s.get(key)) is type(v1)}


@SETTINGS
@given(span_sets(), st.sampled_from(NAMES), st.sampled_from(NAMES))
def test_selection_is_time_ordered_and_keys_narrow_it(spans, name, other):
    found = select_spans(spans, {"name": name})
    assert [s.time for s in found] == sorted(s.time for s in found)
    assert ids(found) == {(s.span_id, None, s.time) for s in spans if s.name == name}
    assert ids(select_spans(spans, {"name": [name, other]})) == ids(found) | ids(select_spans(spans, {"name": other}))
    both = ids(select_spans(spans, {"name": name, "instance": "x"}))
    assert both == ids(found) & ids(select_spans(spans, {"instance": "x"}))


@SETTINGS
@given(span_sets(), st.sampled_from(["e", "f"]))
def test_event_items_are_the_events_of_matching_spans(spans, event):
    found = select_spans(spans, {"event": event})
    assert [s.time for s in found] == sorted(s.time for s in found)
    expected = sorted((s.span_id, ev.time, sorted({**s.attrs, **ev.attrs}.items()))
                      for s in spans for ev in s.events if ev.name == event)
    assert sorted((s.span_id, s.time, sorted(s.attrs.items())) for s in found) == expected
    assert all(s.event == event and s.start == s.end for s in found)


@SETTINGS
@given(span_sets(), st.sampled_from(NAMES))
def test_parent_and_ancestor_follow_the_parent_chain(spans, name):
    by_id = {s.span_id: s for s in spans}

    def chain(s: Span) -> list[Span]:
        out = []
        while s.parent_id in by_id:
            s = by_id[s.parent_id]
            out.append(s)
        return out
    assert ids(select_spans(spans, {"parent": {"name": name}})) == \
        {(s.span_id, None, s.time) for s in spans if s.parent_id in by_id and by_id[s.parent_id].name == name}
    assert ids(select_spans(spans, {"ancestor": {"name": name}})) == \
        {(s.span_id, None, s.time) for s in spans if any(a.name == name for a in chain(s))}


def _evaluate(rule, spans: SpanSet, selector: dict):
    ctx = Context(spans)
    items = parse_selector(selector, "s").select(ctx)
    return (rule.evaluate(items, ctx) if items else (Status.SKIP, "", [])), items


@SETTINGS
@given(span_sets(), st.booleans(), st.sampled_from(["time", "g"]))
def test_monotonic_fails_exactly_when_some_group_goes_back(spans, strict, order):
    (status, _, findings), _ = _evaluate(Monotonic("v", ("k",), order, strict), spans, {"name": ["a", "b"]})
    groups: dict = {}
    for s in select_spans(spans, {"name": ["a", "b"]}):
        if s.get("v") is not None and s.get(order) is not None:
            groups.setdefault(s.get("k"), []).append(s)
    descents = 0
    for group in groups.values():
        group.sort(key=lambda s: (s.get(order), s.time))
        vals = [s.get("v") for s in group]
        descents += sum((b <= a) if strict else (b < a) for a, b in zip(vals, vals[1:]))
    if not groups:
        assert status is Status.SKIP
    else:
        assert (status is Status.FAIL) == (descents > 0) and len(findings) == descents
        # Every finding is a real pair of the same group whose value went back.
        for f in findings:
            assert f.related.get("k") == f.subject.get("k")
            assert (f.subject.get(order), f.subject.time) >= (f.related.get(order), f.related.time)
            assert f.subject.get("v") <= f.related.get("v") if strict else f.subject.get("v") < f.related.get("v")


@SETTINGS
@given(span_sets())
def test_monotonic_needs_no_sorting_and_no_pairs_for_a_sorted_group(spans):
    # Without `by`, the rule holds iff the values in time order are sorted.
    (status, _, _), items = _evaluate(Monotonic("v"), spans, {"where": {"v": {"exists": True}}})
    if items:
        vals = [s.get("v") for s in sorted(items, key=lambda s: s.time)]
        same_time = len({s.time for s in items}) == len(items)
        if same_time:  # ties in time may be ordered either way
            assert (status is Status.PASS) == (vals == sorted(vals))


@SETTINGS
@given(span_sets())
def test_latest_judges_each_span_against_the_newest_one_at_or_before_it(spans):
    rule = Latest(parse_selector({"name": "b"}, "of"), parse_conditions({"g": {"ne": "$that.g"}}, "e", ("self", "that")),
                  ("k",), "time")
    (status, _, findings), items = _evaluate(rule, spans, {"name": "a"})
    refs = select_spans(spans, {"name": "b"})
    failed = {(f.subject.span_id, f.subject.time): f.related for f in findings}
    judged = 0
    for x in items:
        before = [y for y in refs if y.get("k") == x.get("k") and y.time <= x.time]
        if not before:
            assert (x.span_id, x.time) not in failed
            continue
        judged += 1
        newest = max(y.time for y in before)
        tied = [y for y in before if y.time == newest]
        if (x.span_id, x.time) in failed:
            chosen = failed[(x.span_id, x.time)]
            assert chosen in tied and chosen.get("g") == x.get("g")
        elif len(tied) == 1:
            assert tied[0].get("g") != x.get("g") or x.get("g") is None
    if items:
        assert status is (Status.SKIP if not judged else Status.FAIL if findings else Status.PASS)


@SETTINGS
@given(span_sets())
def test_after_fails_for_exactly_the_spans_before_the_first_reference(spans):
    (status, _, findings), items = _evaluate(After(parse_selector({"name": "b"}, "r")), spans, {"name": "a"})
    refs = select_spans(spans, {"name": "b"})
    if not items:
        return
    if not refs:
        assert status is Status.FAIL
        return
    first = min(y.time for y in refs)
    early = {(x.span_id, x.time) for x in items if x.time < first}
    assert {(f.subject.span_id, f.subject.time) for f in findings} == early
    assert (status is Status.FAIL) == bool(early)


@SETTINGS
@given(span_sets(max_spans=10), st.integers(0, 3), st.integers(0, 3))
def test_count_and_requires(spans, low, extra):
    spec = parse_spec(f"""
checks:
  - {{name: n, select: {{name: a}}, count: {{min: {low}, max: {low + extra}}}}}
  - {{name: none-of-c, requires: {{name: b}}, select: {{name: c}}, each: {{g: 1}}}}
""")
    n_a = sum(s.name == "a" for s in spans)
    by_name = {o.check.name: o for o in run_specs([spec], spans).outcomes}
    assert (by_name["n"].status is Status.PASS) == (low <= n_a <= low + extra)
    has_b, cs = any(s.name == "b" for s in spans), [s for s in spans if s.name == "c"]
    expected = (Status.SKIP if not has_b else Status.PASS if all(s.get("g") == 1 for s in cs) else Status.FAIL)
    assert by_name["none-of-c"].status is expected


@SETTINGS
@given(span_sets(), st.integers(1, 7))
def test_otlp_json_round_trip(tmp_path_factory, spans, per_line):
    path = write_traces(tmp_path_factory.mktemp("t") / "traces.jsonl", spans, per_line)
    assert read_traces(path).spans == spans.spans


@SETTINGS
@given(span_sets(max_spans=12), st.lists(st.integers(1, 400), max_size=6))
def test_a_growing_file_is_read_whole_whatever_the_write_boundaries(tmp_path_factory, spans, cuts):
    data = write_traces(tmp_path_factory.mktemp("t") / "src.jsonl", spans, 3).read_bytes()
    path = tmp_path_factory.mktemp("t") / "traces.jsonl"
    path.write_bytes(b"")
    got: list[Span] = []
    points = sorted({min(c, len(data)) for c in itertools.accumulate(cuts)}) + [len(data)]
    with TraceFile(path) as f:
        done = 0
        for point in points:
            with path.open("ab") as out:
                out.write(data[done:point])
            done = point
            for batch in f.read_new():
                got.extend(batch)
    assert SpanSet(got).spans == spans.spans
