"""Answering DNS queries from pre-encoded responses.

After every committed batch the authority rebuilds, for the names the batch
touched and those whose aliases lead to them, the encoded response of every
question about a name the zone holds (but a plan tree's root and leaves: clients ask
for the endpoints), for every type it serves: all the Outcomes core
`resolve()` gives, keyed by the question's wire bytes (lower-case name, type,
class). A query is then answered by checking the header, one dictionary
lookup and a concatenation (`handle`, the fast path). Anything unusual takes
the slow path: dnspython parses the query, core `resolve()` answers, and the
encoded result is kept for the next identical question until a batch changes a zone it was read from.

`handle` never raises: a packet that cannot be parsed is counted and gets
FORMERR when its header is readable, nothing otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable

import dns.message
import dns.name

from services.core import tree
from services.core.records import RRType, is_subdomain, normalize_name
from services.core.resolve import Outcomes, Rcode, Response, negative_soa, resolve
from services.core.zone import ZoneSet, ZoneSnapshot

from .dnswire import (BADVERS, CLASS_IN, QR, QTYPE_BY_CODE, QTYPE_CODES, UDP_PLAIN_LIMIT, Encoded, encode,
                      header, opt_rr, qtype_name, truncated)

log = logging.getLogger(__name__)

_ONE_QUESTION = b"\x00\x01\x00\x00\x00\x00\x00\x00"  # qd=1 an=0 ns=0 ar=0
_ONE_QUESTION_OPT = b"\x00\x01\x00\x00\x00\x00\x00\x01"  # ... ar=1
_OPT_HEAD = b"\x00\x00\x29"
_OPT = opt_rr()
_NO_ZONE_TRANSFER = (251, 252)  # IXFR, AXFR: Route 53 does not serve them
MAX_MISSES = 50_000  # computed answers for questions about names not pre-encoded


class Entry:
    """Every possible response to one question, encoded."""

    __slots__ = ("single", "outcomes", "by_id")

    def __init__(self, outcomes: Outcomes, encoded: dict[int, Encoded]):
        self.outcomes = outcomes
        self.by_id = encoded  # id(Response) -> Encoded; `outcomes` keeps the Responses alive
        self.single = next(iter(encoded.values())) if len(encoded) == 1 else None

    def pick(self) -> Encoded:
        return self.single or self.by_id[id(self.outcomes.pick(random.random()))]


def _wire_name(name: str) -> tuple[tuple[bytes, ...], bytes]:
    labels = tuple(label.encode("ascii") for label in name.split("."))
    if any(not 0 < len(label) < 64 for label in labels):
        raise ValueError(f"not a wire name: {name!r}")
    return labels, b"".join(bytes((len(label),)) + label for label in labels) + b"\x00"


def _within(outcomes: Outcomes, origin: str) -> bool:
    """True if every record of every possible response is the zone's own."""
    return all(is_subdomain(rr.name, origin) for _, r in outcomes.choices for rr in r.answer + r.authority)


def _in_tree(snap: ZoneSnapshot, name: str) -> bool:
    """True for a plan tree's root or leaf. Clients get their addresses through the endpoint's alias and
    never ask for them by name, yet they are most of a zone's names and most of the work of encoding a
    whole-tree batch (300 LBs: ~100 ms a tree), so they are answered on demand instead. Decided by records
    written and deleted in the same batch as the name (the root's tag, the root's aliases to its leaves),
    so a batch's incremental rebuild and a full one agree."""
    if tree.tree_generation(snap, name) is not None:
        return True
    return any(tree.tree_generation(snap, owner) is not None for owner in snap.referrers(name))


def other_type(zones: ZoneSet, qname: str, visited: set[str] | None = None) -> Outcomes:
    """Outcomes for a type the zones never hold (MX, ANY, ...): the CNAME chain, then NODATA.

    Uses the A resolution for the name's existence and CNAME chain; the SOA is
    the core's negative SOA of the zone the chain ends in.
    """
    merged: dict[Response, float] = {}
    for p, r in resolve(zones, qname, RRType.A, visited=visited).choices:
        if r.rcode is Rcode.NOERROR:
            chain = tuple(rr for rr in r.answer if rr.rtype is RRType.CNAME)
            last = chain[-1].value if chain else qname
            zone = zones.zone_for(last)
            r = Response(Rcode.NOERROR, chain, (negative_soa(zone.snapshot),) if zone else ())
        merged[r] = merged.get(r, 0.0) + p
    return Outcomes(tuple((p, r) for r, p in merged.items()))


