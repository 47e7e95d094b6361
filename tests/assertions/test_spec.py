"""The YAML spec format: rules, PASS/FAIL/SKIP, templates, chains, reports, and clear errors for bad specs."""

from __future__ import annotations

import json

import pytest
from spanfactory import span

from services.lab.assertions import (SpanSet, SpecError, Status, assert_traces, builtin_packs, load_spec, parse_spec,
                                     render_json, render_text, run_specs)


@pytest.fixture
def spans() -> SpanSet:
    run = span("enactor.run", 0, instance="enactor-az1", duration=9, attrs={"racelab.enactor.id": "enactor-az1",
                                                                          "racelab.plan.generation": 111},
               events=[("lock.lost", 1, {}), ("lock.lost", 2, {})])
    return SpanSet([run,
                    span("flip", 3, parent=run, attrs={"gen": 111, "replaced": 145, "zone": "z"}),
                    span("flip", 4, attrs={"gen": 146, "replaced": 145, "zone": "z"}),
                    span("flip", 5, attrs={"gen": 147, "replaced": 146, "zone": "y"})])


def outcome(spans, check: str):
    return run_specs([parse_spec(check)], spans).outcomes[0]


def test_each_points_at_the_spans_that_break_it_and_says_why_in_words(spans):
    o = outcome(spans, """
- name: no-stale
  select: {name: flip}
  each: {gen: {ge: $self.replaced}}
  say: "{instance} wrote {gen} over {replaced} on {zone}"
  chain:
    - {select: {name: enactor.run, where: {trace_id: $this.trace_id}}, say: "{racelab.enactor.id} took {racelab.plan.generation}"}
    - {select: {name: enactor.run, event: lock.lost}, say: "lost the lock {count} times ({first} .. {last})", pick: count}
""")
    assert o.status is Status.FAIL and len(o.findings) == 1
    assert o.findings[0].message == "t1 wrote 111 over 145 on z"
    story = [line.text for line in o.chain]
    assert story[0] == "enactor-az1 took 111"
    assert story[1].startswith("lost the lock 2 times (") and story[1].endswith(" UTC)")  # no run clock: UTC
    assert o.chain[-1].role == "violation" and story[-1] == "t1 wrote 111 over 145 on z"


def test_rules(spans):
    def status(rule: str) -> Status:
        return outcome(spans, f"- {{name: c, select: {{name: flip}}, {rule}}}").status
    assert status("exists: true") is Status.PASS
    assert status("none: true") is Status.FAIL
    assert status("count: {min: 3, max: 3}") is Status.PASS
    assert status("count: {max: 2}") is Status.FAIL
    assert status("monotonic: {value: gen}") is Status.PASS  # 111, 146, 147 in time order
    assert status("monotonic: {value: gen, order: replaced}") is Status.PASS
    assert status("monotonic: {value: zone}") is Status.FAIL  # z, z, y
    assert status("monotonic: {value: replaced, by: zone}") is Status.PASS
    assert status("monotonic: {value: replaced, strict: true}") is Status.FAIL  # 145 then 145
    assert status("after: {name: enactor.run}") is Status.PASS
    assert status("after: {name: flip, where: {gen: 146}}") is Status.FAIL
    assert status("latest: {of: {name: flip}, by: zone, expect: {gen: {ge: $that.gen}}}") is Status.PASS


def test_an_existence_check_fails_on_nothing_but_a_relation_over_nothing_skips(spans):
    assert outcome(spans, "- {name: c, select: {name: nope}, exists: true}").status is Status.FAIL
    skipped = outcome(spans, "- {name: c, select: {name: nope}, after: {name: flip}}")
    assert skipped.status is Status.SKIP and "nothing to judge" in skipped.reason
    # `requires` says the traces can answer: then selecting nothing means nothing broke.
    assert outcome(spans, "- {name: c, requires: {name: flip}, select: {name: nope}, each: {gen: 1}}").status \
        is Status.PASS
    assert outcome(spans, "- {name: c, requires: {name: nope}, select: {name: flip}, none: true}").status \
        is Status.SKIP
    # An order whose cause never happened fails: the effect came from something else.
    assert outcome(spans, "- {name: c, select: {name: flip}, after: {name: nope}}").status is Status.FAIL


