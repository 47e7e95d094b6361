"""Authoritative query answering over a ZoneSet, as Route 53 answers.

Aliases are invisible to the client: the answer carries the queried name with
the target's records. A weighted record set answers with ONE of its members,
picked at random by weight, so resolution yields a probability distribution of
responses (`Outcomes`); the caller picks one with its own randomness. Keeping
every possible response explicit lets a server pre-encode them all and lets a
checker ask "can this name ever answer empty?".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from typing import Callable

from .records import RecordSet, RRType, is_subdomain, normalize_name
from .zone import ZoneSet, ZoneSnapshot

MAX_CHAIN = 8  # CNAME/alias hops before giving up (loop protection)


class Rcode(enum.IntEnum):
    NOERROR = 0
    FORMERR = 1
    SERVFAIL = 2
    NXDOMAIN = 3
    NOTIMP = 4
    REFUSED = 5


@dataclass(frozen=True, slots=True)
class RR:
    """One resource record as it goes on the wire."""

    name: str
    rtype: RRType
    ttl: int
    value: str


@dataclass(frozen=True, slots=True)
class Response:
    rcode: Rcode
    answer: tuple[RR, ...] = ()
    authority: tuple[RR, ...] = ()

    def addresses(self, qtype: RRType) -> tuple[str, ...]:
        return tuple(rr.value for rr in self.answer if rr.rtype is qtype)

    @property
    def is_nodata(self) -> bool:
        return self.rcode is Rcode.NOERROR and not any(rr.rtype is not RRType.CNAME for rr in self.answer)


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Every response a query can get, with its probability (they sum to 1)."""

    choices: tuple[tuple[float, Response], ...]

    def pick(self, u: float) -> Response:
        """The response for a uniform draw u in [0, 1)."""
        acc = 0.0
        for p, response in self.choices:
            acc += p
            if u < acc:
                return response
        return self.choices[-1][1]

    @property
    def always_empty(self) -> bool:
        return all(r.is_nodata or r.rcode is not Rcode.NOERROR for _, r in self.choices)


def _single(response: Response) -> Outcomes:
    return Outcomes(((1.0, response),))


def negative_soa(snap: ZoneSnapshot) -> RR:
    """The SOA for the authority section; its TTL caps negative caching (RFC 2308)."""
    rec = snap.soa_record
    return RR(snap.origin, RRType.SOA, min(rec.ttl, snap.soa.minimum), rec.values[0])


Lookup = Callable[[str], "ZoneSnapshot | None"]  # the served zone snapshot a name falls in


def resolve(zones: ZoneSet, qname: str, qtype: RRType, pending: ZoneSnapshot | None = None,
            visited: set[str] | None = None) -> Outcomes:
    """`pending`: a snapshot of one of the zones not yet published, resolved in place of that zone's own.
    `visited`: gets the origin of every zone the answer was read from (what a change could alter it)."""
    def lookup(name: str) -> ZoneSnapshot | None:
        zone = zones.zone_for(name)
        if zone is None:
            return None
        if visited is not None:
            visited.add(zone.origin)
        return pending if pending is not None and zone.origin == pending.origin else zone.snapshot
    return _resolve(lookup, qname, qtype)


def _resolve(lookup: Lookup, qname: str, qtype: RRType) -> Outcomes:
    qname = normalize_name(qname)
    snap = lookup(qname)
    if snap is None:
        return _single(Response(Rcode.REFUSED))
    merged: dict[Response, float] = {}
    for p, response in _answer(lookup, snap, qname, qtype, 0):
        merged[response] = merged.get(response, 0.0) + p
    return Outcomes(tuple((p, r) for r, p in merged.items()))


def _closest_wildcard(snap: ZoneSnapshot, name: str) -> str | None:
    """RFC 4592: the wildcard child of the closest existing ancestor, if there is one."""
    encloser = name
    while encloser != snap.origin and "." in encloser:
        encloser = encloser.split(".", 1)[1]
        if snap.has_name(encloser):
            break
    wildcard = f"*.{encloser}"
    return wildcard if snap.has_name(wildcard) else None


def _answer(lookup: Lookup, snap: ZoneSnapshot, name: str, qtype: RRType,
            depth: int) -> list[tuple[float, Response]]:
    owner = name
    if not snap.has_name(name):
        wildcard = _closest_wildcard(snap, name)
        if wildcard is None:
            return [(1.0, Response(Rcode.NXDOMAIN, authority=(negative_soa(snap),)))]
        name = wildcard  # synthesise from the wildcard, answer with the queried name
    if snap.rrsets(name, qtype):
        result = []
        for p, rrs in _expand(snap, name, qtype, owner, depth):
            if rrs:
                result.append((p, Response(Rcode.NOERROR, rrs)))
            else:  # an alias to nothing: the name exists, the type has no data
                result.append((p, Response(Rcode.NOERROR, authority=(negative_soa(snap),))))
        return result
    cname = snap.get(name, RRType.CNAME)
    if cname is not None and qtype is not RRType.CNAME:
        link = RR(owner, RRType.CNAME, cname.ttl, cname.values[0])
        target = normalize_name(cname.values[0])
        target_snap = lookup(target)
        if target_snap is None or depth >= MAX_CHAIN:
            return [(1.0, Response(Rcode.NOERROR, (link,)))]
        return [(p, Response(r.rcode, (link,) + r.answer, r.authority))
                for p, r in _answer(lookup, target_snap, target, qtype, depth + 1)]
    return [(1.0, Response(Rcode.NOERROR, authority=(negative_soa(snap),)))]


def _expand(snap: ZoneSnapshot, name: str, qtype: RRType, owner: str,
            depth: int) -> list[tuple[float, tuple[RR, ...]]]:
    """The possible record lists for (name, qtype), following aliases and weights."""
    rrsets = snap.rrsets(name, qtype)
    if not rrsets or depth > MAX_CHAIN:
        return [(1.0, ())]
    members = _weighted(rrsets)
    out: list[tuple[float, tuple[RR, ...]]] = []
    for p, rs in members:
        if rs.is_alias:
            out.extend((p * q, rrs) for q, rrs in _expand(snap, rs.alias_target, qtype, owner, depth + 1))
        else:
            out.append((p, tuple(RR(owner, qtype, rs.ttl, v) for v in rs.values)))
    return out


def _weighted(rrsets: tuple[RecordSet, ...]) -> list[tuple[float, RecordSet]]:
    if len(rrsets) == 1 and not rrsets[0].set_identifier:
        return [(1.0, rrsets[0])]
    total = sum(rs.weight or 0 for rs in rrsets)
    if total == 0:  # Route 53: all weights zero means equal chances
        return [(1.0 / len(rrsets), rs) for rs in rrsets]
    return [((rs.weight or 0) / total, rs) for rs in rrsets if rs.weight]


def resolve_in(snap: ZoneSnapshot, qname: str, qtype: RRType) -> Outcomes:
    """Resolve within one zone snapshot: CNAMEs are chased inside it, not into other zones."""
    return _resolve(lambda name: snap if is_subdomain(name, snap.origin) else None, qname, qtype)
