"""A hosted zone and Route 53's change-batch semantics.

A batch is all-or-nothing: CREATE fails if the record set exists, DELETE fails
unless the record set matches exactly, UPSERT replaces. An alias created or
upserted by a batch must point at a record set of the same type that exists
once the batch is applied (Route 53 rejects a dangling alias on write, but does
not stop a later batch from deleting the target - that asymmetry is how an
endpoint can come to point at nothing).

Every committed batch produces a new immutable ZoneSnapshot, so readers can
hold a snapshot for as long as they like without copying; a batch costs what it
changes, not what the zone holds (persistent maps, see ZoneSnapshot). A batch
over Route 53's quotas (1,000 values, 32,000 characters) is rejected whole.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from operator import itemgetter
from bisect import bisect_left
from functools import cached_property, lru_cache
from types import MappingProxyType
from typing import Iterable, Mapping

from immutables import Map

from .records import (SOA, Action, Change, InvalidRecordSet, RecordSet, RRType,
                      is_subdomain, normalize_name)

Key = tuple[str, RRType, str]
_TYPES = tuple(RRType)  # iterating the enum class itself is slow
_EMPTY = Map()


@dataclass(frozen=True, slots=True)
class BatchError:
    index: int  # which change in the batch
    code: str  # ALREADY_EXISTS, NOT_FOUND, MISMATCH, CONFLICT, ALIAS_TARGET_MISSING, INVALID, OUT_OF_ZONE, PROTECTED
    message: str


class BatchRejected(Exception):
    """Route 53's InvalidChangeBatch: nothing in the batch was applied."""

    def __init__(self, zone: str, errors: list[BatchError], omitted: int = 0):
        self.zone = zone
        self.errors = errors
        self.omitted = omitted  # errors the sender left out (the wire form is bounded)
        more = f" (+{len(errors) - 1 + omitted} more)" if len(errors) + omitted > 1 else ""
        super().__init__(f"{errors[0].message}{more}" if errors else f"{zone}: rejected")

    def touches(self, index: int) -> bool:
        return any(e.index == index for e in self.errors)

    @property
    def codes(self) -> set[str]:
        return {e.code for e in self.errors}


def _referent(rs: RecordSet) -> str | None:
    """The name an alias or a CNAME points at (what a change to it changes the answers of)."""
    if rs.alias_target:
        return rs.alias_target
    if rs.rtype is RRType.CNAME and rs.values:
        return normalize_name(rs.values[0])
    return None


def _parent(name: str) -> str:
    """The name one label up ("" above a single label)."""
    return name.partition(".")[2]


def _count_below(below, name: str, origin: str, delta: int) -> None:
    """Count `delta` record sets at `name` and every name above it up to the origin (a dict, or a
    map being mutated): a name with a count owns records or lies above some."""
    while True:
        count = below.get(name, 0) + delta
        if count:
            below[name] = count
        else:
            below.pop(name, None)
        if name == origin:
            return
        dot = name.find(".")
        if dot < 0:
            return
        name = name[dot + 1:]


Frozen = MappingProxyType  # a read-only view: a snapshot built from scratch cannot be changed in place either


def _map(m: Mapping) -> Map:
    return m if isinstance(m, Map) else Map(dict(m))


def _by_identifier(group: list[RecordSet]) -> tuple[RecordSet, ...]:
    """A name and type's record sets as the zone keeps them: ordered by set identifier."""
    return tuple(group) if len(group) == 1 else tuple(sorted(group, key=lambda r: r.set_identifier))


