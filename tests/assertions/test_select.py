"""The selector language, case by case: names, fields, attributes, operators, references, events, family, time."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from spanfactory import T0, span

from services.lab.assertions import SpanSet, SpecError, parse_selector, select
from services.lab.assertions.selector import Context


@pytest.fixture
def spans() -> SpanSet:
    run = span("enactor.run", 0, instance="enactor-az1", service="racelab-enactor", duration=10,
               attrs={"racelab.enactor.id": "enactor-az1", "racelab.plan.generation": 111},
               events=[("lock.lost", 1, {"racelab.zone": "a"}), ("lock.lost", 2, {"racelab.zone": "b"}),
                       ("lock.busy", 3, {})])
    flip = span("enactor.batch", 4, parent=run, instance="enactor-az1", service="racelab-enactor", duration=2.5,
                attrs={"racelab.batch.step": "flip", "racelab.plan.generation": 111,
                       "racelab.endpoint.generation.replaced": 145, "racelab.cleanup.deleted_generations": [1, 2]})
    rpc = span("/racelab.v1.RouteControl/ChangeResourceRecordSets", 4.1, parent=flip, service="racelab-enactor")
    apply = span("authority.apply_batch", 4.2, parent=rpc, service="racelab-authority", instance="authority",
                 attrs={"racelab.zone": "a"}, status="error")
    other = span("enactor.batch", 6, instance="enactor-az2", service="racelab-enactor",
                 attrs={"racelab.batch.step": "cleanup", "racelab.plan.generation": 146})
    return SpanSet([run, flip, rpc, apply, other])


def names(found) -> list[str]:
    return [f"{s.instance}:{s.label}" for s in found]


def test_name_service_instance_are_globs_or_lists(spans):
    assert names(select(spans, {"name": "enactor.*"})) == ["enactor-az1:enactor.run", "enactor-az1:enactor.batch",
                                                           "enactor-az2:enactor.batch"]
    assert names(select(spans, {"name": "enactor.batch", "instance": "*az2"})) == ["enactor-az2:enactor.batch"]
    assert len(select(spans, {"service": ["racelab-authority", "nope"]})) == 1
    assert len(select(spans, "authority.apply_batch")) == 1  # a bare string is a name


def test_conditions(spans):
    def n(where):
        return len(select(spans, {"name": "enactor.batch", "where": where}))
    assert n({"racelab.batch.step": "flip"}) == 1
    assert n({"racelab.batch.step": ["flip", "cleanup"]}) == 2  # a list means one of
    assert n({"racelab.plan.generation": {"gt": 111}}) == 1
    assert n({"racelab.plan.generation": {"ge": 111, "lt": 146}}) == 1  # operators combine with and
    assert n({"racelab.cleanup.deleted_generations": {"contains": 2}}) == 1
    assert n({"racelab.batch.step": {"matches": "^cl"}}) == 1
    assert n({"racelab.endpoint.generation.replaced": {"exists": False}}) == 1
    assert n({"racelab.endpoint.generation.replaced": {"ne": 145}}) == 1  # absent is not equal to anything
    assert n({"racelab.endpoint.generation.replaced": {"lt": 1000}}) == 1  # absent is never less or greater
    assert n({"racelab.batch.step": {"not_in": ["flip"]}}) == 1
    assert n({"racelab.batch.step": {"gt": 3}}) == 0  # a string and a number do not order
    assert n({"duration": {"gt": "2s"}}) == 1 and n({"duration": {"lt": 2500}}) == 2  # 2500 seconds
    assert n({"instance": "enactor-az2"}) == 1  # span fields may be conditions too


def test_self_reference_compares_two_values_of_one_span(spans):
    stale = {"name": "enactor.batch", "where": {
        "racelab.plan.generation": {"lt": "$self.racelab.endpoint.generation.replaced"}}}
    assert names(select(spans, stale)) == ["enactor-az1:enactor.batch"]
    assert names(select(spans, {"where": {"name": {"eq": "$$self"}}})) == []  # $$ is a literal $


def test_events_are_points_in_time_with_the_span_attributes_underneath(spans):
    lost = select(spans, {"name": "enactor.run", "event": "lock.lost"})
    assert [s.time for s in lost] == [T0 + 10**9, T0 + 2 * 10**9]
    assert all(s.attrs["racelab.enactor.id"] == "enactor-az1" and s.duration == 0 for s in lost)
    assert [s.attrs["racelab.zone"] for s in lost] == ["a", "b"]
    assert len(select(spans, {"event": "lock.*"})) == 3
    assert len(select(spans, {"event": "lock.lost", "where": {"racelab.zone": "b"}})) == 1


def test_parent_and_ancestor(spans):
    assert names(select(spans, {"parent": {"name": "enactor.run"}})) == ["enactor-az1:enactor.batch"]
    assert names(select(spans, {"ancestor": {"name": "enactor.run"}, "service": "racelab-authority"})) == \
        ["authority:authority.apply_batch"]
    assert select(spans, {"name": "authority.apply_batch", "parent": {"name": "enactor.run"}}) == []


def test_window_in_wall_time_and_references_to_time(spans):
    iso = datetime.fromtimestamp((T0 + 4 * 10**9) / 1e9, timezone.utc).isoformat()
    assert names(select(spans, {"name": "enactor.batch", "window": {"from": iso}})) == \
        ["enactor-az1:enactor.batch", "enactor-az2:enactor.batch"]
    assert names(select(spans, {"name": "enactor.batch", "window": {"until": iso}})) == []
    flip = select(spans, {"name": "enactor.batch"})[0]
    ctx = Context(spans).bind(this=flip)
    later = parse_selector({"where": {"time": {"gt": "$this.time"}, "name": "enactor.batch"}}, "s", ("self", "this"))
    assert names(later.select(ctx)) == ["enactor-az2:enactor.batch"]


def test_pdt_times_need_the_run_clock(spans):
    with pytest.raises(SpecError, match="needs the run's clock"):
        select(spans, {"window": {"from": "23:48 PDT"}})


@pytest.mark.parametrize("raw, message", [
    ({"nme": "x"}, "unknown selector key 'nme'"),
    ({"racelab.zone": "a"}, "go under 'where'"),
    ({"where": {"x": {"bigger": 1}}}, "unknown operator 'bigger'"),
    ({"where": {"x": {"in": 3}}}, "'in' needs a list"),
    ({"where": {"x": "$that.y"}}, "expected $self.KEY here"),
    ({"where": {"x": {"matches": "("}}}, "bad regular expression"),
    ({"where": {"duration": {"gt": "soon"}}}, "not a duration"),
    ({"window": {"from": "yesterday"}}, "not a time"),
    ({"window": {"since": "x"}}, "from: TIME, until: TIME"),
    ({"name": 3}, "expected a name or a list of names"),
    ({"where": {"event": "x"}}, "'event' selects events"),
    ([], "a selector is a mapping"),
])
def test_bad_selectors_say_what_is_wrong(raw, message):
    with pytest.raises(SpecError, match=message.replace("$", r"\$").replace("(", r"\(")):
        parse_selector(raw, "select")


OLD_RPC = {"rpc.system": "grpc", "rpc.service": "racelab.v1.RouteControl", "rpc.method": "ChangeResourceRecordSets",
           "rpc.grpc.status_code": 9}  # opentelemetry-instrumentation-grpc 0.66b2
NEW_RPC = {"rpc.system.name": "grpc", "rpc.method": "racelab.v1.RouteControl/ChangeResourceRecordSets",
           "rpc.response.status_code": "FAILED_PRECONDITION"}  # semantic conventions 1.40+


@pytest.mark.parametrize("where", [
    {"rpc.system": "grpc", "rpc.service": "racelab.v1.RouteControl", "rpc.method": "ChangeResourceRecordSets",
     "rpc.grpc.status_code": 9},
    {"rpc.system.name": "grpc", "rpc.method": "racelab.v1.RouteControl/ChangeResourceRecordSets",
     "rpc.response.status_code": "FAILED_PRECONDITION"},
    {"rpc.method": {"matches": "^racelab\\.v1\\.RouteControl/"}},
])
def test_rpc_attributes_in_either_convention_match_spans_of_either(tmp_path, where):
    """An assertion written with the old RPC attributes or the current ones holds on spans from either
    instrumentation; the span name with or without its leading slash."""
    from spanfactory import otlp_line

    from services.lab.assertions import read_traces
    old = span("/racelab.v1.RouteControl/ChangeResourceRecordSets", 1, attrs=OLD_RPC, instance="old")
    new = span("racelab.v1.RouteControl/ChangeResourceRecordSets", 2, attrs=NEW_RPC, instance="new")
    unrelated = span("/racelab.v1.Planner/GetPlan", 3, instance="other",
                     attrs={**OLD_RPC, "rpc.service": "racelab.v1.Planner", "rpc.method": "GetPlan"})
    path = tmp_path / "traces.jsonl"
    path.write_text(otlp_line([old, new, unrelated]) + "\n")
    loaded = read_traces(path)
    for name in ("/racelab.v1.RouteControl/*", "racelab.v1.RouteControl/*"):
        assert names(select(loaded, {"name": name, "where": where})) == [f"old:{old.name}", f"new:{new.name}"]