NAMES_PER_SLICE = 32  # names encoded between two looks at the event loop: about 6 ms at 300 LBs


@dataclass
class Pending:
    """A batch's answers, encoded but not yet served (AnswerCache.prepare, then install)."""

    origin: str
    answers: dict[str, dict[bytes, Entry] | None]  # owner name -> its answers by question key; None: none
    seconds: float = 0.0  # spent encoding them


class AnswerCache:
    def __init__(self, zones: ZoneSet):
        self.zones = zones
        self.entries: dict[bytes, Entry] = {}
        self.zone_keys: dict[str, dict[str, list[bytes]]] = {}  # zone -> owner name -> its keys
        self.misses: dict[bytes, Entry] = {}  # computed on demand, kept until a zone they were read from changes
        self._misses_of_zone: dict[str, set[bytes]] = {}  # zone origin -> keys of misses read from it
        self.stats: defaultdict[str, int] = defaultdict(int)  # "qtype|rcode" -> queries answered
        self.malformed = 0
        self.errors = 0

    # ---- building -------------------------------------------------------

    def rebuild(self, origin: str, changed: Iterable[str] | None = None) -> None:
        """Re-encode what a batch to `origin` may have changed, at once (see `prepare` for a batch
        that is not published yet).

        `changed`: owner names the batch wrote or deleted; None (pass it when the apex
        SOA changed: it is in every negative answer) rebuilds everything. Their
        answers are rebuilt, and those of every name whose aliases or CNAMEs lead to
        them (an endpoint whose tree was deleted changes without being written), found
        through the snapshot's referrer index: the cost follows the batch, not the zone.
        A wildcard changing rebuilds the zone. Only answers made wholly of one zone's
        records are pre-encoded (a CNAME into another zone, such as an account endpoint
        into the legacy name, is answered on demand and kept until a batch changes a zone it
        was read from), so a batch never re-encodes another zone.
        """
        zone = self.zones.zones.get(origin)
        if zone is None:
            return
        snap = zone.snapshot
        outcomes_of = lambda name, rtype: resolve(self.zones, name, rtype)  # noqa: E731
        self.install(Pending(origin, {name: self._encode(origin, snap, name, outcomes_of)
                                      for name in self._names(origin, snap, changed)}))

    async def prepare(self, origin: str, after: ZoneSnapshot, changed: Iterable[str] | None) -> "Pending":
        """The answers a batch's snapshot `after`, not yet published, makes: as `rebuild` would once it is,
        encoded a slice of names at a time. Queries are answered between slices, from the zone as it still is;
        `install` then swaps them in at once. A whole-tree batch of 300 LBs (601 names) held the event loop
        120-260 ms when encoded in one go."""
        started = time.perf_counter()
        outcomes_of = lambda name, rtype: resolve(self.zones, name, rtype, pending=after)  # noqa: E731
        encoded: dict[str, dict[bytes, Entry] | None] = {}
        for i, name in enumerate(self._names(origin, after, changed)):
            if i and not i % NAMES_PER_SLICE:
                await asyncio.sleep(0)
            encoded[name] = self._encode(origin, after, name, outcomes_of)
        return Pending(origin, encoded, time.perf_counter() - started)

    def install(self, pending: "Pending") -> None:
        """Swap a batch's answers in, all at once (call it with the batch's snapshot published)."""
        keys_by_name = self.zone_keys.setdefault(pending.origin, {})
        entries = self.entries
        for name, encoded in pending.answers.items():
            for key in keys_by_name.pop(name, ()):
                entries.pop(key, None)
            if encoded is not None:
                entries.update(encoded)
                keys_by_name[name] = list(encoded)
        # Only answers read from this zone can have changed: an account name's CNAME to the regional name
        # is not computed again after every batch to every other zone.
        misses = self.misses
        for key in self._misses_of_zone.pop(pending.origin, ()):
            misses.pop(key, None)

    def rebuild_all(self) -> None:
        for origin in list(self.zones.zones):
            self.rebuild(origin, None)

    async def warm(self, lock_of: Callable[[str], asyncio.Lock]) -> int:
        """Pre-encode every zone's answers after a start, a slice of names at a time, while queries are
        already being answered (on demand, as any name not pre-encoded is); returns the names encoded. A
        restart at 1 M record sets spent 1.4 s of its 5 encoding answers before it answered anything.
        Each zone is encoded and swapped in under `lock_of(zone)`, the lock its batches hold from prepare
        to install, so a batch is wholly before or wholly after: an older encoding never replaces a newer
        one, and a batch that re-encodes the whole zone (an SOA change) sees what the warm-up installed."""
        names = 0
        for origin in list(self.zones.zones):
            async with lock_of(origin):
                zone = self.zones.zones.get(origin)
                if zone is None:
                    continue
                pending = await self.prepare(origin, zone.snapshot, None)
                self.install(pending)
                names += sum(1 for encoded in pending.answers.values() if encoded is not None)
        return names

    def _names(self, origin: str, snap: ZoneSnapshot, changed: Iterable[str] | None) -> set[str]:
        """The owner names whose answers a batch that wrote `changed` (None: everything) may change."""
        if changed is not None:
            changed = set(changed)
            if any(name.startswith("*.") for name in changed):
                changed = None
        if changed is None:
            return set(self.zone_keys.get(origin, ())) | self._owners(origin, snap)
        return self._affected(snap, changed)

    @staticmethod
    def _owners(origin: str, snap: ZoneSnapshot) -> set[str]:
        """Every owner name whose answers may be pre-encoded: all but those whose record set is a CNAME out
        of the zone (answered on demand), found through the indexes rather than name by name, so a zone of a
        million account CNAMEs is not walked at every start (that took 6-7 s of a restart at 1 M)."""
        names = {name for rtype in RRType if rtype is not RRType.CNAME for name, _, _ in snap.of_type(rtype)}
        for target in snap.referents():
            if is_subdomain(target, origin):
                names.update(snap.referrers(target))
        return names

    @staticmethod
    def _affected(snap: ZoneSnapshot, changed: set[str]) -> set[str]:
        """`changed` and every name whose aliases or in-zone CNAMEs reach it."""
        seen, todo = set(changed), list(changed)
        while todo:
            for owner in snap.referrers(todo.pop()):
                if owner not in seen:
                    seen.add(owner)
                    todo.append(owner)
        return seen

    def _encode(self, origin: str, snap: ZoneSnapshot, name: str,
                outcomes_of: Callable[[str, RRType], Outcomes]) -> dict[bytes, Entry] | None:
        """Every pre-encoded answer about `name` in `snap`, by question key; None: it has none (gone, or
        answered on demand)."""
        if not snap.at_name(name):
            return None  # gone (or never a record owner): the slow path answers it
        if _in_tree(snap, name):
            return None  # inside a tree: nobody asks for it by name; the slow path answers it if asked
        cname = snap.get(name, RRType.CNAME)
        if cname is not None and not is_subdomain(normalize_name(cname.values[0]), origin):
            return None  # answered from another zone: on demand
        try:
            labels, wire = _wire_name(name)
        except (ValueError, UnicodeError):
            return None  # not representable as a plain wire name: the slow path answers it
        encoded = {}
        for rtype, code in QTYPE_CODES.items():
            outcomes = outcomes_of(name, rtype)
            if _within(outcomes, origin):  # an in-zone chain that leaves the zone: on demand
                encoded[wire + struct.pack("!HH", code, CLASS_IN)] = self._entry(labels, name, code, outcomes)
        return encoded

    @staticmethod
    def _entry(labels: tuple[bytes, ...], name: str, qtype: int, outcomes: Outcomes) -> Entry:
        return Entry(outcomes, {id(r): encode(labels, name, qtype, r) for _, r in outcomes.choices})

    def compute(self, labels: tuple[bytes, ...], name: str, qtype: int, qclass: int,
                visited: set[str] | None = None) -> Entry:
        """The answers to a question that was not pre-encoded (`visited`: gets the zones they were read from)."""
        if qclass != CLASS_IN or qtype in _NO_ZONE_TRANSFER or not labels:
            outcomes = Outcomes(((1.0, Response(Rcode.REFUSED)),))
        elif qtype in QTYPE_BY_CODE:
            outcomes = resolve(self.zones, name, QTYPE_BY_CODE[qtype], visited=visited)
        else:
            outcomes = other_type(self.zones, name, visited)
        return self._entry(labels, name.lower(), qtype, outcomes)

    # ---- answering ------------------------------------------------------

    def handle(self, q: bytes, udp: bool = True) -> bytes | None:
        """The response to one query message, or None to send nothing."""
        counts = q[4:12]
        if counts == _ONE_QUESTION:  # implies len(q) >= 12
            if not q[2] & 0xF8:  # QR clear, opcode QUERY
                question = q[12:]
                key = question.lower()
                e = self.entries.get(key) or self.misses.get(key)
                if e is not None:
                    enc = e.pick()
                    self.stats[enc.stat] += 1
                    resp = q[:2] + enc.head[q[2] & 1] + question + enc.body
                    if udp and len(resp) > UDP_PLAIN_LIMIT:
                        return truncated(q[:2], q[2] & 1, question, enc, False)
                    return resp
        elif counts == _ONE_QUESTION_OPT:
            # a bare OPT at the end: version 0, no options
            if not q[2] & 0xF8 and q[-11:-8] == _OPT_HEAD and q[-6:-4] == b"\x00\x00" and q[-2:] == b"\x00\x00":
                question = q[12:-11]
                key = question.lower()
                e = self.entries.get(key) or self.misses.get(key)
                if e is not None:
                    enc = e.pick()
                    self.stats[enc.stat] += 1
                    resp = q[:2] + enc.head_edns[q[2] & 1] + question + enc.body + _OPT
                    if udp and len(resp) > max(UDP_PLAIN_LIMIT, (q[-8] << 8) | q[-7]):
                        return truncated(q[:2], q[2] & 1, question, enc, True)
                    return resp
        try:
            return self._slow(q, udp)
        except Exception:  # never let one packet take the server down
            self.errors += 1
            log.exception("internal error answering a query")
            if len(q) >= 12 and not q[2] & 0x80:
                self.stats["OTHER|SERVFAIL"] += 1
                return header(struct.unpack_from("!H", q)[0], Rcode.SERVFAIL, q[2] & 1)
            return None

    def _slow(self, q: bytes, udp: bool) -> bytes | None:
        if len(q) < 12:
            self.malformed += 1
            return None
        qid, flags = struct.unpack_from("!HH", q)
        rd = (flags >> 8) & 1
        if flags & QR:
            self.malformed += 1  # a response sent to us: never answer it (reflection loops)
            return None
        opcode = (flags >> 11) & 0xF
        if opcode != 0:
            self.stats["OTHER|NOTIMP"] += 1
            return header(qid, Rcode.NOTIMP, rd, opcode=opcode)
        try:
            msg = dns.message.from_wire(q, ignore_trailing=False, one_rr_per_rrset=True)
        except Exception:  # dnspython: FormError, ShortHeader, BadPointer, TrailingJunk, BadEDNS, ...
            self.malformed += 1
            self.stats["OTHER|FORMERR"] += 1
            return header(qid, Rcode.FORMERR, rd)
        if len(msg.question) != 1:
            self.malformed += 1
            self.stats["OTHER|FORMERR"] += 1
            return header(qid, Rcode.FORMERR, rd)
        qrrset = msg.question[0]
        name: dns.name.Name = qrrset.name
        question = name.to_wire() + struct.pack("!HH", qrrset.rdtype, qrrset.rdclass)
        edns = msg.edns >= 0
        if edns and msg.edns > 0:
            self.stats[f"{qtype_name(qrrset.rdtype)}|BADVERS"] += 1
            return header(qid, 0, rd, 1, 0, 0, 1) + question + opt_rr(ext_rcode=BADVERS >> 4)
        labels = name.labels[:-1] if name.is_absolute() else name.labels
        key = question[:-4].lower() + question[-4:]
        e = self.entries.get(key) or self.misses.get(key)
        if e is None:
            text = name.to_text(omit_final_dot=True) if labels else ""
            visited: set[str] = set()
            e = self.compute(labels, text, qrrset.rdtype, qrrset.rdclass, visited)
            tc = question[-4:]
            if tc.lower() == tc == tc.upper():  # no letters in type/class: lower() cannot make two keys one
                if len(self.misses) >= MAX_MISSES:
                    self.misses.clear()
                    self._misses_of_zone.clear()
                self.misses[key] = e
                for origin in visited:
                    self._misses_of_zone.setdefault(origin, set()).add(key)
        enc = e.pick()
        self.stats[enc.stat] += 1
        if edns:
            resp = struct.pack("!H", qid) + enc.head_edns[rd] + question + enc.body + _OPT
            limit = max(UDP_PLAIN_LIMIT, msg.payload)
        else:
            resp = struct.pack("!H", qid) + enc.head[rd] + question + enc.body
            limit = UDP_PLAIN_LIMIT
        if udp and len(resp) > limit:
            return truncated(struct.pack("!H", qid), rd, question, enc, edns)
        return resp


__all__ = ["AnswerCache", "Entry", "other_type"]
