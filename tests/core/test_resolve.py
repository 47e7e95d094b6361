"""Authoritative answers: aliases, weights, negative answers, CNAMEs across zones, wildcards."""

from __future__ import annotations

import random

import pytest

from services.core import tree
from services.core.planner import Planner
from services.core.plans import ACCOUNT_ZONE, LEGACY_ENDPOINT, Endpoint, EndpointPlan, LoadBalancer
from services.core.records import RecordSet, RRType, create, upsert
from services.core.resolve import RR, Outcomes, Rcode, Response, resolve, resolve_in
from services.core.zone import HostedZone, ZoneSet, apex_records

A, AAAA, TXT, CNAME, SOA = RRType.A, RRType.AAAA, RRType.TXT, RRType.CNAME, RRType.SOA
ORIGIN = "example.com"
ACCOUNT = f"123456789012.{ACCOUNT_ZONE}"


# ---- helpers ----

def zone_with(origin: str, *records: RecordSet, **apex) -> HostedZone:
    zone = HostedZone(origin, apex_records(origin, **apex) if apex else None)
    if records:
        zone.apply([create(rs) for rs in records])
    return zone


def zone_set(*zones: HostedZone) -> ZoneSet:
    zs = ZoneSet()
    for z in zones:
        zs.add(z)
    return zs


def a(name: str, ip: str, ttl: int = 60, set_id: str = "", weight: int | None = None) -> RecordSet:
    return RecordSet(name, A, ttl, (ip,), set_id, weight)


def alias(name: str, target: str, rtype: RRType = A) -> RecordSet:
    return RecordSet(name, rtype, alias_target=target)


def only(outcomes: Outcomes) -> Response:
    """The response of a query that has exactly one possible answer."""
    assert len(outcomes.choices) == 1, outcomes
    p, response = outcomes.choices[0]
    assert p == pytest.approx(1.0)
    return response


def distribution(outcomes: Outcomes, qtype: RRType) -> dict[tuple[str, ...], float]:
    assert sum(p for p, _ in outcomes.choices) == pytest.approx(1.0)
    return {r.addresses(qtype): p for p, r in outcomes.choices}


def soa_in_authority(response: Response, origin: str, ttl: int) -> None:
    assert len(response.authority) == 1
    soa = response.authority[0]
    assert (soa.name, soa.rtype, soa.ttl) == (origin, SOA, ttl)


LB_SMALL = LoadBalancer("lb-1", "10.0.0.1", "fd00::1", "use1-az1", capacity=100)
LB_BIG = LoadBalancer("lb-2", "10.0.0.2", "fd00::2", "use1-az2", capacity=300)


def endpoint_plan(endpoint: Endpoint, lbs=(LB_SMALL, LB_BIG), seed: int = 0) -> EndpointPlan:
    planner = Planner([endpoint], random.Random(seed))
    for lb in lbs:
        planner.register(lb)
    return planner.next_plan(0.0).for_endpoint(endpoint.name)


def endpoint_zone(endpoint: Endpoint, ttl: int = 5) -> tuple[HostedZone, EndpointPlan]:
    """A zone whose endpoint aliases an installed tree, as an enactor leaves it."""
    zone = HostedZone(endpoint.zone)
    ep = endpoint_plan(endpoint)
    zone.apply(tree.install_changes(ep, 1, ttl))
    zone.apply(tree.activation_changes(ep.endpoint, ep.dual_stack, tree.tree_root(ep), None))
    return zone, ep


def delete_tree(zone: HostedZone, ep: EndpointPlan) -> None:
    zone.apply(tree.deletion_changes(zone.snapshot, [tree.tree_root(ep)]))


# ---- aliases and weights ----

def test_an_alias_answers_with_the_queried_name_and_the_leaf_ttl():
    zone = zone_with(ORIGIN, a("leaf.example.com", "192.0.2.1", ttl=42), alias("mid.example.com", "leaf.example.com"),
                     alias("www.example.com", "mid.example.com"))
    response = only(resolve(zone_set(zone), "www.example.com", A))
    assert response.rcode is Rcode.NOERROR
    assert response.answer == (RR("www.example.com", A, 42, "192.0.2.1"),)