@dataclass(frozen=True, eq=False)
class ZoneSnapshot:
    """One committed state of a zone: immutable, and cheap to derive from its predecessor.

    The records and every index are persistent hash maps (immutables.Map, a HAMT): a batch makes
    a new snapshot in O(changes x log n), sharing everything it did not touch with the old one, so
    a reader may hold a snapshot for as long as it likes and a writer never copies the zone.
    """

    origin: str
    version: int
    # Each a Map, or a read-only view of a dict built by build() (see _persistent); both read alike.
    records: Mapping  # Key -> RecordSet
    _rrsets: Mapping  # (name, type) -> tuple[RecordSet, ...] sorted by set identifier
    _below: Mapping  # name -> record sets at or below it (a name with none does not exist)
    _of_type: Mapping  # RRType -> Map[Key, RecordSet]
    _referrers: Mapping  # name -> Map[owner name, count] of the aliases and CNAMEs pointing at it

    @classmethod
    def build(cls, origin: str, version: int, records: Iterable[RecordSet]) -> "ZoneSnapshot":
        """A snapshot from scratch (a zone loaded or listed whole); O(n), in plain dicts, made persistent
        maps at once only when a batch first changes it (`_persistent`). The property tests check it against
        evolve() change by change."""
        # In passes over the whole zone, each as much in C as Python allows: a restart builds the account
        # zone's million record sets here, and one loop doing all of it per record took 2.8 s of 5.6.
        by_key = {(rs.name, rs.rtype, rs.set_identifier): rs for rs in records}
        sets: dict[tuple[str, RRType], tuple[RecordSet, ...]] = {(k[0], k[1]): (rs,) for k, rs in by_key.items()
                                                                 if not k[2]}
        grouped: dict[tuple[str, RRType], list[RecordSet]] = {}
        for key, rs in by_key.items():
            if key[2]:  # set identifiers: the weighted trees' few thousand, ordered per name and type
                grouped.setdefault((key[0], key[1]), []).append(rs)
        for name_type, group in grouped.items():
            sets[name_type] = _by_identifier(group + list(sets.get(name_type, ())))
        of_type: dict[RRType, dict[Key, RecordSet]] = {}
        for key, rs in by_key.items():
            typed = of_type.get(key[1])
            if typed is None:
                typed = of_type[key[1]] = {}
            typed[key] = rs
        # What each record set points at, as _referent says: the aliases, then the CNAMEs grouped by value
        # first (a million share a handful).
        by_value: dict[tuple[str, ...], list[str]] = {}
        for rs in of_type.get(RRType.CNAME, {}).values():
            if rs.values and not rs.alias_target:
                names = by_value.get(rs.values)
                if names is None:
                    names = by_value[rs.values] = []
                names.append(rs.name)
        referrers: dict[str, Counter[str]] = {}
        for values, names in by_value.items():
            referrers.setdefault(normalize_name(values[0]), Counter()).update(names)
        for rs in by_key.values():
            if rs.alias_target:
                referrers.setdefault(rs.alias_target, Counter())[rs.name] += 1
        # Record sets at or below each name: each record set counted at its name and every name above it up
        # to the origin, one level of the whole zone at a time.
        level = list(map(itemgetter(0), by_key))
        below = Counter(level)
        while level := list(filter(None, map(_parent, filter(origin.__ne__, level)))):
            below.update(level)
        return cls(origin, version, Frozen(by_key), Frozen(sets), Frozen(dict(below)),
                   Frozen({t: Frozen(m) for t, m in of_type.items()}),
                   Frozen({t: Frozen(dict(o)) for t, o in referrers.items()}))

    @cached_property
    def _persistent(self) -> "ZoneSnapshot":
        """This snapshot in persistent maps. One built from scratch keeps the plain dicts it was built in
        (never changed after) until its first batch needs maps: a zone that is only read (a million account
        CNAMEs) never pays for them, and a restart at 1 M record sets does not either."""
        if isinstance(self.records, Map):
            return self
        return ZoneSnapshot(self.origin, self.version, _map(self.records), _map(self._rrsets), _map(self._below),
                            Map({t: _map(m) for t, m in self._of_type.items()}),
                            Map({t: _map(o) for t, o in self._referrers.items()}))

    def evolve(self, version: int, writes: Mapping[Key, RecordSet | None]) -> "ZoneSnapshot":
        """This snapshot with each key set to its record set (None: deleted); indexes kept in step."""
        base = self._persistent
        records, below, referrers = base.records.mutate(), base._below.mutate(), base._referrers.mutate()
        touched: dict[tuple[str, RRType], dict[Key, RecordSet | None]] = {}
        for key, new in writes.items():
            old = records.get(key)
            if old is new or (old is not None and new is not None and old == new):
                continue
            name, rtype, _ = key
            touched.setdefault((name, rtype), {})[key] = new
            if old is not None:
                del records[key]
                _count_below(below, name, self.origin, -1)
                base._refer(referrers, old, -1)
            if new is not None:
                records[key] = new
                _count_below(below, name, self.origin, +1)
                base._refer(referrers, new, +1)
        rrsets, of_type = base._rrsets.mutate(), base._of_type.mutate()
        by_type: dict[RRType, list[tuple[Key, RecordSet | None]]] = {}
        for name_type, group_writes in touched.items():
            group = {rs.key: rs for rs in base._rrsets.get(name_type, ())}
            for key, new in group_writes.items():
                if new is None:
                    group.pop(key, None)
                else:
                    group[key] = new
                by_type.setdefault(name_type[1], []).append((key, new))
            if group:
                rrsets[name_type] = _by_identifier(list(group.values()))
            else:
                rrsets.pop(name_type, None)
        for rtype, type_writes in by_type.items():  # one nested map edit per type, not per write
            typed = of_type.get(rtype, _EMPTY).mutate()
            for key, new in type_writes:
                if new is None:
                    typed.pop(key, None)
                else:
                    typed[key] = new
            if len(typed):
                of_type[rtype] = typed.finish()
            else:
                of_type.pop(rtype, None)
        return ZoneSnapshot(self.origin, version, records.finish(), rrsets.finish(), below.finish(),
                            of_type.finish(), referrers.finish())

    @staticmethod
    def _refer(referrers, rs: RecordSet, delta: int) -> None:
        target = _referent(rs)
        if target is None:
            return
        owners = referrers.get(target, Map())
        count = owners.get(rs.name, 0) + delta
        owners = owners.set(rs.name, count) if count else owners.delete(rs.name)
        if owners:
            referrers[target] = owners
        else:
            referrers.pop(target, None)

    def get(self, name: str, rtype: RRType, set_identifier: str = "") -> RecordSet | None:
        return self.records.get((name, rtype, set_identifier))

    def rrsets(self, name: str, rtype: RRType) -> tuple[RecordSet, ...]:
        return self._rrsets.get((name, rtype), ())

    def has_name(self, name: str) -> bool:
        """True if the name owns records or is an empty non-terminal."""
        return name in self._below

    def types_at(self, name: str) -> set[RRType]:
        return {t for t in _TYPES if (name, t) in self._rrsets}

    def at_name(self, name: str) -> list[RecordSet]:
        """Every record set the name owns."""
        rrsets = self._rrsets
        return [rs for t in _TYPES for rs in rrsets.get((name, t), ())]

    def of_type(self, rtype: RRType) -> Mapping[Key, RecordSet]:
        """The zone's record sets of one type (the few TXT records, say, without reading the rest)."""
        return self._of_type.get(rtype, Map())

    def referrers(self, name: str) -> Iterable[str]:
        """The owner names whose aliases or CNAMEs point at `name`."""
        return self._referrers.get(name, Map()).keys()

    def referents(self) -> Iterable[str]:
        """Every name some alias or CNAME of the zone points at (in the zone or not)."""
        return self._referrers.keys()

    def page(self, start: tuple = (), max_items: int = 300) -> tuple[list[RecordSet], Key | None]:
        """Route 53's ListResourceRecordSets: up to `max_items` record sets in Route 53's order from
        the first at or after `start` (a name, optionally its type and set identifier: see
        list_order), and the key of the first one left out (None when none is)."""
        orders, keys = self._listing
        i = bisect_left(orders, list_order(*start)) if start else 0
        chosen = keys[i:i + max_items]
        following = keys[i + max_items] if i + max_items < len(keys) else None
        return [self.records[k] for k in chosen], following

    @cached_property
    def _listing(self) -> tuple[list[str], list[Key]]:
        """The keys in Route 53's order, sorted once per snapshot, when it is first listed."""
        ordered = sorted([(list_order(*key), key) for key in self.records])
        return [o for o, _ in ordered], [k for _, k in ordered]

    @property
    def soa(self) -> SOA:
        return SOA.parse(self.records[(self.origin, RRType.SOA, "")].values[0])

    @property
    def soa_record(self) -> RecordSet:
        return self.records[(self.origin, RRType.SOA, "")]


