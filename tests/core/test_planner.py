"""The DNS Planner (one regional plan from LB health and capacity) and the fix switches."""

from __future__ import annotations

import random
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.fixes import CASCADE_FIXES, RACE_FIXES, Fix, UnknownFix, parse_fixes
from services.core.planner import EndpointUnserved, Planner, UnknownLoadBalancer
from services.core.plans import DEFAULT_ENDPOINTS, DUALSTACK_ENDPOINT, LEGACY_ENDPOINT, Endpoint, LoadBalancer

DUAL = Endpoint(DUALSTACK_ENDPOINT, dual_stack=True)
LEGACY = Endpoint(LEGACY_ENDPOINT)


def lb(n: int, capacity: int = 100, az: str = "use1-az1", healthy: bool = True, endpoints=()) -> LoadBalancer:
    return LoadBalancer(f"lb-{n}", f"10.0.0.{n}", f"fd00::{n}", az, capacity, healthy, tuple(endpoints))


def planner_with(*lbs: LoadBalancer, endpoints=(DUAL, LEGACY), seed: int = 0, **kw) -> Planner:
    planner = Planner(endpoints, random.Random(seed), **kw)
    for balancer in lbs:
        planner.register(balancer)
    return planner


def weights(planner: Planner, endpoint: Endpoint = LEGACY) -> dict[str, int]:
    return {t.lb_id: t.weight for t in planner.next_plan(0.0).for_endpoint(endpoint.name).targets}


# ---- generations ----

def test_generations_strictly_increase_from_the_last_one():
    planner = planner_with(lb(1), last_generation=109)
    plans = [planner.next_plan(float(t)) for t in range(5)]
    assert [p.generation for p in plans] == [110, 111, 112, 113, 114]
    assert [p.created_at for p in plans] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert planner.last_generation == 114


def test_one_plan_covers_every_endpoint_in_order():
    plan = planner_with(lb(1), endpoints=DEFAULT_ENDPOINTS).next_plan(0.0)
    assert [ep.endpoint for ep in plan.endpoints] == [ep.name for ep in DEFAULT_ENDPOINTS]
    assert [ep.dual_stack for ep in plan.endpoints] == [ep.dual_stack for ep in DEFAULT_ENDPOINTS]
    assert plan.endpoints[-1].endpoint == LEGACY_ENDPOINT  # the legacy name comes last
    with pytest.raises(KeyError):
        plan.for_endpoint("nope.example.com")


# ---- weights ----

def test_weights_are_proportional_to_capacity_with_255_at_the_top():
    planner = planner_with(lb(1, 1000), lb(2, 500), lb(3, 100), lb(4, 1))
    assert weights(planner) == {"lb-1": 255, "lb-2": 128, "lb-3": 26, "lb-4": 1}  # 1 is the floor


def test_targets_carry_the_lb_addresses_sorted_by_id():
    planner = planner_with(lb(3), lb(1), lb(2))
    targets = planner.next_plan(0.0).for_endpoint(DUAL.name).targets
    assert [(t.lb_id, t.ipv4, t.ipv6) for t in targets] == \
        [("lb-1", "10.0.0.1", "fd00::1"), ("lb-2", "10.0.0.2", "fd00::2"), ("lb-3", "10.0.0.3", "fd00::3")]


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=8))
def test_weights_track_capacity_within_rounding(capacities):
    planner = planner_with(*(lb(i + 1, c) for i, c in enumerate(capacities)))
    got = weights(planner)
    top = max(capacities)
    assert max(got.values()) == 255
    for i, capacity in enumerate(capacities):
        w = got[f"lb-{i + 1}"]
        assert 1 <= w <= 255
        assert abs(w - max(1.0, 255 * capacity / top)) <= 0.5


@pytest.mark.parametrize("excluded", [lb(2, healthy=False), lb(2, capacity=0)], ids=["unhealthy", "zero-capacity"])
def test_unusable_lbs_are_left_out(excluded):
    assert set(weights(planner_with(lb(1), excluded))) == {"lb-1"}


def test_report_health_takes_an_lb_out_and_back_with_new_capacity():
    planner = planner_with(lb(1, 100), lb(2, 100))
    planner.report_health("lb-2", healthy=False)
    assert set(weights(planner)) == {"lb-1"}
    planner.report_health("lb-2", healthy=True, capacity=50)
    assert weights(planner) == {"lb-1": 255, "lb-2": 128}
    planner.report_health("lb-2", healthy=True)  # capacity unchanged when not given
    assert planner.fleet["lb-2"].capacity == 50


def test_report_health_of_an_unknown_lb_raises():
    planner = planner_with(lb(1))
    with pytest.raises(UnknownLoadBalancer):
        planner.report_health("lb-404", healthy=True)
    assert issubclass(UnknownLoadBalancer, KeyError)


