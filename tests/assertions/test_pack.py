"""The built-in incident pack over small synthetic runs shaped like the replica's spans.

(tests/assertions/test_live_pack.py runs it over real runs of the replica.)
"""

from __future__ import annotations

import pytest
from spanfactory import span

from services.lab.assertions import SpanSet, Status, load_spec, render_text, run_specs

ZONE = "dynamodb.us-east-1.amazonaws.com"


def apply_batch(t, version, comment, before, after, *, events=(), trace=None, result="committed"):
    attrs = {"racelab.zone": ZONE, "racelab.batch.comment": comment, "racelab.batch.result": result}
    if result == "committed":
        attrs |= {"racelab.zone.version": version, "racelab.endpoint": ZONE,
                  "racelab.endpoint.generation.before": before, "racelab.endpoint.generation.after": after}
    return span("authority.apply_batch", t, attrs=attrs, service="racelab-authority", instance="authority",
                trace=trace, events=events)


def flipped(t, tree, gen, prev_gen):
    return ("alias.flipped", t, {"racelab.endpoint": ZONE, "racelab.alias": ZONE, "racelab.tree.id": tree,
                                 "racelab.plan.generation": gen, "racelab.plan.previous_generation": prev_gen})


def race(fixed: bool) -> SpanSet:
    """az1 takes 111, loses the lock, and writes it over az2's 115; az2's clean-up deletes tree 111."""
    run1 = span("enactor.run", 10, instance="enactor-az1", service="racelab-enactor", duration=50,
                attrs={"racelab.enactor.id": "enactor-az1", "racelab.plan.generation": 111,
                       "racelab.plan.previous_generation": 110},
                events=[("lock.lost", 12 + i, {"racelab.zone": ZONE}) for i in range(3)])
    run2 = span("enactor.run", 20, instance="enactor-az2", service="racelab-enactor", duration=30,
                attrs={"racelab.enactor.id": "enactor-az2", "racelab.plan.generation": 115,
                       "racelab.plan.previous_generation": 110})
    spans = [run1, run2, span("planner.publish", 9, attrs={"racelab.plan.generation": 111}),
             span("planner.publish", 19, attrs={"racelab.plan.generation": 115}),
             apply_batch(21, 1, "enactor-az2 install generation 115", 110, 110, trace=run2.trace_id),
             apply_batch(22, 2, "enactor-az2 flip generation 115", 110, 115, trace=run2.trace_id,
                         events=[flipped(22.5, "t115", 115, 110)]),
             span("enactor.batch", 22, instance="enactor-az2", service="racelab-enactor", trace=run2.trace_id,
                  attrs={"racelab.enactor.id": "enactor-az2", "racelab.zone": ZONE, "racelab.batch.step": "flip",
                         "racelab.batch.result": "committed", "racelab.plan.generation": 115}),
             span("dns.lookup", 23, instance="workload", attrs={"dns.question.name": ZONE, "racelab.dns.cache": "miss",
                                                               "racelab.dns.answer_count": 1})]
    if fixed:  # fencing: the stale flip is rejected; clean-up deletes only old trees
        spans += [apply_batch(30, 0, "enactor-az1 flip generation 111", 0, 0, trace=run1.trace_id, result="rejected"),
                  apply_batch(31, 3, "enactor-az2 cleanup generation 115", 115, 115, trace=run2.trace_id,
                              events=[("tree.deleted", 31.5, {"racelab.tree.id": "t110", "racelab.plan.generation": 110})])]
        return SpanSet(spans)
    spans += [
        apply_batch(30, 3, "enactor-az1 flip generation 111", 115, 111, trace=run1.trace_id,
                    events=[flipped(30.5, "t111", 111, 115)]),
        apply_batch(31, 4, "enactor-az2 cleanup generation 115", 111, -1, trace=run2.trace_id,
                    events=[("tree.deleted", 31.5, {"racelab.tree.id": "t110", "racelab.plan.generation": 110}),
                            ("tree.deleted", 31.6, {"racelab.tree.id": "t111", "racelab.plan.generation": 111})]),
        span("dns.lookup", 33, instance="workload", attrs={"dns.question.name": ZONE, "dns.question.type": "A",
                                                          "racelab.dns.cache": "miss", "racelab.dns.answer_count": 0,
                                                          "error.type": "NODATA"}),
        span("client.request", 33, instance="workload", attrs={"racelab.client.outcome": "dns_nodata",
                                                              "racelab.endpoint": ZONE}),
        apply_batch(40, 5, "enactor-az3 install generation 116", -1, -1),
        span("enactor.batch", 41, instance="enactor-az3", service="racelab-enactor",
             attrs={"racelab.enactor.id": "enactor-az3", "racelab.zone": ZONE, "racelab.endpoint": ZONE,
                    "racelab.batch.step": "flip", "racelab.batch.result": "rejected",
                    "racelab.plan.generation": 116, "error.type": "ALIAS_TARGET_MISSING"}),
        span("operator.restore", 60, instance="director", attrs={"racelab.zone": ZONE, "racelab.endpoint": ZONE,
                                                                "racelab.batch.result": "committed",
                                                                "racelab.plan.generation": 117}),
    ]
    return SpanSet(spans)