def test_an_endpoint_answers_through_its_tree_by_weight():
    zone, ep = endpoint_zone(Endpoint(LEGACY_ENDPOINT), ttl=5)
    assert [t.weight for t in ep.targets] == [85, 255]  # capacities 100 and 300
    outcomes = resolve(zone_set(zone), LEGACY_ENDPOINT, A)
    assert distribution(outcomes, A) == {("10.0.0.1",): pytest.approx(0.25), ("10.0.0.2",): pytest.approx(0.75)}
    for _, response in outcomes.choices:
        assert [(rr.name, rr.ttl) for rr in response.answer] == [(LEGACY_ENDPOINT, 5)]
    assert not outcomes.always_empty


def test_a_dual_stack_endpoint_answers_a_and_aaaa():
    endpoint = Endpoint("dynamodb.us-east-1.api.aws", dual_stack=True)
    zone, _ = endpoint_zone(endpoint)
    zones = zone_set(zone)
    assert set(distribution(resolve(zones, endpoint.name, A), A)) == {("10.0.0.1",), ("10.0.0.2",)}
    assert set(distribution(resolve(zones, endpoint.name, AAAA), AAAA)) == {("fd00::1",), ("fd00::2",)}


@pytest.mark.parametrize("weights, expected", [
    ((1, 3), {"192.0.2.1": 0.25, "192.0.2.2": 0.75}),
    ((2, 0, 2), {"192.0.2.1": 0.5, "192.0.2.3": 0.5}),  # weight 0 never answers while others have weight
    ((0, 0, 0), {"192.0.2.1": 1 / 3, "192.0.2.2": 1 / 3, "192.0.2.3": 1 / 3}),  # all zero: equal chances
    ((0,), {"192.0.2.1": 1.0}),
    ((255, 1), {"192.0.2.1": 255 / 256, "192.0.2.2": 1 / 256}),
])
def test_weighted_probabilities_are_weight_over_total(weights, expected):
    members = [a("w.example.com", f"192.0.2.{i + 1}", set_id=f"m{i}", weight=w) for i, w in enumerate(weights)]
    outcomes = resolve_in(zone_with(ORIGIN, *members).snapshot, "w.example.com", A)
    got = {addresses[0]: p for addresses, p in distribution(outcomes, A).items()}
    assert got == pytest.approx(expected)


def test_pick_chooses_by_cumulative_probability():
    r1, r2, r3 = (Response(Rcode.NOERROR, (RR("x", A, 1, f"192.0.2.{i}"),)) for i in (1, 2, 3))
    outcomes = Outcomes(((0.25, r1), (0.5, r2), (0.25, r3)))
    assert [outcomes.pick(u) for u in (0.0, 0.2499, 0.25, 0.7499, 0.75, 0.999999)] == [r1, r1, r2, r2, r3, r3]


def test_pick_falls_back_to_the_last_choice_when_probabilities_round_short():
    r1, r2 = Response(Rcode.NOERROR), Response(Rcode.NXDOMAIN)
    assert Outcomes(((0.3, r1), (0.6999999, r2))).pick(0.99999999) is r2


# ---- negative answers ----

def test_an_alias_to_a_deleted_tree_is_nodata_with_the_soa():
    zone, ep = endpoint_zone(Endpoint(LEGACY_ENDPOINT))
    delete_tree(zone, ep)
    outcomes = resolve(zone_set(zone), LEGACY_ENDPOINT, A)
    response = only(outcomes)
    assert response.rcode is Rcode.NOERROR
    assert response.answer == ()
    assert response.is_nodata and outcomes.always_empty
    soa_in_authority(response, LEGACY_ENDPOINT, 900)  # min(SOA TTL 900, SOA minimum 86400)


@pytest.mark.parametrize("soa_ttl, negative_ttl, expected", [(900, 86400, 900), (3600, 300, 300), (60, 60, 60)])
def test_the_negative_ttl_is_min_of_soa_ttl_and_soa_minimum(soa_ttl, negative_ttl, expected):
    zone = zone_with(ORIGIN, soa_ttl=soa_ttl, negative_ttl=negative_ttl)
    soa_in_authority(only(resolve(zone_set(zone), "missing.example.com", A)), ORIGIN, expected)


