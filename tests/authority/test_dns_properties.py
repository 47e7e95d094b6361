"""The packet handler under hypothesis: any bytes, any well-formed question, any mutation of one.

The oracle is written from the RFCs and the core resolver, not from the
handler: authoritative answers inside the zones, REFUSED outside them and for
zone transfers and other classes, NOTIMP for other opcodes, BADVERS for EDNS
versions above 0, FORMERR or silence for what cannot be parsed, never RA,
never more than the client's UDP limit, never an internal error.
(bench/fuzz_dns.py sends a million such packets to a running authority.)
"""

from __future__ import annotations

import random
import struct

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from harness.authority import answer_cache_with_plan
from services.core.plans import ACCOUNT_ZONE, LEGACY_ENDPOINT
from services.core.records import RRType
from services.core.resolve import Rcode, resolve

SETTINGS = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CACHE = answer_cache_with_plan()
ZONES = CACHE.zones
TREE_NAME = next(name for (name, rtype, _) in ZONES[LEGACY_ENDPOINT].snapshot.records
                 if rtype is RRType.A and name != LEGACY_ENDPOINT)
KNOWN_NAMES = sorted({*ZONES.zones, TREE_NAME, f"nx.{LEGACY_ENDPOINT}", f"123456789012.{ACCOUNT_ZONE}",
                      f"a.b.{ACCOUNT_ZONE}", "example.com", "amazonaws.com", "com", ""})
QTYPES = [1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 48, 64, 65, 251, 252, 255, 0, 65535]
TYPE_CODES = {1: RRType.A, 2: RRType.NS, 5: RRType.CNAME, 6: RRType.SOA, 16: RRType.TXT, 28: RRType.AAAA}


def _labels_of(name: str) -> list[bytes]:
    return [label.encode() for label in name.split(".")] if name else []


def _randomize_case(labels: list[bytes], rnd: random.Random) -> list[bytes]:
    return [bytes(c ^ 0x20 if 97 <= c <= 122 and rnd.random() < 0.5 else c for c in label) for label in labels]


labels_strategy = st.one_of(
    st.builds(lambda name, seed: _randomize_case(_labels_of(name), random.Random(seed)),
              st.sampled_from(KNOWN_NAMES), st.integers(0, 2**16)),
    st.lists(st.binary(min_size=1, max_size=63), max_size=5).filter(lambda ls: sum(len(x) + 1 for x in ls) < 255),
    st.builds(lambda prefix, name: prefix + _labels_of(name),
              st.lists(st.sampled_from([b"*", b"x", b"\x00", b".", b"A-b", b"\xff\xfe"]), max_size=3),
              st.sampled_from(KNOWN_NAMES)),
)
edns_strategy = st.one_of(st.none(), st.fixed_dictionaries({
    "version": st.sampled_from([0, 0, 0, 1, 255]),
    "payload": st.sampled_from([0, 256, 512, 1232, 4096, 65535]),
    "do": st.booleans(),
    "options": st.lists(st.one_of(
        st.just((3, b"")),  # NSID request
        st.tuples(st.just(10), st.binary(min_size=8, max_size=8)),  # client cookie
        st.tuples(st.just(8), st.sampled_from([b"\x00\x01\x18\x00\xc0\x00\x02", b"\x00\x01\x00\x00"])),  # subnet
        st.tuples(st.just(12), st.binary(max_size=40).map(lambda b: bytes(len(b)))),  # padding
        st.tuples(st.integers(65001, 65534), st.binary(max_size=40))), max_size=3),  # unknown: ignored
}))


@st.composite
def queries(draw) -> tuple[bytes, dict]:
    q = {
        "id": draw(st.integers(0, 0xFFFF)),
        "opcode": draw(st.sampled_from([0, 0, 0, 0, 1, 2, 4, 5, 15])),
        "rd": draw(st.booleans()),
        "other_flags": draw(st.sampled_from([0, 0x0400, 0x0200, 0x0080, 0x0020, 0x0010, 0x0040])),  # AA TC RA AD CD Z
        "labels": draw(labels_strategy),
        "qtype": draw(st.one_of(st.sampled_from(QTYPES), st.integers(0, 0xFFFF))),
        "qclass": draw(st.sampled_from([1, 1, 1, 1, 3, 4, 254, 255, 0])),
        "edns": draw(edns_strategy),
    }
    flags = (q["opcode"] << 11) | (0x0100 if q["rd"] else 0) | q["other_flags"]
    wire = struct.pack("!HHHHHH", q["id"], flags, 1, 0, 0, 1 if q["edns"] else 0)
    wire += b"".join(bytes((len(label),)) + label for label in q["labels"]) + b"\x00"
    wire += struct.pack("!HH", q["qtype"], q["qclass"])
    if q["edns"]:
        e = q["edns"]
        rdata = b"".join(struct.pack("!HH", code, len(data)) + data for code, data in e["options"])
        ttl = (e["version"] << 16) | (0x8000 if e["do"] else 0)
        wire += b"\x00" + struct.pack("!HHIH", 41, e["payload"], ttl, len(rdata)) + rdata
    return wire, q


ZONE_LABELS = [tuple(_labels_of(origin)) for origin in ZONES.zones]
PLAIN = set(b"abcdefghijklmnopqrstuvwxyz0123456789-_*")