@pytest.fixture(scope="module")
def pack():
    return load_spec("incident")


def outcomes(pack, spans):
    return {o.check.name: o for o in run_specs([pack], spans).outcomes}


def test_as_in_2025_every_race_check_fails_on_the_spans_that_prove_it(pack):
    spans = race(fixed=False)
    got = outcomes(pack, spans)
    stale = got["stale-apply"]
    assert stale.status is Status.FAIL and len(stale.findings) == 1
    assert stale.findings[0].subject.attrs["racelab.batch.comment"] == "enactor-az1 flip generation 111"
    assert stale.findings[0].related.attrs["racelab.batch.comment"] == "enactor-az2 flip generation 115"
    assert "went back from generation 115 to 111" in stale.findings[0].message

    deleted = got["active-tree-deleted"]
    assert deleted.status is Status.FAIL and len(deleted.findings) == 1  # t110 was not active: not a finding
    f = deleted.findings[0]
    assert (f.subject.event, f.subject.attrs["racelab.tree.id"]) == ("tree.deleted", "t111")
    assert (f.related.event, f.related.attrs["racelab.tree.id"]) == ("alias.flipped", "t111")
    story = [line.text for line in deleted.chain]
    assert "enactor-az1 took generation 111 (its only freshness check: 111 > 110)" in story
    assert any("lost a lock 3 times" in line for line in story)
    assert any(line.startswith("operators restored") for line in story)
    assert [line.time for line in deleted.chain] == sorted(line.time for line in deleted.chain)

    assert got["endpoint-empty"].status is Status.FAIL
    stuck = got["enactors-stuck"]
    assert stuck.status is Status.FAIL and stuck.groups["racelab.enactor.id"] == {"enactor-az3": 1}
    assert got["clients-fail-after-endpoint-empties"].status is Status.PASS
    assert got["leases-expire-after-state-checks-fail"].status is Status.SKIP  # no cascade spans here

    text = render_text(run_specs([pack], spans))
    assert f"trace {f.subject.trace_id} span {f.subject.span_id}" in text  # the exact span, by its ids


def test_with_the_race_fixes_the_race_checks_pass(pack):
    got = outcomes(pack, race(fixed=True))
    for name in ("stale-apply", "active-tree-deleted", "endpoint-empty", "enactors-stuck"):
        assert got[name].status is Status.PASS, (name, got[name].reason)
    assert got["clients-fail-after-endpoint-empties"].status is Status.SKIP


def test_traces_without_the_dns_side_skip_rather_than_pass(pack):
    got = outcomes(pack, SpanSet([span("something.else", 1)]))
    assert {o.status for o in got.values()} == {Status.SKIP}


def cascade(expire_at: float) -> SpanSet:
    emptied = apply_batch(10, 4, "enactor-az2 cleanup generation 115", 111, -1)
    return SpanSet([emptied,
                    span("dwfm.state_check", 20, instance="dwfm", attrs={"racelab.result": "ok"}),
                    span("dwfm.state_check", 30, instance="dwfm", attrs={"racelab.result": "failed",
                                                                        "racelab.dwfm.host": "h1"}),
                    span("dwfm.leases_expired", expire_at, instance="dwfm", attrs={"racelab.dwfm.host": "h1",
                                                                                  "racelab.droplets.count": 5})])


def test_cascade_order(pack):
    assert outcomes(pack, cascade(expire_at=40))["leases-expire-after-state-checks-fail"].status is Status.PASS
    early = outcomes(pack, cascade(expire_at=25))["leases-expire-after-state-checks-fail"]
    assert early.status is Status.FAIL
    assert early.findings[0].subject.name == "dwfm.leases_expired"
    assert early.findings[0].related.attrs["racelab.result"] == "failed"
    assert outcomes(pack, cascade(expire_at=40))["state-checks-fail-after-endpoint-empties"].status is Status.PASS
