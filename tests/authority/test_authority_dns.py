"""DNS answers from a real authority process, over UDP and TCP."""

from __future__ import annotations

import socket
import struct

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from authority_helpers import answers, dig
from services.core import tree
from services.core.plans import ACCOUNT_ZONE, DUALSTACK_ENDPOINT, LEGACY_ENDPOINT

pytestmark = pytest.mark.integration

LB_V4 = {f"127.0.1.{i}" for i in range(1, 7)}
LB_V6 = {f"fd00:ddb::{i:x}" for i in range(1, 7)}


def test_endpoint_answers_one_address_authoritatively(served):
    r = dig(served, LEGACY_ENDPOINT, "A")
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA and not r.flags & dns.flags.RA and r.flags & dns.flags.RD
    (address,) = answers(r)
    assert address in LB_V4
    assert r.answer[0].ttl == 5 and r.answer[0].name.to_text() == LEGACY_ENDPOINT + "."


def test_weighted_set_answers_every_lb_in_turn(served):
    seen = {answers(dig(served, LEGACY_ENDPOINT, "A"))[0] for _ in range(150)}
    assert seen == LB_V4


def test_dual_stack_aaaa_and_ipv4_only_aaaa(served):
    (v6,) = answers(dig(served, DUALSTACK_ENDPOINT, "AAAA"), "AAAA")
    assert v6 in LB_V6
    r = dig(served, LEGACY_ENDPOINT, "AAAA")  # IPv4-only endpoint: NODATA
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    assert r.authority[0].rdtype == dns.rdatatype.SOA


def test_nxdomain_with_soa(served):
    r = dig(served, "no-such-name." + LEGACY_ENDPOINT, "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and r.flags & dns.flags.AA
    (soa,) = r.authority
    assert soa.rdtype == dns.rdatatype.SOA and soa.ttl == 900
    assert soa.name.to_text() == LEGACY_ENDPOINT + "."


def test_refused_outside_zones(served):
    r = dig(served, "example.com", "A")
    assert r.rcode() == dns.rcode.REFUSED and not r.flags & dns.flags.AA and not r.answer


def test_account_wildcard_cname_chased_to_legacy_name(served):
    for account in ("123456789012", "999999999999"):  # pre-encoded and computed on demand
        r = dig(served, f"{account}.{ACCOUNT_ZONE}", "A")
        assert r.rcode() == dns.rcode.NOERROR
        cname, a = r.answer
        assert cname.rdtype == dns.rdatatype.CNAME and cname[0].target.to_text() == LEGACY_ENDPOINT + "."
        assert cname.name.to_text() == f"{account}.{ACCOUNT_ZONE}." and cname.ttl == 5
        assert a.name.to_text() == LEGACY_ENDPOINT + "." and a[0].to_text() in LB_V4


def test_tcp(served):
    r = dig(served, LEGACY_ENDPOINT, "A", tcp=True)
    assert r.rcode() == dns.rcode.NOERROR and answers(r)[0] in LB_V4
    # several queries on one connection
    with socket.create_connection(served.dns, timeout=3) as s:
        for i in range(3):
            q = dns.message.make_query(DUALSTACK_ENDPOINT, "AAAA", id=1000 + i).to_wire()
            s.sendall(struct.pack("!H", len(q)) + q)
            size = struct.unpack("!H", _recv(s, 2))[0]
            resp = dns.message.from_wire(_recv(s, size))
            assert resp.id == 1000 + i and answers(resp, "AAAA")[0] in LB_V6


def _recv(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        assert chunk, "connection closed"
        buf += chunk
    return buf


def test_edns_and_case_are_echoed(served):
    r = dig(served, "DynamoDB.US-East-1.AmazonAWS.com", "A", use_edns=0, payload=1232)
    assert r.edns == 0 and answers(r)[0] in LB_V4
    assert r.question[0].name.to_text() == "DynamoDB.US-East-1.AmazonAWS.com."
    r = dig(served, LEGACY_ENDPOINT, "A", use_edns=1)  # unknown EDNS version
    assert r.rcode() == dns.rcode.BADVERS


def test_tree_names_soa_ns_txt(served):
    ep = served.plan.for_endpoint(LEGACY_ENDPOINT)
    r = dig(served, tree.tree_root(ep), "TXT")
    assert r.answer[0][0].to_text() == '"racelab-tree generation=110"'
    r = dig(served, LEGACY_ENDPOINT, "NS")
    assert r.answer[0].ttl == 172800
    r = dig(served, LEGACY_ENDPOINT, "MX")  # a type the zone never holds
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority[0].rdtype == dns.rdatatype.SOA


def test_deleted_active_tree_answers_nodata(served):
    """The outage's symptom: the alias points at a tree that is gone."""
    endpoint = "cell-1.ddb.us-east-1.amazonaws.com"
    ep = served.plan.for_endpoint(endpoint)
    snap = _snapshot(served, endpoint)
    served.change(endpoint, tree.deletion_changes(snap, [tree.tree_root(ep)]), "clean-up")
    for tcp in (False, True):
        r = dig(served, endpoint, "A", tcp=tcp)
        assert r.rcode() == dns.rcode.NOERROR and r.answer == []
        (soa,) = r.authority
        assert soa.rdtype == dns.rdatatype.SOA and soa.ttl == 900


def _snapshot(auth, zone):
    from services.runtime.wire import snapshot_from_wire
    return snapshot_from_wire(zone, auth.list(zone))


def test_other_opcodes_and_classes(served):
    q = dns.message.make_query(LEGACY_ENDPOINT, "A")
    q.set_opcode(dns.opcode.NOTIFY)
    r = _raw(served, q.to_wire())
    assert dns.message.from_wire(r).rcode() == dns.rcode.NOTIMP
    q = dns.message.make_query(LEGACY_ENDPOINT, "A", rdclass="CH")
    assert dns.message.from_wire(_raw(served, q.to_wire())).rcode() == dns.rcode.REFUSED
    q = dns.message.make_query(LEGACY_ENDPOINT, "AXFR")
    assert dns.message.from_wire(_raw(served, q.to_wire())).rcode() == dns.rcode.REFUSED


def _raw(auth, packet: bytes, timeout: float = 2.0) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, auth.dns)
        try:
            return s.recv(65535)
        except socket.timeout:
            return None
