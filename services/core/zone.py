"""A hosted zone and Route 53's change-batch semantics.

A batch is all-or-nothing: CREATE fails if the record set exists, DELETE fails
unless the record set matches exactly, UPSERT replaces. An alias created or
upserted by a batch must point at a record set of the same type that exists
once the batch is applied (Route 53 rejects a dangling alias on write, but does
not stop a later batch from deleting the target - that asymmetry is how an
endpoint can come to point at nothing).

Every committed batch produces a new immutable ZoneSnapshot, so readers can
hold a snapshot for as long as they like without copying.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from types import MappingProxyType
from typing import Iterable, Mapping

from .records import (SOA, Action, Change, InvalidRecordSet, RecordSet, RRType,
                      is_subdomain, normalize_name)

Key = tuple[str, RRType, str]


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


@dataclass(frozen=True)
class ZoneSnapshot:
    """One committed state of a zone. Immutable; indexes are built on first use."""

    origin: str
    version: int
    records: Mapping[Key, RecordSet]

    def get(self, name: str, rtype: RRType, set_identifier: str = "") -> RecordSet | None:
        return self.records.get((name, rtype, set_identifier))

    def rrsets(self, name: str, rtype: RRType) -> tuple[RecordSet, ...]:
        return self._by_name_type.get((name, rtype), ())

    def has_name(self, name: str) -> bool:
        """True if the name owns records or is an empty non-terminal."""
        return name in self._names

    def types_at(self, name: str) -> set[RRType]:
        return {t for (n, t) in self._by_name_type if n == name}

    @property
    def soa(self) -> SOA:
        return SOA.parse(self.records[(self.origin, RRType.SOA, "")].values[0])

    @property
    def soa_record(self) -> RecordSet:
        return self.records[(self.origin, RRType.SOA, "")]

    @cached_property
    def _by_name_type(self) -> dict[tuple[str, RRType], tuple[RecordSet, ...]]:
        index: dict[tuple[str, RRType], list[RecordSet]] = {}
        for (name, rtype, _), rs in self.records.items():
            index.setdefault((name, rtype), []).append(rs)
        return {k: tuple(sorted(v, key=lambda r: r.set_identifier)) for k, v in index.items()}

    @cached_property
    def _names(self) -> frozenset[str]:
        names: set[str] = set()
        for name, _, _ in self.records:
            while name not in names:
                names.add(name)
                if name == self.origin or "." not in name:
                    break
                name = name.split(".", 1)[1]
        return frozenset(names)


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


class HostedZone:
    """A zone that changes only through whole batches."""

    def __init__(self, origin: str, records: Iterable[RecordSet] | None = None, version: int = 0):
        self.origin = normalize_name(origin)
        initial = list(records) if records is not None else apex_records(self.origin)
        data = {rs.key: rs for rs in initial}
        if (self.origin, RRType.SOA, "") not in data:
            raise ValueError(f"zone {self.origin} needs an SOA at its apex")
        self._snapshot = ZoneSnapshot(self.origin, version, MappingProxyType(data))

    @property
    def snapshot(self) -> ZoneSnapshot:
        return self._snapshot

    @property
    def version(self) -> int:
        return self._snapshot.version

    def apply(self, changes: Iterable[Change]) -> ZoneSnapshot:
        """Apply a batch atomically; raise BatchRejected and change nothing on any error."""
        changes = [_normalized(c) for c in changes]
        work = dict(self._snapshot.records)
        names = _NameIndex(work)
        errors: list[BatchError] = []
        written_aliases: list[tuple[int, RecordSet]] = []
        if not changes:
            errors.append(BatchError(-1, "INVALID", "a change batch needs at least one change"))
        for i, change in enumerate(changes):
            error = self._apply_one(work, names, i, change)
            if error:
                errors.append(error)
            elif change.action is not Action.DELETE and change.record_set.is_alias:
                written_aliases.append((i, change.record_set))
        for i, rs in written_aliases:
            if work.get(rs.key) != rs:
                continue  # replaced or deleted later in the same batch
            if not names.has_type(rs.alias_target, rs.rtype):
                errors.append(BatchError(i, "ALIAS_TARGET_MISSING",
                                         f"Tried to create an alias that targets {rs.alias_target}, "
                                         f"type {rs.rtype.value}, but it does not exist"))
        if errors:
            raise BatchRejected(self.origin, errors)
        self._snapshot = ZoneSnapshot(self.origin, self._snapshot.version + 1, MappingProxyType(work))
        return self._snapshot

    def _apply_one(self, work: dict[Key, RecordSet], names: "_NameIndex", i: int,
                   change: Change) -> BatchError | None:
        rs = change.record_set
        try:
            _validate(rs)
        except InvalidRecordSet as exc:
            return BatchError(i, "INVALID", str(exc))
        if not is_subdomain(rs.name, self.origin):
            return BatchError(i, "OUT_OF_ZONE", f"{rs.name} is not in zone {self.origin}")
        if rs.is_alias and not is_subdomain(rs.alias_target, self.origin):
            return BatchError(i, "INVALID", f"alias target {rs.alias_target} is outside zone {self.origin}")
        existing = work.get(rs.key)
        label = f"{rs.name} {rs.rtype.value}" + (f" [{rs.set_identifier}]" if rs.set_identifier else "")
        if change.action is Action.DELETE:
            if existing is None:
                return BatchError(i, "NOT_FOUND", f"Tried to delete {label}, but it was not found")
            if existing != rs:
                return BatchError(i, "MISMATCH", f"Tried to delete {label}, but the values provided do not match")
            if rs.name == self.origin and rs.rtype in (RRType.SOA, RRType.NS):
                return BatchError(i, "PROTECTED", f"the apex {rs.rtype.value} of {self.origin} cannot be deleted")
            del work[rs.key]
            names.discard(rs.key)
            return None
        if change.action is Action.CREATE and existing is not None:
            return BatchError(i, "ALREADY_EXISTS", f"Tried to create {label}, but it already exists")
        conflict = names.conflict(rs)
        if conflict:
            return BatchError(i, "CONFLICT", conflict)
        work[rs.key] = rs
        names.add(rs.key)
        return None


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


class _NameIndex:
    """The keys of a batch's working copy, by owner name, kept in step with it."""

    def __init__(self, work: Mapping[Key, RecordSet]):
        self._keys: dict[str, set[Key]] = {}
        for key in work:
            self.add(key)

    def add(self, key: Key) -> None:
        self._keys.setdefault(key[0], set()).add(key)

    def discard(self, key: Key) -> None:
        self._keys.get(key[0], set()).discard(key)

    def has_type(self, name: str, rtype: RRType) -> bool:
        return any(t is rtype for (_, t, _) in self._keys.get(name, ()))

    def conflict(self, rs: RecordSet) -> str | None:
        for key in self._keys.get(rs.name, ()):
            _, rtype, set_id = key
            if key == rs.key:
                continue
            if rtype is RRType.CNAME or rs.rtype is RRType.CNAME:
                return f"RRSet of type CNAME with DNS name {rs.name} conflicts with other records at that name"
            if rtype is rs.rtype and bool(set_id) != bool(rs.set_identifier):
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