# Route 53's listing order as one string per record set: the name's labels reversed and joined by
# \x01, then \x00 and the type, then \x00 and the set identifier. No name holds either character,
# and both sort below every other, so the strings order exactly as (labels reversed, type,
# identifier) tuples would, and a million of them sort twice as fast.
_LABELS, _FIELDS = "\x01", "\x00"


def list_order(name: str, rtype: RRType | None = None, set_identifier: str | None = None) -> str:
    """Where a record set stands in Route 53's listing: its name with the labels reversed
    ("com.example.www"), then its type, then its set identifier. A name alone (or a name and type)
    sorts before every record set it is the start of."""
    order = _LABELS.join(reversed(name.split(".")))
    if rtype is not None:
        order += _FIELDS + rtype.value
        if set_identifier is not None:
            order += _FIELDS + set_identifier
    return order


def apex_records(origin: str, *, soa_ttl: int = 900, negative_ttl: int = 86400,
                 ns: Iterable[str] = ("ns-1.awsdns-racelab.org",)) -> list[RecordSet]:
    """SOA and NS as Route 53 creates them with a new hosted zone.

    Route 53's defaults: SOA TTL 900 s and SOA minimum 86400 s, so resolvers
    cache a negative answer for min(900, 86400) = 15 minutes.
    """
    ns = tuple(ns)
    soa = SOA(ns[0], f"hostmaster.{origin}", 1, 7200, 900, 1209600, negative_ttl)
    return [RecordSet(origin, RRType.SOA, soa_ttl, (soa.format(),)),
            RecordSet(origin, RRType.NS, 172800, ns)]


