"""Durable zone state: a snapshot file plus a write-ahead log of committed batches.

    <state-dir>/zones.snapshot.json   every zone at some version (temp file, fsync, rename); its record
                                      sets grouped by all but their name, so a million alike are one group
    <state-dir>/batches.wal           one record per committed batch since that snapshot

A WAL record is framed as magic "RLW1", payload length (u32), CRC-32 of the
payload (u32), then the payload: JSON {zone, version, change_id, comment, changes}.
A batch is acknowledged only once its record is written and fdatasync'ed;
records that arrive while a sync is running are written together (group
commit). On start the snapshot is loaded, then the log replayed through the
core's HostedZone.apply (records at or below a zone's snapshot version are
skipped: a crash between snapshot and truncation leaves them behind); the log
is kept and appended to, and a new snapshot is written every `snapshot_every`
batches, on a clean stop, or when a start created zones. A torn
or corrupt record ends the log: it and anything after it are dropped (only the
last record can be torn: nothing is acknowledged before its sync).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from services.core.records import Action, Change, RecordSet, RRType, record_sets_alike
from services.core.zone import BatchRejected, HostedZone, ZoneSnapshot

log = logging.getLogger(__name__)

MAGIC = b"RLW1"
FRAME = struct.Struct("!4sII")
MAX_RECORD = 64 << 20
SNAPSHOT_FORMAT = 2  # record sets grouped by all but name and set identifier (1: one object each)
READABLE_FORMATS = (1, 2)


class StateError(Exception):
    """The state directory holds something this authority cannot use."""


class StoreFailed(Exception):
    """The log could not be written: nothing more is acknowledged."""


def record_to_json(rs: RecordSet) -> dict[str, Any]:
    d: dict[str, Any] = {"n": rs.name, "t": rs.rtype.value}
    if rs.ttl:
        d["ttl"] = rs.ttl
    if rs.values:
        d["v"] = list(rs.values)
    if rs.set_identifier:
        d["s"] = rs.set_identifier
    if rs.weight is not None:
        d["w"] = rs.weight
    if rs.alias_target:
        d["al"] = rs.alias_target
    return d


def record_from_json(d: dict[str, Any]) -> RecordSet:
    return RecordSet(d["n"], RRType(d["t"]), d.get("ttl", 0), tuple(d.get("v", ())), d.get("s", ""),
                     d.get("w"), d.get("al", ""))


@dataclass
class WalRecord:
    zone: str
    version: int  # the zone's version after the batch
    change_id: str
    changes: list[Change]
    comment: str = ""

    def encode(self) -> bytes:
        payload = json.dumps({"zone": self.zone, "version": self.version, "change_id": self.change_id,
                              "comment": self.comment,
                              "changes": [[c.action.value, record_to_json(c.record_set)] for c in self.changes]},
                             separators=(",", ":")).encode()
        return FRAME.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload

    @classmethod
    def decode(cls, payload: bytes) -> "WalRecord":
        d = json.loads(payload)
        return cls(d["zone"], d["version"], d["change_id"],
                   [Change(Action(a), record_from_json(rs)) for a, rs in d["changes"]], d.get("comment", ""))


def read_wal(path: Path) -> tuple[list[WalRecord], int, str | None]:
    """Records up to the first bad one; the length of the good prefix; why it stopped early, if it did."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0, None
    records, pos = [], 0
    while pos < len(data):
        if len(data) - pos < FRAME.size:
            return records, pos, f"torn record header at byte {pos}"
        magic, length, crc = FRAME.unpack_from(data, pos)
        if magic != MAGIC or length > MAX_RECORD:
            return records, pos, f"bad record header at byte {pos}"
        payload = data[pos + FRAME.size:pos + FRAME.size + length]
        if len(payload) < length:
            return records, pos, f"torn record at byte {pos} ({len(payload)} of {length} bytes)"
        if zlib.crc32(payload) != crc:
            return records, pos, f"checksum mismatch at byte {pos}"
        try:
            records.append(WalRecord.decode(payload))
        except (ValueError, KeyError, TypeError) as exc:
            return records, pos, f"undecodable record at byte {pos}: {exc}"
        pos += FRAME.size + length
    return records, pos, None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _groups(snap: ZoneSnapshot) -> list[dict[str, Any]]:
    """A zone's record sets grouped by everything but their name and set identifier: a million account
    CNAMEs are one group, written (and read back) with their target once."""
    groups: dict[tuple, list[RecordSet]] = {}
    for rs in snap.records.values():
        groups.setdefault((rs.rtype, rs.ttl, rs.values, rs.weight, rs.alias_target), []).append(rs)
    out = []
    for members in groups.values():
        shape = record_to_json(members[0])  # the fields they share, under the log's keys
        del shape["n"]
        shape.pop("s", None)
        shape["names"] = [rs.name for rs in members]
        if any(rs.set_identifier for rs in members):
            shape["s"] = [rs.set_identifier for rs in members]
        out.append(shape)
    return out


