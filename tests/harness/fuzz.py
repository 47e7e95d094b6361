"""Generated DNS packets for fuzzing the authority (tests and bench/fuzz_dns.py).

Three kinds, in equal shares, reproducible from a seed:
- mutated valid queries: a query for a real or absent name (any type, class,
  EDNS, options, case) with bytes flipped, inserted, deleted or cut off;
- random bytes of random length;
- structured malformations: lying section counts, compression loops and
  forward pointers, over-long labels and names, bad or doubled OPT records,
  responses and other opcodes, zone transfers, bad classes.

`fuzz_udp` and `fuzz_tcp` send them to a running server; `check_answers`
asks the questions whose answers must not change.
"""

from __future__ import annotations

import random
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Iterator

import dns.flags
import dns.message
import dns.query
import dns.rcode

from services.core.plans import ACCOUNT_ZONE, DEFAULT_ENDPOINTS, LEGACY_ENDPOINT

NAMES = [ep.name for ep in DEFAULT_ENDPOINTS] + [f"123456789012.{ACCOUNT_ZONE}", f"nx.{LEGACY_ENDPOINT}",
                                                  "example.com", "amazonaws.com", ""]
QTYPES = [1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 48, 65, 251, 252, 255, 0, 65535]


def _name_wire(name: str) -> bytes:
    return b"".join(bytes((len(label),)) + label.encode() for label in name.split(".") if label) + b"\x00"