def _in_zones(labels: list[bytes]) -> bool:
    lower = tuple(label.lower() for label in labels)
    return any(lower[len(lower) - len(z):] == z for z in ZONE_LABELS if 0 < len(z) <= len(lower))


def _expected_rcodes(q: dict) -> set[int]:
    if q["opcode"] != 0:
        return {dns.rcode.NOTIMP}
    if q["edns"] and q["edns"]["version"] > 0:
        return {dns.rcode.BADVERS}
    if q["qclass"] != 1 or q["qtype"] in (251, 252) or not _in_zones(q["labels"]):
        return {dns.rcode.REFUSED}
    if not all(set(label.lower()) <= PLAIN for label in q["labels"]):
        return {dns.rcode.NOERROR, dns.rcode.NXDOMAIN}  # a name no record can have: absent, or a wildcard's
    name = b".".join(q["labels"]).decode().lower()
    rtype = TYPE_CODES.get(q["qtype"], RRType.A)  # other types: the name's existence, as for A
    rcodes = {r.rcode for _, r in resolve(ZONES, name, rtype).choices}
    assert len(rcodes) == 1
    return {dns.rcode.NXDOMAIN if rcodes == {Rcode.NXDOMAIN} else dns.rcode.NOERROR}


@SETTINGS
@given(queries(), st.booleans())
def test_every_well_formed_query_gets_the_right_answer(query, udp):
    wire, q = query
    errors = CACHE.errors
    resp = CACHE.handle(wire, udp)
    assert CACHE.errors == errors
    msg = dns.message.from_wire(resp)
    assert msg.id == q["id"] and msg.flags & dns.flags.QR and not msg.flags & dns.flags.RA
    assert bool(msg.flags & dns.flags.RD) == q["rd"] and msg.opcode() == q["opcode"]
    expected = _expected_rcodes(q)
    assert msg.rcode() in expected
    if expected == {dns.rcode.NOTIMP}:
        return
    assert (msg.edns >= 0) == bool(q["edns"])
    if expected == {dns.rcode.BADVERS}:
        return
    header_len = 12 + sum(len(label) + 1 for label in q["labels"]) + 5
    assert resp[12:header_len] == wire[12:header_len]  # the question as asked, case and all
    assert bool(msg.flags & dns.flags.AA) == (expected != {dns.rcode.REFUSED})
    if udp:
        limit = max(512, q["edns"]["payload"]) if q["edns"] else 512
        assert len(resp) <= limit
        if msg.flags & dns.flags.TC:
            assert not msg.answer and len(CACHE.handle(wire, False)) > limit  # TCP has it all
    else:
        assert not msg.flags & dns.flags.TC


@SETTINGS
@given(st.binary(max_size=600))
def test_any_bytes_never_break_the_handler(packet):
    errors = CACHE.errors
    resp = CACHE.handle(packet, True)
    assert CACHE.errors == errors
    if resp is not None:
        msg = dns.message.from_wire(resp)
        assert msg.id == struct.unpack_from("!H", packet)[0] and msg.flags & dns.flags.QR
        assert not (packet[2] & 0x80)  # a response is never answered


@SETTINGS
@given(queries(), st.lists(st.tuples(st.sampled_from(["flip", "insert", "delete", "cut"]),
                                     st.integers(0, 2**16), st.integers(0, 255)), min_size=1, max_size=4))
def test_mutated_queries_never_break_the_handler(query, mutations):
    packet = bytearray(query[0])
    for kind, at, value in mutations:
        at %= len(packet) + 1
        if kind == "flip" and at < len(packet):
            packet[at] ^= 1 << (value % 8)
        elif kind == "insert":
            packet[at:at] = bytes((value,))
        elif kind == "delete":
            del packet[at:at + 1 + value % 4]
        elif kind == "cut":
            del packet[at:]
    errors = CACHE.errors
    resp = CACHE.handle(bytes(packet), True)
    assert CACHE.errors == errors
    if resp is not None:
        dns.message.from_wire(resp)
        assert resp[:2] == bytes(packet[:2])


@SETTINGS
@given(queries())
def test_fast_and_slow_paths_agree(query):
    wire, q = query
    if q["opcode"] != 0:
        return
    random.seed(1)  # the same weighted pick on both paths
    fast = CACHE.handle(wire, True)
    random.seed(1)
    assert fast == CACHE._slow(wire, True)


@pytest.mark.parametrize("code, data", [(8, b""), (10, b"abc"), (10, b"x" * 41)])
def test_malformed_edns_options_are_formerr(code, data):
    """RFC 7871 7.1.1 (client subnet) and RFC 7873 5.2.2 (cookies): a malformed option is FORMERR."""
    option = struct.pack("!HH", code, len(data)) + data
    q = bytearray(dns.message.make_query(LEGACY_ENDPOINT, "A", use_edns=0).to_wire())
    q[-2:] = struct.pack("!H", len(option))
    assert dns.message.from_wire(CACHE.handle(bytes(q) + option, True)).rcode() == dns.rcode.FORMERR


@pytest.mark.parametrize("payload", [0, 100, 511])
def test_small_edns_buffers_mean_512(payload):
    q = dns.message.make_query(TREE_NAME, "A", use_edns=0, payload=payload).to_wire()
    msg = dns.message.from_wire(CACHE.handle(q, True))
    assert msg.rcode() == dns.rcode.NOERROR and msg.answer and msg.payload == 1232