def test_a_name_that_does_not_exist_is_nxdomain_with_the_soa():
    zone = zone_with(ORIGIN, a("www.example.com", "192.0.2.1"))
    response = only(resolve(zone_set(zone), "nope.example.com", A))
    assert response.rcode is Rcode.NXDOMAIN and response.answer == ()
    soa_in_authority(response, ORIGIN, 900)
    assert not response.is_nodata  # NXDOMAIN is not NODATA


def test_an_existing_name_without_the_type_is_nodata():
    zone = zone_with(ORIGIN, RecordSet("www.example.com", TXT, 60, ("hi",)))
    response = only(resolve(zone_set(zone), "www.example.com", A))
    assert response.rcode is Rcode.NOERROR and response.answer == () and response.is_nodata
    soa_in_authority(response, ORIGIN, 900)


def test_an_empty_non_terminal_is_nodata_not_nxdomain():
    zone = zone_with(ORIGIN, a("x.y.example.com", "192.0.2.1"))
    response = only(resolve(zone_set(zone), "y.example.com", A))
    assert response.rcode is Rcode.NOERROR and response.answer == ()
    soa_in_authority(response, ORIGIN, 900)


@pytest.mark.parametrize("qname", ["example.org", "www.example.org", "com", "badexample.com"])
def test_a_name_outside_every_zone_is_refused(qname):
    response = only(resolve(zone_set(zone_with(ORIGIN)), qname, A))
    assert response == Response(Rcode.REFUSED)


def test_query_names_are_normalized():
    zone = zone_with(ORIGIN, a("www.example.com", "192.0.2.1"))
    assert only(resolve(zone_set(zone), "WWW.Example.COM.", A)).addresses(A) == ("192.0.2.1",)


# ---- CNAMEs across zones: account endpoints ----

def account_and_legacy_zones(account_record: RecordSet) -> tuple[ZoneSet, HostedZone, EndpointPlan]:
    legacy, ep = endpoint_zone(Endpoint(LEGACY_ENDPOINT), ttl=5)
    return zone_set(zone_with(ACCOUNT_ZONE, account_record), legacy), legacy, ep


def test_an_account_endpoint_cname_is_chased_into_the_legacy_zone():
    zones, _, _ = account_and_legacy_zones(RecordSet(ACCOUNT, CNAME, 300, (LEGACY_ENDPOINT,)))
    outcomes = resolve(zones, ACCOUNT, A)
    assert distribution(outcomes, A) == {("10.0.0.1",): pytest.approx(0.25), ("10.0.0.2",): pytest.approx(0.75)}
    for _, response in outcomes.choices:
        assert response.rcode is Rcode.NOERROR
        assert response.answer[0] == RR(ACCOUNT, CNAME, 300, LEGACY_ENDPOINT)
        assert [(rr.name, rr.rtype, rr.ttl) for rr in response.answer[1:]] == [(LEGACY_ENDPOINT, A, 5)]


def test_an_account_endpoint_answers_only_the_cname_once_the_legacy_tree_is_gone():
    zones, legacy, ep = account_and_legacy_zones(RecordSet(ACCOUNT, CNAME, 300, (LEGACY_ENDPOINT,)))
    delete_tree(legacy, ep)
    outcomes = resolve(zones, ACCOUNT, A)
    response = only(outcomes)
    assert response.rcode is Rcode.NOERROR
    assert response.answer == (RR(ACCOUNT, CNAME, 300, LEGACY_ENDPOINT),)
    assert response.addresses(A) == () and response.is_nodata and outcomes.always_empty
    soa_in_authority(response, LEGACY_ENDPOINT, 900)


def test_a_cname_to_a_name_outside_every_zone_answers_just_the_cname():
    zones = zone_set(zone_with(ACCOUNT_ZONE, RecordSet(ACCOUNT, CNAME, 300, ("elsewhere.example.net",))))
    response = only(resolve(zones, ACCOUNT, A))
    assert response == Response(Rcode.NOERROR, (RR(ACCOUNT, CNAME, 300, "elsewhere.example.net"),))


def test_a_cname_query_gets_the_cname_itself():
    zones, _, _ = account_and_legacy_zones(RecordSet(ACCOUNT, CNAME, 300, (LEGACY_ENDPOINT,)))
    assert only(resolve(zones, ACCOUNT, CNAME)).answer == (RR(ACCOUNT, CNAME, 300, LEGACY_ENDPOINT),)


