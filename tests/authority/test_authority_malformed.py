"""Hostile and broken packets: FORMERR or silence, never a dead server."""

from __future__ import annotations

import asyncio
import random
import socket
import struct

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from authority_helpers import answers, dig
from services.authority import answers as answers_module
from services.authority.answers import AnswerCache
from services.authority.state import initial_zones
from harness.authority import answer_cache_with_plan, fleet_planner
from services.core import tree
from services.core.plans import LEGACY_ENDPOINT
from services.core.records import RRType
from services.core.zone import ZoneSet
from services.runtime.scenario import load_scenario


def _header(qid=0x1234, flags=0x0100, qd=1, an=0, ns=0, ar=0) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


QNAME = b"".join(bytes((len(label),)) + label for label in LEGACY_ENDPOINT.encode().split(b".")) + b"\x00"
NASTY = {
    "empty": b"",
    "short header": b"\x12\x34\x01",
    "header only": _header(),
    "truncated question": _header() + QNAME[:10],
    "no type/class": _header() + QNAME,
    "compression loop": _header() + b"\xc0\x0c" + b"\x00\x01\x00\x01",
    "pointer forward": _header() + b"\xc0\x40" + b"\x00\x01\x00\x01",
    "label too long": _header() + b"\x50" + b"a" * 80 + b"\x00\x00\x01\x00\x01",
    "huge counts": _header(qd=0xFFFF, an=0xFFFF, ns=0xFFFF, ar=0xFFFF) + QNAME + b"\x00\x01\x00\x01",
    "two questions": _header(qd=2) + (QNAME + b"\x00\x01\x00\x01") * 2,
    "zero questions": _header(qd=0),
    "trailing junk": _header() + QNAME + b"\x00\x01\x00\x01" + b"junk",
    "bad opt": _header(ar=1) + QNAME + b"\x00\x01\x00\x01" + b"\x00\x00\x29\x04",
    "extended label": _header() + b"\x41abc\x00\x00\x01\x00\x01",
}


@pytest.fixture(scope="module")
def cache() -> AnswerCache:
    return answer_cache_with_plan()


@pytest.mark.parametrize("name", sorted(NASTY))
def test_nasty_packets_in_process(cache, name):
    packet = NASTY[name]
    before = cache.malformed
    resp = cache.handle(packet)
    if len(packet) < 12:
        assert resp is None
    else:
        msg = dns.message.from_wire(resp)
        assert msg.id == 0x1234 and msg.rcode() == dns.rcode.FORMERR, name
        assert cache.malformed == before + 1


def test_responses_are_never_answered(cache):
    q = bytearray(dns.message.make_query(LEGACY_ENDPOINT, "A").to_wire())
    q[2] |= 0x80
    assert cache.handle(bytes(q)) is None


def test_fuzz_never_raises(cache):
    rng = random.Random(7)
    valid = [dns.message.make_query(n, t, use_edns=e).to_wire()
             for n in (LEGACY_ENDPOINT, "x." + LEGACY_ENDPOINT, "example.com", "123456789012.ddb.us-east-1.api.aws")
             for t in ("A", "AAAA", "TXT", "MX") for e in (None, 0)]
    errors = cache.errors
    for i in range(6000):
        if i % 2:
            packet = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 80)))
        else:
            packet = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 4)):
                packet[rng.randrange(len(packet))] = rng.getrandbits(8)
            if rng.random() < 0.3:
                packet = packet[: rng.randrange(len(packet))]
            packet = bytes(packet)
        resp = cache.handle(packet)
        if resp is not None:
            dns.message.from_wire(resp)  # whatever we send is well-formed
            assert resp[:2] == packet[:2]
    assert cache.errors == errors  # no internal error on any input


def test_fast_and_slow_paths_agree(cache):
    for name, rdtype in [(LEGACY_ENDPOINT, "SOA"), ("nx." + LEGACY_ENDPOINT, "A"), ("example.org", "A"),
                         ("123456789012.ddb.us-east-1.api.aws", "CNAME"), ("dynamodb.us-east-1.api.aws", "NS")]:
        for edns in (None, 0):
            q = dns.message.make_query(name, rdtype, use_edns=edns).to_wire()
            assert cache.handle(q) == cache._slow(q, True), (name, rdtype, edns)


@pytest.mark.integration
def test_server_survives_nasty_packets(served):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        for name, packet in sorted(NASTY.items()):
            s.sendto(packet, served.dns)
            try:
                resp = s.recv(4096)
            except socket.timeout:
                assert len(packet) < 12, name
                continue
            assert dns.message.from_wire(resp).rcode() == dns.rcode.FORMERR, name
    # garbage over TCP, including a length prefix that lies
    for junk in (b"\x00\x05abc", b"\xff\xff" + b"x" * 100, b"\x00\x02\x00"):
        with socket.create_connection(served.dns, timeout=2) as t:
            t.sendall(junk)
    r = dig(served, LEGACY_ENDPOINT, "A")
    assert r.rcode() == dns.rcode.NOERROR and answers(r)
    r = dig(served, LEGACY_ENDPOINT, "A", tcp=True)
    assert r.rcode() == dns.rcode.NOERROR and answers(r)