# Route 53's quotas on one ChangeResourceRecordSets request: ResourceRecord elements (values) and
# the characters of their values, an UPSERT counting twice (it is a DELETE and a CREATE).
MAX_BATCH_RECORDS = 1000
MAX_BATCH_VALUE_CHARS = 32000


class HostedZone:
    """A zone that changes only through whole batches."""

    def __init__(self, origin: str, records: Iterable[RecordSet] | None = None, version: int = 0):
        self.origin = normalize_name(origin)
        initial = list(records) if records is not None else apex_records(self.origin)
        self._snapshot = ZoneSnapshot.build(self.origin, version, initial)
        if self._snapshot.get(self.origin, RRType.SOA) is None:
            raise ValueError(f"zone {self.origin} needs an SOA at its apex")

    @property
    def snapshot(self) -> ZoneSnapshot:
        return self._snapshot

    @property
    def version(self) -> int:
        return self._snapshot.version

    def apply(self, changes: Iterable[Change]) -> ZoneSnapshot:
        """Apply a batch atomically; raise BatchRejected and change nothing on any error."""
        self._snapshot = self.prepare(changes)
        return self._snapshot

    def publish(self, snapshot: ZoneSnapshot) -> None:
        """Make a snapshot from prepare() the zone's state (once it is durable, say)."""
        if snapshot.origin != self.origin or snapshot.version != self._snapshot.version + 1:
            raise ValueError(f"{self.origin}: snapshot version {snapshot.version} does not follow "
                             f"{self._snapshot.version}")
        self._snapshot = snapshot

    def prepare(self, changes: Iterable[Change]) -> ZoneSnapshot:
        """The snapshot this batch would make, in O(changes): every change is checked against the
        zone as the changes before it in the batch leave it (an overlay on the current snapshot),
        and the zone itself is not touched. Raises BatchRejected on any error."""
        changes = [_normalized(c) for c in changes]
        batch = _Overlay(self._snapshot)
        errors: list[BatchError] = []
        written_aliases: list[tuple[int, RecordSet]] = []
        if not changes:
            errors.append(BatchError(-1, "INVALID", "a change batch needs at least one change"))
        errors.extend(_over_quota(changes))
        for i, change in enumerate(changes):
            error = self._apply_one(batch, i, change)
            if error:
                errors.append(error)
            elif change.action is not Action.DELETE and change.record_set.is_alias:
                written_aliases.append((i, change.record_set))
        for i, rs in written_aliases:
            if batch.get(rs.key) != rs:
                continue  # replaced or deleted later in the same batch
            if not batch.has_type(rs.alias_target, rs.rtype):
                errors.append(BatchError(i, "ALIAS_TARGET_MISSING",
                                         f"Tried to create an alias that targets {rs.alias_target}, "
                                         f"type {rs.rtype.value}, but it does not exist"))
        if errors:
            raise BatchRejected(self.origin, errors)
        return self._snapshot.evolve(self._snapshot.version + 1, batch.writes)

    def _apply_one(self, batch: "_Overlay", i: int, change: Change) -> BatchError | None:
        rs = change.record_set
        try:
            _validate(rs)
        except InvalidRecordSet as exc:
            return BatchError(i, "INVALID", str(exc))
        origin = self.origin
        if not is_subdomain(rs.name, origin):
            return BatchError(i, "OUT_OF_ZONE", f"{rs.name} is not in zone {origin}")
        if rs.alias_target and not is_subdomain(rs.alias_target, origin):
            return BatchError(i, "INVALID", f"alias target {rs.alias_target} is outside zone {origin}")
        key = (rs.name, rs.rtype, rs.set_identifier)
        existing = batch.get(key)
        if change.action is Action.DELETE:
            if existing is None:
                return BatchError(i, "NOT_FOUND", f"Tried to delete {_label(rs)}, but it was not found")
            if existing != rs:
                return BatchError(i, "MISMATCH",
                                  f"Tried to delete {_label(rs)}, but the values provided do not match")
            if rs.name == origin and rs.rtype in (RRType.SOA, RRType.NS):
                return BatchError(i, "PROTECTED", f"the apex {rs.rtype.value} of {origin} cannot be deleted")
            batch.put(key, None, existing)
            return None
        if change.action is Action.CREATE and existing is not None:
            return BatchError(i, "ALREADY_EXISTS", f"Tried to create {_label(rs)}, but it already exists")
        conflict = batch.conflict(rs, existing)
        if conflict:
            return BatchError(i, "CONFLICT", conflict)
        batch.put(key, rs, existing)
        return None


