"""The authority as `dig` (BIND 9) and dnspython see it: authoritative only, no transfers, TC then TCP, EDNS."""

from __future__ import annotations

import subprocess

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from procs import require_binary
from services.core.plans import LEGACY_ENDPOINT
from services.core.records import RecordSet, RRType, create

pytestmark = pytest.mark.integration

BIG = f"big.{LEGACY_ENDPOINT}"  # 20 TXT strings of 201 bytes: about 4.4 kB, more than any UDP limit we offer


@pytest.fixture(scope="module")
def big(served):
    served.change(LEGACY_ENDPOINT, [create(RecordSet(BIG, RRType.TXT, 60,
                                                     tuple("x" * 199 + f"{i:02d}" for i in range(20))))])
    return served


def dig(auth, *args: str) -> str:
    host, port = auth.dns
    done = subprocess.run([require_binary("dig", "bind9-dnsutils"), f"@{host}", "-p", str(port), "+tries=1",
                           "+time=3", *args], capture_output=True, text=True, timeout=30)
    return done.stdout


def header(out: str) -> tuple[str, set[str]]:
    status = out.split("status: ", 1)[1].split(",", 1)[0]
    flags = set(out.split(";; flags: ", 1)[1].split(";", 1)[0].split())
    return status, flags


def test_dig_authoritative_answer_without_recursion(big):
    status, flags = header(dig(big, LEGACY_ENDPOINT, "A"))
    assert status == "NOERROR" and "aa" in flags and "ra" not in flags


@pytest.mark.parametrize("args", [["example.com", "A"], ["amazonaws.com", "NS"], ["version.bind", "CH", "TXT"],
                                  [LEGACY_ENDPOINT, "A", "-c", "CH"]])
def test_dig_refused_outside_the_zones(big, args):
    status, flags = header(dig(big, *args))
    assert status == "REFUSED" and "aa" not in flags and "ra" not in flags


@pytest.mark.parametrize("kind", ["AXFR", "IXFR=1"])
def test_dig_zone_transfers_refused(big, kind):
    assert "Transfer failed." in dig(big, LEGACY_ENDPOINT, kind)
    q = dns.message.make_query(LEGACY_ENDPOINT, kind.split("=")[0])
    reply = dns.query.tcp(q, *big.dns[:1], port=big.dns[1], timeout=3)
    assert reply.rcode() == dns.rcode.REFUSED and not reply.answer


def test_dig_truncates_then_falls_back_to_tcp(big):
    out = dig(big, BIG, "TXT", "+ignore", "+notcp")  # UDP only: the truncated reply itself
    status, flags = header(out)
    assert status == "NOERROR" and "tc" in flags and "ANSWER: 0" in out
    out = dig(big, BIG, "TXT")  # dig retries over TCP, as resolvers do
    assert "Truncated, retrying in TCP mode." in out
    assert header(out.split("Truncated, retrying in TCP mode.", 1)[1])[0] == "NOERROR" and "ANSWER: 20" in out
    # without EDNS the limit is 512 bytes; a large EDNS buffer takes it over UDP
    assert "tc" in header(dig(big, BIG, "TXT", "+noedns", "+ignore", "+notcp"))[1]
    out = dig(big, BIG, "TXT", "+bufsize=8192", "+notcp")
    assert "tc" not in header(out)[1] and "ANSWER: 20" in out


def test_dnspython_falls_back_to_tcp(big):
    q = dns.message.make_query(BIG, "TXT", use_edns=0, payload=1232)
    reply, used_tcp = dns.query.udp_with_fallback(q, big.dns[0], port=big.dns[1], timeout=3)
    assert used_tcp and reply.rcode() == dns.rcode.NOERROR and len(reply.answer[0]) == 20
    udp = dns.query.udp(q, big.dns[0], port=big.dns[1], timeout=3)
    assert udp.flags & dns.flags.TC and not udp.answer and udp.edns == 0


def test_dig_edns(big):
    out = dig(big, LEGACY_ENDPOINT, "A", "+edns=1", "+noednsnegotiation")
    assert header(out)[0] == "BADVERS"
    out = dig(big, LEGACY_ENDPOINT, "A", "+edns=1")  # dig negotiates down to version 0
    assert "BADVERS, retrying with EDNS version 0." in out and header(out.split("retrying", 1)[1])[0] == "NOERROR"
    out = dig(big, LEGACY_ENDPOINT, "A", "+cookie", "+nsid", "+subnet=192.0.2.0/24", "+bufsize=4096")
    assert header(out)[0] == "NOERROR" and "EDNS: version: 0" in out and "ANSWER: 1" in out
    out = dig(big, LEGACY_ENDPOINT, "A", "+noedns")
    assert header(out)[0] == "NOERROR" and "EDNS:" not in out


def test_dig_other_opcodes_and_updates(big):
    import dns.update
    update = dns.update.UpdateMessage(LEGACY_ENDPOINT)
    update.add("x", 60, "A", "192.0.2.1")
    reply = dns.query.udp(update, big.dns[0], port=big.dns[1], timeout=3)
    assert reply.rcode() == dns.rcode.NOTIMP
    assert header(dig(big, LEGACY_ENDPOINT, "A"))[0] == "NOERROR"  # and nothing was added
    assert header(dig(big, f"x.{LEGACY_ENDPOINT}", "A"))[0] == "NXDOMAIN"