def _strings(items: object) -> bool:
    return isinstance(items, list) and all(isinstance(i, str) for i in items)


def _records(zone: dict[str, Any]) -> list[RecordSet]:
    if "records" in zone:  # format 1: one object per record set
        return [record_from_json(r) for r in zone["records"]]
    made: list[RecordSet] = []
    for g in zone["groups"]:
        names, identifiers, values = g["names"], g.get("s"), g.get("v", [])
        if not _strings(names) or (identifiers is not None and (
                not _strings(identifiers) or len(identifiers) != len(names))):
            raise ValueError(f"a group of {g['t']} record sets whose names or set identifiers are not a list of strings")
        if not _strings(values):
            raise ValueError(f"a group of {g['t']} record sets whose values are not a list of strings")
        alike = record_sets_alike(names, RRType(g["t"]), g.get("ttl", 0), tuple(values), g.get("w"),
                                  g.get("al", ""), identifiers)
        if alike:
            alike[0].validate()  # the shape they share (values, TTL, weight), checked once for the group
        made += alike
    return made


def write_snapshot(path: Path, snapshots: Iterable[ZoneSnapshot]) -> None:
    doc = {"format": SNAPSHOT_FORMAT, "written_at": time.time(),
           "zones": {s.origin: {"version": s.version, "groups": _groups(s)} for s in snapshots}}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(json.dumps(doc, separators=(",", ":")).encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def read_snapshot(path: Path) -> dict[str, HostedZone] | None:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StateError(f"{path}: unreadable snapshot: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") not in READABLE_FORMATS:
        raise StateError(f"{path}: not a snapshot of format {' or '.join(map(str, READABLE_FORMATS))}")
    try:
        return {origin: HostedZone(origin, _records(z), z["version"]) for origin, z in doc["zones"].items()}
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise StateError(f"{path}: bad snapshot: {exc}") from None


@dataclass
class Recovery:
    fresh: bool = False
    snapshot_zones: int = 0
    replayed: int = 0
    skipped: int = 0
    dropped: str | None = None  # why the log's tail was dropped
    added_zones: list[str] = field(default_factory=list)

    def describe(self) -> str:
        parts = ["fresh state" if self.fresh else f"snapshot of {self.snapshot_zones} zone(s)",
                 f"{self.replayed} batch(es) replayed", f"{self.skipped} already in the snapshot"]
        if self.added_zones:
            parts.append(f"zones created: {', '.join(self.added_zones)}")
        if self.dropped:
            parts.append(f"log tail dropped ({self.dropped})")
        return "; ".join(parts)


class Store:
    def __init__(self, state_dir: Path, *, snapshot_every: int = 1000,
                 on_fatal: Callable[[BaseException], None] | None = None):
        self.dir = state_dir
        self.snapshot_path = state_dir / "zones.snapshot.json"
        self.wal_path = state_dir / "batches.wal"
        self.snapshot_every = max(1, snapshot_every)
        self.on_fatal = on_fatal
        self.durable: dict[str, ZoneSnapshot] = {}  # newest durable state of each zone
        self._fd: int | None = None
        self._pending: list[tuple[bytes, ZoneSnapshot, asyncio.Future]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._since_snapshot = 0
        self._closing = False
        self.failed: BaseException | None = None
        self.sync_seconds: Callable[[float], None] = lambda s: None  # metric hook
        self.snapshots_written = 0

    # ---- start ----------------------------------------------------------

    def recover(self, initial: Callable[[frozenset[str]], list[HostedZone]]) -> tuple[dict[str, HostedZone], Recovery]:
        """Zones as of the last acknowledged batch; `initial(present)` makes the zones a first start
        (or a scenario with new zones) needs besides those already `present`."""
        info = Recovery()
        zones = read_snapshot(self.snapshot_path)
        if zones is None:
            info.fresh = True
            zones = {}
        info.snapshot_zones = len(zones)
        for zone in initial(frozenset(zones)):
            if zone.origin not in zones:
                zones[zone.origin] = zone
                if not info.fresh:
                    info.added_zones.append(zone.origin)
        records, good, info.dropped = read_wal(self.wal_path)
        for rec in records:
            zone = zones.get(rec.zone)
            if zone is None:
                raise StateError(f"{self.wal_path}: batch for unknown zone {rec.zone}")
            if rec.version <= zone.version:
                info.skipped += 1
                continue
            if rec.version != zone.version + 1:
                raise StateError(f"{self.wal_path}: zone {rec.zone} jumps from version {zone.version} "
                                 f"to {rec.version}")
            try:
                zone.apply(rec.changes)
            except BatchRejected as exc:
                raise StateError(f"{self.wal_path}: batch {rec.change_id} on {rec.zone} no longer applies: "
                                 f"{exc}") from None
            info.replayed += 1
        self.durable = {origin: z.snapshot for origin, z in zones.items()}
        self._fd = os.open(self.wal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if info.fresh or info.added_zones:
            # Everything in one snapshot, an empty log: the zones made here are on disk from now on.
            write_snapshot(self.snapshot_path, self.durable.values())
            os.ftruncate(self._fd, 0)
            self._since_snapshot = 0
        else:
            # The snapshot and the log's good records already hold this state: keep them (rewriting a
            # snapshot of a million record sets would double the restart), drop only a torn tail.
            os.ftruncate(self._fd, good)
            self._since_snapshot = len(records)
        os.fsync(self._fd)
        _fsync_dir(self.dir)
        if info.dropped:
            log.warning("write-ahead log: %s; the batch it held was never acknowledged", info.dropped)
        return zones, info

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._writer(), name="wal-writer")

    # ---- commit ---------------------------------------------------------

    async def commit(self, record: WalRecord, after: ZoneSnapshot) -> None:
        """Return once `record` is on stable storage."""
        if self.failed is not None:
            raise StoreFailed(f"write-ahead log failed earlier: {self.failed}")
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((record.encode(), after, fut))
        self._wake.set()
        await fut

    async def _writer(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            batch, self._pending = self._pending, []
            try:
                elapsed = await asyncio.to_thread(self._append, b"".join(frame for frame, _, _ in batch))
            except Exception as exc:  # the disk said no: stop acknowledging, let a restart recover
                self.failed = exc
                log.critical("write-ahead log write failed: %s; no further batch is acknowledged", exc)
                for _, _, fut in batch + self._pending:
                    if not fut.done():
                        fut.set_exception(StoreFailed(str(exc)))
                if self.on_fatal:
                    self.on_fatal(exc)
                return
            self.sync_seconds(elapsed)
            for _, after, fut in batch:
                self.durable[after.origin] = after
                if not fut.done():
                    fut.set_result(None)
            self._since_snapshot += len(batch)
            if self._since_snapshot >= self.snapshot_every:
                await self._compact()

    def _append(self, data: bytes) -> float:
        start = time.perf_counter()
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        os.fdatasync(self._fd)
        return time.perf_counter() - start

    async def _compact(self) -> None:
        """Snapshot every zone as durable now, then empty the log (only the writer appends)."""
        snaps = list(self.durable.values())
        try:
            await asyncio.to_thread(self._compact_sync, snaps)
            self._since_snapshot = 0
            self.snapshots_written += 1
        except OSError as exc:  # the log still holds everything: keep going, try again later
            log.error("snapshot failed: %s", exc)

    def _compact_sync(self, snaps: list[ZoneSnapshot]) -> None:
        write_snapshot(self.snapshot_path, snaps)
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)

    async def close(self) -> None:
        """Stop the writer after the last commit and leave a fresh snapshot behind."""
        if self._task is not None:
            self._closing = True
            self._wake.set()
            await self._task
        if self._fd is not None:
            if self.failed is None:
                try:
                    self._compact_sync(list(self.durable.values()))
                except OSError as exc:
                    log.error("final snapshot failed: %s", exc)
            os.close(self._fd)
            self._fd = None