def _dump(cache: AnswerCache) -> dict[bytes, list]:
    return {k: sorted((p, e.by_id[id(r)].head, e.by_id[id(r)].body) for p, r in e.outcomes.choices)
            for k, e in cache.entries.items()}


def test_incremental_rebuild_matches_full_rebuild():
    """What a batch rebuilds (its names and whatever aliases them) equals re-encoding everything, whether
    rebuilt at once after the batch is published or encoded in slices before (as the authority does) and
    swapped in: until the swap the cache answers exactly as before the batch."""
    scenario = load_scenario("oct-2025")
    zones = ZoneSet()
    for z in initial_zones(scenario):
        zones.add(z)
    cache = AnswerCache(zones)
    cache.rebuild_all()
    sliced = AnswerCache(zones)
    sliced.rebuild_all()
    planner = fleet_planner()
    plans = [planner.next_plan(float(i)) for i in range(4)]

    def batch(zone, changes):
        names = {c.record_set.name for c in changes}
        before = _dump(sliced)
        after = zones[zone].prepare(changes)
        pending = asyncio.run(sliced.prepare(zone, after, names))
        assert _dump(sliced) == before  # encoded, not yet served
        zones[zone].publish(after)
        sliced.install(pending)
        cache.rebuild(zone, names)
        full = AnswerCache(zones)
        full.rebuild_all()
        assert _dump(cache) == _dump(full)
        assert _dump(sliced) == _dump(full)

    for i, plan in enumerate(plans[:3]):
        for ep in plan.endpoints:
            batch(ep.zone, tree.install_changes(ep, plan.generation, 5))
            prev = tree.tree_root(plans[i - 1].for_endpoint(ep.endpoint)) if i else None
            batch(ep.zone, tree.activation_changes(ep.endpoint, ep.dual_stack, tree.tree_root(ep), prev))
    # the race: the legacy endpoint flipped back to plan 0's tree, then that tree cleaned up
    old = plans[0].for_endpoint(LEGACY_ENDPOINT)
    batch(LEGACY_ENDPOINT, tree.activation_changes(LEGACY_ENDPOINT, False, tree.tree_root(old),
                                                   tree.tree_root(plans[2].for_endpoint(LEGACY_ENDPOINT))))
    batch(LEGACY_ENDPOINT, tree.deletion_changes(zones[LEGACY_ENDPOINT].snapshot, [tree.tree_root(old)]))
    q = dns.message.make_query(LEGACY_ENDPOINT, "A").to_wire()
    r = dns.message.from_wire(cache.handle(q))
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority
    q = dns.message.make_query("123456789012.ddb.us-east-1.api.aws", "A").to_wire()
    r = dns.message.from_wire(cache.handle(q))
    assert len(r.answer) == 1 and r.answer[0].rdtype == dns.rdatatype.CNAME  # chased into the emptied name


def test_warming_up_after_a_start_ends_as_a_full_rebuild_even_with_batches_meanwhile(monkeypatch):
    """A started authority answers at once (on demand) and pre-encodes zone by zone, in slices, under the
    zone's batch lock. A batch that arrives meanwhile (here the clean-up of a tree, re-encoding the whole
    zone as an SOA change does) waits for the warm-up's swap and comes after it. Without the lock, in
    either order, the deleted tree's names would keep the warm-up's answers."""
    monkeypatch.setattr(answers_module, "NAMES_PER_SLICE", 2)  # the zone's 15 names in several slices
    scenario = load_scenario("oct-2025")
    zones = ZoneSet()
    for z in initial_zones(scenario):
        zones.add(z)
    planner = fleet_planner()
    first, second = planner.next_plan(0.0), planner.next_plan(1.0)
    for plan in (first, second):  # trees of dozens of names (more than one slice each); the first active
        for ep in plan.endpoints:
            zones[ep.zone].apply(tree.install_changes(ep, plan.generation, 5))
    for ep in first.endpoints:
        zones[ep.zone].apply(tree.activation_changes(ep.endpoint, ep.dual_stack, tree.tree_root(ep), None))
    cache = AnswerCache(zones)
    q = dns.message.make_query(LEGACY_ENDPOINT, "A").to_wire()
    before = dns.message.from_wire(cache.handle(q))  # nothing pre-encoded yet: answered on demand
    assert before.rcode() == dns.rcode.NOERROR and before.answer
    locks = {origin: asyncio.Lock() for origin in zones.zones}
    spare = tree.tree_root(second.for_endpoint(LEGACY_ENDPOINT))
    batches: list[asyncio.Task] = []

    async def clean_up_as_the_authority_does() -> None:  # services/authority/state.py, _apply_locked
        async with locks[LEGACY_ENDPOINT]:
            zone = zones[LEGACY_ENDPOINT]
            after = zone.prepare(tree.deletion_changes(zone.snapshot, [spare]))
            pending = await prepare(LEGACY_ENDPOINT, after, None)
            zone.publish(after)
            cache.install(pending)

    prepare = cache.prepare

    async def a_batch_arrives_while_the_legacy_zone_is_encoded(origin, after, changed):
        if origin == LEGACY_ENDPOINT and not batches:
            batches.append(asyncio.create_task(clean_up_as_the_authority_does()))
        return await prepare(origin, after, changed)  # yields between slices: the batch could run

    async def warm_with_a_batch_in_between() -> int:
        cache.prepare = a_batch_arrives_while_the_legacy_zone_is_encoded
        names = await cache.warm(locks.__getitem__)
        await asyncio.gather(*batches)
        return names

    names = asyncio.run(warm_with_a_batch_in_between())
    assert batches and spare not in {rs.name for rs in zones[LEGACY_ENDPOINT].snapshot.records.values()}
    full = AnswerCache(zones)
    full.rebuild_all()
    assert _dump(cache) == _dump(full) and names >= len(full.zone_keys[LEGACY_ENDPOINT])
    gone = dns.message.from_wire(cache.handle(dns.message.make_query(spare, "A").to_wire()))
    assert gone.rcode() == dns.rcode.NXDOMAIN