@pytest.mark.parametrize("fleet", [
    (lb(1, healthy=False), lb(2, healthy=False)),
    (lb(1, capacity=0), lb(2, capacity=0)),
    (lb(1, healthy=False), lb(2, capacity=0)),
], ids=["all-unhealthy", "all-zero-capacity", "mixed"])
def test_fail_open_when_no_lb_is_usable_the_plan_names_every_serving_lb(fleet):
    got = weights(planner_with(*fleet))
    assert set(got) == {"lb-1", "lb-2"}
    assert all(1 <= w <= 255 for w in got.values())


def test_shift_traffic_drains_an_availability_zone_and_undrains_it():
    planner = planner_with(lb(1, az="use1-az1"), lb(2, az="use1-az2"), lb(3, az="use1-az2"))
    planner.shift_traffic("use1-az2")
    assert set(weights(planner)) == {"lb-1"}
    planner.shift_traffic("use1-az2", away=False)
    assert set(weights(planner)) == {"lb-1", "lb-2", "lb-3"}
    planner.shift_traffic("use1-az9", away=False)  # undraining what was never drained is harmless
    assert set(weights(planner)) == {"lb-1", "lb-2", "lb-3"}


def test_draining_every_zone_fails_open():
    planner = planner_with(lb(1, az="use1-az1"))
    planner.shift_traffic("use1-az1")
    assert set(weights(planner)) == {"lb-1"}


def test_lbs_restricted_to_some_endpoints_appear_only_there():
    planner = planner_with(lb(1), lb(2, endpoints=[LEGACY_ENDPOINT]), lb(3, endpoints=[DUALSTACK_ENDPOINT]))
    plan = planner.next_plan(0.0)
    assert [t.lb_id for t in plan.for_endpoint(LEGACY.name).targets] == ["lb-1", "lb-2"]
    assert [t.lb_id for t in plan.for_endpoint(DUAL.name).targets] == ["lb-1", "lb-3"]


def test_no_plan_while_an_endpoint_has_no_lb_to_serve_it():
    # A fleet still registering: the LBs in so far serve only the legacy name. A plan
    # now would give the dual-stack endpoint a tree with no address to alias to.
    planner = planner_with(lb(2, endpoints=[LEGACY_ENDPOINT]), last_generation=109)
    assert planner.unserved_endpoints() == [DUAL.name]
    with pytest.raises(EndpointUnserved, match=DUAL.name):
        planner.next_plan(0.0)
    planner.register(lb(1))
    assert planner.unserved_endpoints() == []
    assert planner.next_plan(1.0).generation == 110  # no generation was spent on the refusal


def test_register_replaces_an_lb_with_the_same_id():
    planner = planner_with(lb(1, 100), lb(2, 100))
    planner.register(lb(2, 25))
    assert weights(planner) == {"lb-1": 255, "lb-2": 64}


# ---- tree ids and determinism ----

def test_tree_ids_are_uuids_distinct_per_endpoint_and_generation():
    planner = planner_with(lb(1), endpoints=DEFAULT_ENDPOINTS)
    ids = [ep.tree_id for _ in range(20) for ep in planner.next_plan(0.0).endpoints]
    assert len(ids) == 20 * len(DEFAULT_ENDPOINTS)
    assert len(set(ids)) == len(ids)
    for tree_id in ids:
        parsed = uuid.UUID(tree_id)
        assert str(parsed) == tree_id and parsed.version == 4


def test_the_same_seed_gives_identical_plans():
    def plans(seed: int):
        planner = planner_with(lb(1, 80), lb(2, 200, az="use1-az2"), seed=seed)
        out = [planner.next_plan(0.0)]
        planner.report_health("lb-1", healthy=False)
        out.append(planner.next_plan(1.0))
        return out

    assert plans(42) == plans(42)
    assert [ep.tree_id for p in plans(42) for ep in p.endpoints] != \
        [ep.tree_id for p in plans(43) for ep in p.endpoints]


# ---- fixes ----

@pytest.mark.parametrize("names, expected", [
    ([], frozenset()),
    (["fencing"], {Fix.FENCING}),
    (["fencing", "protect-active"], {Fix.FENCING, Fix.PROTECT_ACTIVE}),
    (["fencing,heal-rollback"], {Fix.FENCING, Fix.HEAL_ROLLBACK}),
    ([" fencing , protect-active ,"], {Fix.FENCING, Fix.PROTECT_ACTIVE}),
    (["fencing", "fencing"], {Fix.FENCING}),
    (["all"], RACE_FIXES),
    (["fencing", "all"], RACE_FIXES),
    ([""], frozenset()),
])
def test_parse_fixes(names, expected):
    assert parse_fixes(names) == frozenset(expected)


def test_all_is_every_race_fix():
    assert RACE_FIXES | CASCADE_FIXES == frozenset(Fix)
    assert all(fix.summary for fix in Fix)


@pytest.mark.parametrize("names", [["bogus"], ["fencing,bogus"], ["fencing", "bogus"]])
def test_an_unknown_fix_is_an_error_listing_the_known_ones(names):
    with pytest.raises(UnknownFix) as caught:
        parse_fixes(names)
    message = str(caught.value)
    assert "'bogus'" in message
    for known in ("fencing", "protect-active", "heal-rollback", "all"):
        assert known in message