def _label(rs: RecordSet) -> str:
    return f"{rs.name} {rs.rtype.value}" + (f" [{rs.set_identifier}]" if rs.set_identifier else "")


def _quota_counts(changes: Iterable[Change]) -> tuple[int, int]:
    """The ResourceRecord elements and the characters of their values a batch counts against Route
    53's quotas (an UPSERT counts twice: it is a DELETE and a CREATE)."""
    records = chars = 0
    for c in changes:
        values = c.record_set.values
        weight = 2 if c.action is Action.UPSERT else 1
        records += weight * len(values)
        for v in values:
            chars += weight * len(v)
    return records, chars


def batch_values(changes: Iterable[Change]) -> int:
    """The ResourceRecord elements a batch counts against Route 53's quota (an UPSERT twice)."""
    return _quota_counts(changes)[0]


def _over_quota(changes: list[Change]) -> list[BatchError]:
    """Route 53's InvalidChangeBatch for a request over its quotas (checked before anything else)."""
    records, chars = _quota_counts(changes)
    errors = []
    if records > MAX_BATCH_RECORDS:
        errors.append(BatchError(-1, "LIMIT_EXCEEDED",
                                 f"Number of records limit of {MAX_BATCH_RECORDS} exceeded: this batch has "
                                 f"{records} (an UPSERT counts twice); split it into several batches"))
    if chars > MAX_BATCH_VALUE_CHARS:
        errors.append(BatchError(-1, "LIMIT_EXCEEDED",
                                 f"Number of characters limit of {MAX_BATCH_VALUE_CHARS} exceeded: this batch's "
                                 f"values have {chars} (an UPSERT counts twice); split it into several batches"))
    return errors