def test_reports(spans):
    spec = parse_spec("""
name: demo
checks:
  - {name: ok, select: {name: flip}, exists: true}
  - {name: bad, title: no flip to 146, explain: plain words., select: {name: flip, where: {gen: 146}}, none: true}
""")
    report = run_specs([spec], spans)
    assert not report.ok and [o.check.name for o in report.failed] == ["bad"]
    text = render_text(report)
    assert text.startswith("2 checks over 4 spans")
    assert "FAIL  bad - no flip to 146" in text and "plain words." in text and "PASS  ok: 3 spans match" in text
    bad_span = report.failed[0].findings[0].subject
    assert f"trace {bad_span.trace_id} span {bad_span.span_id}" in text
    data = json.loads(json.dumps(render_json(report)))
    assert data["ok"] is False and data["checks"][1]["findings"][0]["span"]["span_id"] == bad_span.span_id
    with pytest.raises(AssertionError, match="FAIL  bad"):
        assert_traces(spec, spans)
    assert assert_traces({"checks": [{"name": "ok", "select": {"name": "flip"}, "exists": True}]}, spans).ok


def test_builtin_pack_loads():
    assert "incident" in builtin_packs()
    assert {c.name for c in load_spec("incident").checks} >= {"stale-apply", "active-tree-deleted", "endpoint-empty",
                                                              "enactors-stuck", "leases-expire-after-state-checks-fail"}


@pytest.mark.parametrize("text, message", [
    ("checks: []", "non-empty 'checks'"),
    ("- {select: {name: a}, exists: true}", "needs a name"),
    ("- {name: x, select: {name: a}}", "exactly one of"),
    ("- {name: x, select: {name: a}, exists: true, none: true}", "exactly one of"),
    ("- {name: x, exists: true}", "needs 'select'"),
    ("- {name: x, select: {name: a}, exists: yes please}", "write 'exists: true'"),
    ("- {name: x, select: {name: a}, count: {min: -1}}", "whole numbers"),
    ("- {name: x, select: {name: a}, monotonic: {by: z}}", "needs 'value'"),
    ("- {name: x, select: {name: a}, latest: {of: {name: b}}}", "needs 'of'"),
    ("- {name: x, select: {name: a}, each: {g: $that.g}}", "expected $self.KEY, $this.KEY here"),
    ("- {name: x, select: {name: a}, exists: true, chain: [{select: {name: b}}]}", "say: TEXT"),
    ("- {name: x, select: {name: a}, exists: true, chain: [{select: {name: b}, say: s, pick: best}]}", "pick"),
    ("- {name: x, select: {name: a}, exists: true, colour: red}", "unknown key 'colour'"),
    ("- {name: x, select: {name: a}, exists: true}\n- {name: x, select: {name: b}, exists: true}", "two checks"),
    ("checks: [\n", "not YAML"),
])
def test_bad_specs_say_where_and_why(text, message):
    with pytest.raises(SpecError, match=message.replace("$", r"\$")):
        parse_spec(text, "my.yaml")


def test_unknown_spec_name():
    with pytest.raises(SpecError, match="not a built-in pack"):
        load_spec("no-such-pack")


@pytest.mark.parametrize("doc", ["docs/assertions.md", "README.md"])
def test_the_specs_in_the_docs_parse(doc):
    import re
    from pathlib import Path
    text = (Path(__file__).parents[2] / doc).read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "checks:" in b]
    assert blocks
    for block in blocks:
        assert parse_spec(block, doc).checks


def test_values_that_do_not_order_are_a_clear_error():
    mixed = SpanSet([span("x", 0, attrs={"v": 1, "o": 1}), span("x", 1, attrs={"v": "one", "o": "b"})])
    with pytest.raises(SpecError, match="do not order"):
        run_specs([parse_spec("- {name: c, select: {name: x}, monotonic: {value: v}}")], mixed)
    with pytest.raises(SpecError, match="o has values that do not order"):
        run_specs([parse_spec("- {name: c, select: {name: x}, monotonic: {value: v, order: o}}")], mixed)
