"""DNS wire format for the authority's answers: encoding only, no I/O.

A response is pre-encoded once per (question, outcome) as three pieces, so a
query is answered by concatenation:

    query id (2) + head (flags and counts, 10) + the query's question + body

`body` is the answer/authority sections; its compression pointers point into
the question at offset 12, so any question with the same bytes up to letter
case (DNS 0x20) can be echoed as the client sent it.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from services.core.records import RRType
from services.core.resolve import RR, Rcode, Response

QTYPE_CODES = {RRType.A: 1, RRType.NS: 2, RRType.CNAME: 5, RRType.SOA: 6, RRType.TXT: 16, RRType.AAAA: 28}
QTYPE_BY_CODE = {v: k for k, v in QTYPE_CODES.items()}
# Names for the metric label; anything else is "OTHER" (labels stay bounded).
QTYPE_NAMES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV",
               43: "DS", 48: "DNSKEY", 64: "SVCB", 65: "HTTPS", 251: "IXFR", 252: "AXFR", 255: "ANY"}
CLASS_IN = 1
QR, AA, TC, RD = 0x8000, 0x0400, 0x0200, 0x0100
BADVERS = 16
EDNS_PAYLOAD = 1232  # what we advertise (DNS flag day 2020)
UDP_PLAIN_LIMIT = 512
_HOSTNAME_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_*")


def qtype_name(code: int) -> str:
    return QTYPE_NAMES.get(code, "OTHER")


def rcode_name(code: int) -> str:
    if code == BADVERS:
        return "BADVERS"
    try:
        return Rcode(code).name
    except ValueError:
        return "OTHER"


def opt_rr(payload: int = EDNS_PAYLOAD, ext_rcode: int = 0) -> bytes:
    """An OPT pseudo-record (RFC 6891) with no options."""
    return b"\x00\x00\x29" + struct.pack("!HBBHH", payload, ext_rcode, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Encoded:
    """One response, ready to be stitched to a query's id and question."""

    head: tuple[bytes, bytes]  # flags + counts (no EDNS), indexed by the query's RD bit
    head_edns: tuple[bytes, bytes]  # the same with one more additional record (our OPT)
    body: bytes
    rcode: int
    qtype_label: str
    stat: str  # metric key "qtype|rcode"


def _flags(rcode: int, rd: int, tc: bool = False) -> int:
    aa = AA if rcode in (Rcode.NOERROR, Rcode.NXDOMAIN) else 0
    return QR | aa | (RD if rd else 0) | (TC if tc else 0) | (rcode & 0xF)


def header(qid: int, rcode: int, rd: int, qd: int = 0, an: int = 0, ns: int = 0, ar: int = 0,
           tc: bool = False, opcode: int = 0) -> bytes:
    return struct.pack("!HHHHHH", qid, _flags(rcode, rd, tc) | (opcode & 0xF) << 11, qd, an, ns, ar)


class _Writer:
    """A message being written, with RFC 1035 name compression against what is already there."""

    def __init__(self, qlabels: tuple[bytes, ...], qname_text: str):
        self.buf = bytearray(12)
        self.comp: dict[str, int] = {}
        # The question name at offset 12. Suffixes are remembered only when every
        # label is a plain host label, so text and wire agree; the whole name is
        # always remembered under the text it was resolved as.
        offset = 12
        plain_from = len(qlabels)
        for i in range(len(qlabels) - 1, -1, -1):
            if not (set(qlabels[i].lower()) <= _HOSTNAME_BYTES):
                break
            plain_from = i
        for i, label in enumerate(qlabels):
            if i >= plain_from:
                self.comp.setdefault(b".".join(qlabels[i:]).decode("ascii").lower(), offset)
            offset += 1 + len(label)
        if qlabels:
            self.comp[qname_text] = 12
        for label in qlabels:
            self.buf.append(len(label))
            self.buf += label
        self.buf.append(0)
        self.buf += b"\x00\x00\x00\x00"  # qtype, qclass: not needed for the body
        self.body_start = len(self.buf)

    def name(self, name: str) -> None:
        labels = name.split(".") if name else []
        for i in range(len(labels)):
            suffix = ".".join(labels[i:])
            ptr = self.comp.get(suffix)
            if ptr is not None:
                self.buf += struct.pack("!H", 0xC000 | ptr)
                return
            if len(self.buf) < 0x3FFF:
                self.comp[suffix] = len(self.buf)
            raw = labels[i].encode("ascii")
            if not 0 < len(raw) < 64:
                raise ValueError(f"bad label in {name!r}")
            self.buf.append(len(raw))
            self.buf += raw
        self.buf.append(0)

    def rr(self, rr: RR) -> None:
        self.name(rr.name)
        self.buf += struct.pack("!HHI", QTYPE_CODES[rr.rtype], CLASS_IN, rr.ttl)
        at = len(self.buf)
        self.buf += b"\x00\x00"
        if rr.rtype is RRType.A:
            self.buf += ipaddress.IPv4Address(rr.value).packed
        elif rr.rtype is RRType.AAAA:
            self.buf += ipaddress.IPv6Address(rr.value).packed
        elif rr.rtype is RRType.TXT:
            raw = rr.value.encode()
            self.buf.append(len(raw))
            self.buf += raw
        elif rr.rtype in (RRType.CNAME, RRType.NS):
            self.name(rr.value.rstrip(".").lower())
        elif rr.rtype is RRType.SOA:
            mname, rname, *nums = rr.value.split()
            self.name(mname.rstrip(".").lower())
            self.name(rname.rstrip(".").lower())
            self.buf += struct.pack("!IIIII", *(int(n) for n in nums))
        struct.pack_into("!H", self.buf, at, len(self.buf) - at - 2)


def encode(qlabels: tuple[bytes, ...], qname_text: str, qtype: int, response: Response) -> Encoded:
    """Pre-encode `response` to a question (labels as on the wire, any case)."""
    w = _Writer(qlabels, qname_text)
    for rr in response.answer:
        w.rr(rr)
    for rr in response.authority:
        w.rr(rr)
    return make_encoded(int(response.rcode), qtype, bytes(w.buf[w.body_start:]),
                        len(response.answer), len(response.authority))


def make_encoded(rcode: int, qtype: int, body: bytes = b"", an: int = 0, ns: int = 0) -> Encoded:
    def head(rd: int, ar: int) -> bytes:
        return header(0, rcode, rd, 1, an, ns, ar)[2:]
    label = qtype_name(qtype)
    return Encoded((head(0, 0), head(1, 0)), (head(0, 1), head(1, 1)), body, rcode, label,
                   f"{label}|{rcode_name(rcode)}")


def truncated(qid: bytes, rd: int, question: bytes, enc: Encoded, edns: bool) -> bytes:
    """TC set, question only: the client retries over TCP."""
    flags = _flags(enc.rcode, rd, tc=True)
    return qid + struct.pack("!HHHHH", flags, 1, 0, 0, 1 if edns else 0) + question + (opt_rr() if edns else b"")