def _normalized(change: Change) -> Change:
    """Route 53 compares names case-insensitively and takes a trailing dot as the same name."""
    rs = change.record_set
    name, target = normalize_name(rs.name), normalize_name(rs.alias_target) if rs.alias_target else ""
    if name == rs.name and target == rs.alias_target:
        return change
    return Change(change.action, replace(rs, name=name, alias_target=target))


@lru_cache(maxsize=1 << 16)
def _validate(rs: RecordSet) -> None:
    """RecordSet.validate, remembered: the same records are written again and again."""
    rs.validate()


class _Overlay:
    """A batch's writes over the snapshot it is checked against: the zone as the changes so far
    would leave it, without copying it. Per owner name it counts, lazily, the record sets of each
    type, simple and weighted, so a check costs the same at a name with one record or a thousand."""

    def __init__(self, snap: ZoneSnapshot):
        self.snap = snap
        self.writes: dict[Key, RecordSet | None] = {}
        self._counts: dict[str, dict[RRType, list[int]]] = {}  # name -> type -> [simple, weighted]

    def get(self, key: Key) -> RecordSet | None:
        return self.writes[key] if key in self.writes else self.snap.records.get(key)

    def put(self, key: Key, rs: RecordSet | None, existing: RecordSet | None) -> None:
        """Write `rs` (None: delete) over `existing`, what get(key) returned."""
        counts = self._at(key[0])
        if existing is not None:
            counts[key[1]][bool(key[2])] -= 1
        if rs is not None:
            counts.setdefault(key[1], [0, 0])[bool(key[2])] += 1
        self.writes[key] = rs

    def _at(self, name: str) -> dict[RRType, list[int]]:
        counts = self._counts.get(name)
        if counts is None:
            counts = self._counts[name] = {}
            for rs in self.snap.at_name(name):
                counts.setdefault(rs.rtype, [0, 0])[bool(rs.set_identifier)] += 1
        return counts

    def has_type(self, name: str, rtype: RRType) -> bool:
        return sum(self._at(name).get(rtype, ())) > 0

    def conflict(self, rs: RecordSet, existing: RecordSet | None) -> str | None:
        """Why writing `rs` over `existing` would break the rules for a name's record sets, if it would."""
        counts = self._at(rs.name)
        mine = 1 if existing is not None else 0  # the set rs replaces does not conflict
        others = sum(sum(c) for c in counts.values()) - mine
        cnames = sum(counts.get(RRType.CNAME, ())) - (mine if rs.rtype is RRType.CNAME else 0)
        if (rs.rtype is RRType.CNAME and others) or cnames:
            return f"RRSet of type CNAME with DNS name {rs.name} conflicts with other records at that name"
        simple, weighted = counts.get(rs.rtype, (0, 0))
        if mine:
            simple, weighted = (simple - 1, weighted) if not rs.set_identifier else (simple, weighted - 1)
        if (weighted if not rs.set_identifier else simple):
            return f"{rs.name} {rs.rtype.value}: weighted and simple record sets cannot be mixed"
        return None


@dataclass
class ZoneSet:
    """Every hosted zone an authority serves, looked up by longest suffix."""

    zones: dict[str, HostedZone] = field(default_factory=dict)

    def add(self, zone: HostedZone) -> None:
        if zone.origin in self.zones:
            raise ValueError(f"zone {zone.origin} already exists")
        self.zones[zone.origin] = zone

    def zone_for(self, name: str) -> HostedZone | None:
        name = normalize_name(name)
        while True:
            zone = self.zones.get(name)
            if zone is not None:
                return zone
            if "." not in name:
                return None
            name = name.split(".", 1)[1]

    def __getitem__(self, origin: str) -> HostedZone:
        return self.zones[normalize_name(origin)]