def _header(qid: int, flags: int = 0x0100, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def _opt(payload: int = 1232, version: int = 0, options: bytes = b"") -> bytes:
    return b"\x00" + struct.pack("!HHIH", 41, payload, version << 16, len(options)) + options


def valid_query(rng: random.Random) -> bytes:
    name = rng.choice(NAMES)
    wire = bytearray(_name_wire(name))
    for i, c in enumerate(wire):  # DNS 0x20: random case
        if 97 <= c <= 122 and rng.random() < 0.3:
            wire[i] = c ^ 0x20
    edns = rng.random() < 0.6
    q = _header(rng.getrandbits(16), 0x0100 if rng.random() < 0.8 else 0, ar=1 if edns else 0) + bytes(wire)
    q += struct.pack("!HH", rng.choice(QTYPES), 1 if rng.random() < 0.9 else rng.choice((3, 4, 255)))
    if edns:
        options = b""
        if rng.random() < 0.5:
            options += struct.pack("!HH", 10, 8) + rng.randbytes(8)  # client cookie, as dig sends
        q += _opt(rng.choice((512, 1232, 4096)), 0 if rng.random() < 0.95 else 1, options)
    return q


def mutated(rng: random.Random) -> bytes:
    packet = bytearray(valid_query(rng))
    for _ in range(rng.randint(1, 4)):
        kind, at = rng.randrange(4), rng.randrange(len(packet) + 1)
        if kind == 0 and at < len(packet):
            packet[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            packet[at:at] = rng.randbytes(rng.randint(1, 3))
        elif kind == 2:
            del packet[at:at + rng.randint(1, 4)]
        else:
            del packet[at:]
    return bytes(packet)


def random_bytes(rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice((rng.randrange(12), rng.randrange(64), rng.randrange(600))))


def malformed(rng: random.Random) -> bytes:
    qid = rng.getrandbits(16)
    qname = _name_wire(rng.choice(NAMES[:-1]))
    tail = struct.pack("!HH", rng.choice(QTYPES), 1)
    kind = rng.randrange(14)
    if kind == 0:  # lying counts
        return _header(qid, qd=rng.getrandbits(16), an=rng.getrandbits(16), ns=rng.getrandbits(16),
                       ar=rng.getrandbits(16)) + qname + tail
    if kind == 1:  # compression pointer to itself, forward, or out of the packet
        return _header(qid) + struct.pack("!H", 0xC000 | rng.choice((12, 13, 0x3FFF, rng.randrange(64)))) + tail
    if kind == 2:  # a pointer loop through two labels
        return _header(qid) + b"\x01a\xc0\x0e" + tail
    if kind == 3:  # label over 63 bytes, or a label type (0x40, 0x80) that does not exist
        return _header(qid) + bytes((rng.choice((64, 0x41, 0x80, 0xBF)),)) + b"a" * 70 + b"\x00" + tail
    if kind == 4:  # name over 255 bytes
        return _header(qid) + b"\x3f" + b"a" * 63 + (b"\x3f" + b"b" * 63) * 4 + b"\x00" + tail
    if kind == 5:  # OPT with a lying length, two OPTs, OPT in the answer section
        choice = rng.randrange(3)
        if choice == 0:
            return _header(qid, ar=1) + qname + tail + b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x01\x00"
        if choice == 1:
            return _header(qid, ar=2) + qname + tail + _opt() + _opt()
        return _header(qid, an=1) + qname + tail + _opt()
    if kind == 6:  # EDNS options with lying lengths
        return _header(qid, ar=1) + qname + tail + _opt(options=struct.pack("!HH", rng.getrandbits(16), 200) + b"x")
    if kind == 7:  # a response (QR set) or another opcode
        return _header(qid, rng.choice((0x8000, 0x8400, 0x2800, 0x1000, 0x7800))) + qname + tail
    if kind == 8:  # zone transfers, class ANY/CH/NONE
        return _header(qid) + qname + struct.pack("!HH", rng.choice((251, 252)), rng.choice((1, 3, 254, 255)))
    if kind == 9:  # zero questions, with or without records
        return _header(qid, qd=0, ar=rng.randrange(2)) + (_opt() if rng.random() < 0.5 else b"")
    if kind == 10:  # question cut inside the name or the type
        full = _header(qid) + qname + tail
        return full[:rng.randrange(12, len(full))]
    if kind == 11:  # trailing junk
        return _header(qid) + qname + tail + rng.randbytes(rng.randint(1, 40))
    if kind == 12:  # many records claimed and present, garbage rdata
        rr = b"\xc0\x0c" + struct.pack("!HHIH", rng.choice((1, 16, 41, 250)), 1, 0, 4) + rng.randbytes(4)
        n = rng.randint(1, 30)
        return _header(qid, an=n) + qname + tail + rr * n
    return _header(qid, rng.getrandbits(16) & ~0x8000) + qname + tail  # every flag bit


GENERATORS = (mutated, random_bytes, malformed)


def packets(seed: int, count: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    for i in range(count):
        yield GENERATORS[i % 3](rng)


def answerable(packet: bytes) -> bool:
    """Whether a server must answer: a readable header that is not a response (RFC 1035; never answer a
    response, or two servers can be made to talk to each other forever)."""
    return len(packet) >= 12 and not packet[2] & 0x80


@dataclass
class FuzzStats:
    sent: int = 0
    answerable: int = 0  # packets a correct server answers (FORMERR at worst)
    answered: int = 0
    seconds: float = 0.0
    rcodes: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    @property
    def unanswered(self) -> int:
        return self.answerable - self.answered

    def count(self, response: bytes) -> None:
        self.answered += 1
        name = dns.rcode.to_text(response[3] & 0xF) if len(response) >= 4 else "SHORT"
        self.rcodes[name] = self.rcodes.get(name, 0) + 1


SENTINEL_QUESTION = _name_wire(LEGACY_ENDPOINT) + struct.pack("!HH", 99, 1)  # SPF: a type nothing here asks


def _sentinel(qid: int) -> bytes:
    return _header(qid, 0x0100) + SENTINEL_QUESTION


def fuzz_udp(address: tuple[str, int], seed: int, count: int, window: int = 256, timeout: float = 5.0) -> FuzzStats:
    """Send `count` packets in windows, each closed by a sentinel query whose answer means the server has
    read the whole window (one socket, one queue, read in order): nothing overtakes the server's reading."""
    stats = FuzzStats()
    gen = packets(seed, count)
    start = time.perf_counter()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.settimeout(timeout)
        s.connect(address)
        sentinel_id = 0
        while stats.sent < count:
            for packet in gen:
                s.send(packet)
                stats.sent += 1
                stats.answerable += answerable(packet)
                if stats.sent % window == 0:
                    break
            sentinel_id = (sentinel_id + 1) & 0xFFFF
            s.send(_sentinel(sentinel_id))
            while True:
                try:
                    reply = s.recv(65535)
                except ConnectionRefusedError:
                    raise RuntimeError("the DNS server is gone (connection refused)") from None
                except socket.timeout:
                    raise RuntimeError(f"no answer to sentinel {sentinel_id} within {timeout}s after "
                                       f"{stats.sent} packets") from None
                if reply[:2] == struct.pack("!H", sentinel_id) and reply[12:12 + len(SENTINEL_QUESTION)] \
                        == SENTINEL_QUESTION:
                    break
                stats.count(reply)
    stats.seconds = time.perf_counter() - start
    return stats


def fuzz_tcp(address: tuple[str, int], seed: int, count: int, per_connection: int = 64,
             timeout: float = 5.0) -> FuzzStats:
    """Send `count` packets over TCP as framed messages, up to `per_connection` per connection. A server
    closes a stream whose message it cannot answer, so a connection's batch ends at such a message: every
    packet is read by the server. Some batches end with a lying length prefix instead."""
    stats = FuzzStats()
    gen = packets(seed, count)
    rng = random.Random(seed)
    start = time.perf_counter()
    pending = None
    while stats.sent < count:
        batch = [pending] if pending is not None else []
        pending = None
        for packet in gen:
            if len(batch) == per_connection:
                pending = packet
                break
            batch.append(packet)
            if not answerable(packet):
                break
        stream = b"".join(struct.pack("!H", len(p)) + p for p in batch)
        if answerable(batch[-1]) and rng.random() < 0.05:  # a frame promising more than it brings
            stream += rng.choice((b"\xff\xff" + b"x" * 10, b"\x00", b"\x00\x20\x12"))
        with socket.create_connection(address, timeout=timeout) as s:
            try:
                s.sendall(stream)
                s.shutdown(socket.SHUT_WR)
                buf = b""
                while chunk := s.recv(65536):
                    buf += chunk
            except socket.timeout:
                raise RuntimeError(f"TCP connection not answered or closed within {timeout}s") from None
        while len(buf) >= 2:
            size = struct.unpack_from("!H", buf)[0]
            if len(buf) < 2 + size:
                raise RuntimeError("the server sent a torn TCP frame")
            stats.count(buf[2:2 + size])
            buf = buf[2 + size:]
        stats.sent += len(batch)
        stats.answerable += sum(map(answerable, batch))
    stats.seconds = time.perf_counter() - start
    return stats


def check_answers(address: tuple[str, int], lb_addresses: set[str]) -> list[str]:
    """What must still be true after fuzzing; the list of what is not (empty: all good)."""
    host, port = address
    problems = []

    def ask(name: str, rdtype: str, tcp: bool = False) -> dns.message.Message:
        q = dns.message.make_query(name, rdtype)
        return (dns.query.tcp if tcp else dns.query.udp)(q, host, port=port, timeout=3)

    for tcp in (False, True):
        how = "TCP" if tcp else "UDP"
        r = ask(LEGACY_ENDPOINT, "A", tcp)
        got = {rd.address for rrset in r.answer for rd in rrset}
        if r.rcode() != dns.rcode.NOERROR or not got or not got <= lb_addresses or not r.flags & dns.flags.AA:
            problems.append(f"{how} {LEGACY_ENDPOINT} A: {dns.rcode.to_text(r.rcode())} {sorted(got)}")
        r = ask(f"nx.{LEGACY_ENDPOINT}", "A", tcp)
        if r.rcode() != dns.rcode.NXDOMAIN or not r.authority:
            problems.append(f"{how} nx.{LEGACY_ENDPOINT}: {dns.rcode.to_text(r.rcode())}")
        r = ask("example.com", "A", tcp)
        if r.rcode() != dns.rcode.REFUSED:
            problems.append(f"{how} example.com: {dns.rcode.to_text(r.rcode())} (want REFUSED)")
        r = ask(LEGACY_ENDPOINT, "AXFR", tcp)
        if r.rcode() != dns.rcode.REFUSED or r.answer:
            problems.append(f"{how} AXFR: {dns.rcode.to_text(r.rcode())}")
    r = ask(f"123456789012.{ACCOUNT_ZONE}", "A")
    if r.rcode() != dns.rcode.NOERROR or not any(rrset.rdtype == 1 for rrset in r.answer):
        problems.append(f"account name A: {dns.rcode.to_text(r.rcode())} {r.answer}")
    return problems