@pytest.mark.parametrize("account", ["123456789012", "000000000001", "999999999999"])
def test_a_wildcard_cname_answers_any_account_with_the_queried_owner(account):
    wildcard = RecordSet(f"*.{ACCOUNT_ZONE}", CNAME, 300, (LEGACY_ENDPOINT,))
    zones, _, _ = account_and_legacy_zones(wildcard)
    qname = f"{account}.{ACCOUNT_ZONE}"
    for _, response in resolve(zones, qname, A).choices:
        assert response.rcode is Rcode.NOERROR
        assert response.answer[0] == RR(qname, CNAME, 300, LEGACY_ENDPOINT)
        assert response.addresses(A) in {("10.0.0.1",), ("10.0.0.2",)}


def test_a_wildcard_does_not_answer_for_names_that_exist():
    zone = zone_with(ORIGIN, a("*.example.com", "192.0.2.9"), a("www.example.com", "192.0.2.1"),
                     a("x.y.example.com", "192.0.2.2"))
    zones = zone_set(zone)
    assert only(resolve(zones, "www.example.com", A)).addresses(A) == ("192.0.2.1",)
    assert only(resolve(zones, "other.example.com", A)).answer == (RR("other.example.com", A, 60, "192.0.2.9"),)
    ent = only(resolve(zones, "y.example.com", A))  # an empty non-terminal exists: no wildcard
    assert ent.rcode is Rcode.NOERROR and ent.answer == ()
    assert only(resolve(zones, ORIGIN, A)).answer == ()  # the apex is never wildcarded


def test_a_wildcard_answers_names_several_labels_below_it():
    zones = zone_set(zone_with(ORIGIN, a("*.example.com", "192.0.2.9")))
    response = only(resolve(zones, "deep.er.example.com", A))
    assert response.answer == (RR("deep.er.example.com", A, 60, "192.0.2.9"),)


# ---- resolve_in: one zone snapshot ----

def test_resolve_in_does_not_chase_a_cname_into_other_zones():
    zone = zone_with(ACCOUNT_ZONE, RecordSet(ACCOUNT, CNAME, 300, (LEGACY_ENDPOINT,)))
    response = only(resolve_in(zone.snapshot, ACCOUNT, A))
    assert response == Response(Rcode.NOERROR, (RR(ACCOUNT, CNAME, 300, LEGACY_ENDPOINT),))


def test_resolve_in_answers_like_resolve_within_the_zone():
    zone, _ = endpoint_zone(Endpoint(LEGACY_ENDPOINT))
    assert resolve_in(zone.snapshot, LEGACY_ENDPOINT, A) == resolve(zone_set(zone), LEGACY_ENDPOINT, A)


def test_resolve_in_chases_a_cname_within_the_zone():
    zone = zone_with(ORIGIN, a("web.example.com", "192.0.2.1"),
                     RecordSet("www.example.com", CNAME, 60, ("web.example.com",)))
    assert only(resolve_in(zone.snapshot, "www.example.com", A)).addresses(A) == ("192.0.2.1",)


def test_a_cname_loop_terminates():
    zone = zone_with(ORIGIN, RecordSet("p.example.com", CNAME, 60, ("q.example.com",)),
                     RecordSet("q.example.com", CNAME, 60, ("p.example.com",)))
    response = only(resolve(zone_set(zone), "p.example.com", A))
    assert response.rcode is Rcode.NOERROR and response.addresses(A) == ()
    assert 1 < len(response.answer) <= 10


def test_zone_for_picks_the_longest_suffix():
    parent, child = zone_with("api.aws"), zone_with(ACCOUNT_ZONE)
    zones = zone_set(parent, child)
    assert zones.zone_for(ACCOUNT) is child
    assert zones.zone_for("x.us-east-1.api.aws") is parent
    assert zones.zone_for("example.org") is None
    with pytest.raises(ValueError):
        zones.add(zone_with("api.aws"))


def test_a_changed_zone_changes_the_answer():
    zone = zone_with(ORIGIN, a("www.example.com", "192.0.2.1"))
    zones = zone_set(zone)
    zone.apply([upsert(a("www.example.com", "192.0.2.2"))])
    assert only(resolve(zones, "www.example.com", A)).addresses(A) == ("192.0.2.2",)