def test_tree_names_are_answered_on_demand_not_pre_encoded(cache):
    """A tree's root and leaves are not pre-encoded (clients ask for the endpoint), yet a question about
    them is answered from the zone as any name is: the leaf with its address, the root with one of its
    weighted LBs, the endpoint from its pre-encoded answers."""
    snap = cache.zones[LEGACY_ENDPOINT].snapshot
    root = tree.active_tree(snap, LEGACY_ENDPOINT)
    leaves = [name for name in snap.referents() if root in set(snap.referrers(name))]
    assert len(leaves) == 6
    def key(name: str) -> bytes:
        return dns.message.make_query(name, "A").to_wire()[12:].lower()

    assert key(LEGACY_ENDPOINT) in cache.entries
    assert key(root) not in cache.entries and key(leaves[0]) not in cache.entries
    leaf_address = snap.get(leaves[0], RRType.A).values[0]
    reply = dns.message.from_wire(cache.handle(dns.message.make_query(leaves[0], "A").to_wire()))
    assert reply.rcode() == dns.rcode.NOERROR and [rr.address for rr in reply.answer[0]] == [leaf_address]
    lb_addresses = {snap.get(name, RRType.A).values[0] for name in leaves}
    seen = set()
    for _ in range(60):
        reply = dns.message.from_wire(cache.handle(dns.message.make_query(root, "A").to_wire()))
        seen |= {rr.address for rr in reply.answer[0]}
    assert seen == lb_addresses


def test_answers_computed_on_demand_are_kept_until_a_zone_they_read_changes(cache):
    """An account name's answer (a CNAME in the account zone to the regional name) is computed on demand
    and kept: a batch to another endpoint's zone leaves it, a batch to the regional zone drops it, and
    the answer then is the one computed afresh from the zones."""
    account = "123456789012.ddb.us-east-1.api.aws"
    query = dns.message.make_query(account, "A").to_wire()
    key = query[12:].lower()
    cache.handle(query)
    assert key in cache.misses and key not in cache.entries
    planner = fleet_planner()
    planner.next_plan(0.0)
    plan = planner.next_plan(1.0)

    def batch(endpoint: str) -> None:
        (ep,) = [e for e in plan.endpoints if e.endpoint == endpoint]
        zone = cache.zones[ep.zone]
        for changes in (tree.install_changes(ep, plan.generation, 5),
                        tree.activation_changes(ep.endpoint, ep.dual_stack, tree.tree_root(ep),
                                                tree.active_tree(zone.snapshot, ep.endpoint))):
            after = zone.prepare(changes)
            pending = asyncio.run(cache.prepare(ep.zone, after, {c.record_set.name for c in changes}))
            zone.publish(after)
            cache.install(pending)

    batch("dynamodb-fips.us-east-1.amazonaws.com")
    assert cache.misses.get(key) is not None  # read from the account and regional zones only: kept
    batch(LEGACY_ENDPOINT)
    assert key not in cache.misses  # the regional name now points at another tree: computed again
    reply = dns.message.from_wire(cache.handle(query))
    fresh = AnswerCache(cache.zones).compute(*_question(account), 1, 1)
    expected = {rr.value for _, r in fresh.outcomes.choices for rr in r.answer if rr.rtype is RRType.A}
    addresses = {rr.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for rr in rrset}
    assert addresses and addresses <= expected
    assert reply.answer[0][0].target.to_text(omit_final_dot=True) == LEGACY_ENDPOINT


def _question(name: str) -> tuple[tuple[bytes, ...], str]:
    return tuple(label.encode() for label in name.split(".")), name
