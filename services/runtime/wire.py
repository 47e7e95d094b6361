"""Conversions between the core's objects and the gRPC messages, in one place."""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from racelab.v1 import authority_pb2, common_pb2, planner_pb2
from services.core.plans import EndpointPlan, Plan, Target
from services.core.records import Action, Change, RecordSet, RRType, normalize_name
from services.core.zone import BatchError, BatchRejected, ZoneSnapshot

BATCH_ERRORS_KEY = "racelab-batch-errors-bin"


class WireError(ValueError):
    """A message that does not describe a valid core object (INVALID_ARGUMENT)."""


class ZoneKeptChanging(WireError):
    """Every listing of a zone was overtaken by a batch between its pages."""


_RRTYPE_TO_WIRE = {t: common_pb2.RRType.Value(t.value) for t in RRType}
_RRTYPE_FROM_WIRE = {v: k for k, v in _RRTYPE_TO_WIRE.items()}
_ACTION_TO_WIRE = {a: authority_pb2.ChangeAction.Value(a.value) for a in Action}
_ACTION_FROM_WIRE = {v: k for k, v in _ACTION_TO_WIRE.items()}


def record_to_wire(rs: RecordSet) -> common_pb2.ResourceRecordSet:
    msg = common_pb2.ResourceRecordSet(name=rs.name, type=_RRTYPE_TO_WIRE[rs.rtype], ttl_seconds=rs.ttl,
                                       values=list(rs.values), set_identifier=rs.set_identifier)
    if rs.weight is not None:
        msg.weight = rs.weight
    if rs.alias_target:
        msg.alias_target.dns_name = rs.alias_target
    return msg


def record_from_wire(msg: common_pb2.ResourceRecordSet) -> RecordSet:
    rtype = _RRTYPE_FROM_WIRE.get(msg.type)
    if rtype is None:
        raise WireError(f"record set {msg.name!r}: type is unspecified or unknown ({msg.type})")
    return RecordSet(normalize_name(msg.name), rtype, msg.ttl_seconds, tuple(msg.values), msg.set_identifier,
                     msg.weight if msg.HasField("weight") else None,
                     normalize_name(msg.alias_target.dns_name) if msg.HasField("alias_target") else "")


def change_to_wire(change: Change) -> authority_pb2.Change:
    return authority_pb2.Change(action=_ACTION_TO_WIRE[change.action], record_set=record_to_wire(change.record_set))


def change_from_wire(msg: authority_pb2.Change) -> Change:
    action = _ACTION_FROM_WIRE.get(msg.action)
    if action is None:
        raise WireError(f"change action is unspecified or unknown ({msg.action})")
    return Change(action, record_from_wire(msg.record_set))


def snapshot_from_wire(zone: str, msg: authority_pb2.ListResourceRecordSetsResponse) -> ZoneSnapshot:
    """One page as a snapshot (a zone that fits in one page, or a test's view of one page)."""
    return ZoneSnapshot.build(normalize_name(zone), msg.zone_version, map(record_from_wire, msg.record_sets))


MAX_ITEMS = 300  # Route 53's most record sets a ListResourceRecordSets page holds


def list_start(request: authority_pb2.ListResourceRecordSetsRequest) -> tuple:
    """Where a page starts, as ZoneSnapshot.page takes it; WireError for a start Route 53 refuses."""
    if not request.start_record_name:
        if request.start_record_type or request.start_record_identifier:
            raise WireError("start_record_type and start_record_identifier need start_record_name")
        return ()
    start: tuple = (normalize_name(request.start_record_name),)
    if request.start_record_type:
        rtype = _RRTYPE_FROM_WIRE.get(request.start_record_type)
        if rtype is None:
            raise WireError(f"unknown start_record_type {request.start_record_type}")
        start += (rtype,)
        if request.start_record_identifier:
            start += (request.start_record_identifier,)
    elif request.start_record_identifier:
        raise WireError("start_record_identifier needs start_record_type")
    return start


# Record sets as listed, by value: a tree's records are listed again at every read of its zone for as long
# as it lives (the enactors read whole zones page by page), and building each message was most of a page's
# cost (300 record sets: 1.0 ms, 0.26 ms from here). The messages are only ever copied into a response,
# never handed out. Emptied when it grows past LISTED_CACHE_SIZE.
_LISTED: dict[RecordSet, common_pb2.ResourceRecordSet] = {}
LISTED_CACHE_SIZE = 16_384  # a few times the live records of every endpoint zone at 300 LBs; ~16 MB at most


def _listed(rs: RecordSet) -> common_pb2.ResourceRecordSet:
    msg = _LISTED.get(rs)
    if msg is None:
        if len(_LISTED) >= LISTED_CACHE_SIZE:
            _LISTED.clear()
        msg = _LISTED[rs] = record_to_wire(rs)
    return msg


def page_to_wire(snap: ZoneSnapshot, request: authority_pb2.ListResourceRecordSetsRequest
                 ) -> authority_pb2.ListResourceRecordSetsResponse:
    """One page of a zone, Route 53's way (WireError for a bad start)."""
    max_items = request.max_items if 0 < request.max_items <= MAX_ITEMS else MAX_ITEMS
    records, following = snap.page(list_start(request), max_items)
    response = authority_pb2.ListResourceRecordSetsResponse(record_sets=[_listed(rs) for rs in records],
                                                            zone_version=snap.version)
    if following is not None:
        name, rtype, set_identifier = following
        response.is_truncated = True
        response.next_record_name = name
        response.next_record_type = _RRTYPE_TO_WIRE[rtype]
        response.next_record_identifier = set_identifier
    return response


NEXT_PAGE, START_AGAIN, DONE = "next page", "start again", "done"  # what a listing does after a page
LISTING_ATTEMPTS = 5  # listings of a zone that keeps changing between pages before a reader gives up


def pages_of(record_sets: int, max_items: int = MAX_ITEMS) -> int:
    """How many ListResourceRecordSets calls read a zone of this many record sets whole."""
    return max(1, -(-record_sets // max_items))


class ZoneListing:
    """Reads a whole zone page by page, sans-IO: send next_request() until it is None, feeding each
    response to add(). Pages are read at the zone's current version, so when the version moves
    between pages the listing starts again (a batch landed mid-read); after `attempts` listings that
    never held still, add() raises ZoneKeptChanging: the caller sees the zone as unreadable, never torn."""

    def __init__(self, zone: str, max_items: int = MAX_ITEMS, attempts: int = LISTING_ATTEMPTS):
        self.zone, self.max_items, self.attempts = zone, max_items, attempts
        self.records: list[RecordSet] = []
        self.version: int | None = None
        self.pages = 0
        self._next: authority_pb2.ListResourceRecordSetsRequest | None = self._first()

    def _first(self) -> authority_pb2.ListResourceRecordSetsRequest:
        return authority_pb2.ListResourceRecordSetsRequest(hosted_zone=self.zone, max_items=self.max_items)

    def next_request(self) -> authority_pb2.ListResourceRecordSetsRequest | None:
        return self._next

    def add(self, response: authority_pb2.ListResourceRecordSetsResponse) -> None:
        records = map(record_from_wire, response.record_sets)
        if self.accept(response.zone_version, records, response.is_truncated) != NEXT_PAGE:
            self._next = None if self.version is not None else self._first()
            return
        self._next = authority_pb2.ListResourceRecordSetsRequest(
            hosted_zone=self.zone, max_items=self.max_items, start_record_name=response.next_record_name,
            start_record_type=response.next_record_type, start_record_identifier=response.next_record_identifier)

    def accept(self, version: int, records: Iterable[RecordSet], truncated: bool) -> str:
        """One page, wire aside (the race twin pages through its zones with this too): NEXT_PAGE,
        START_AGAIN (the zone's version moved since the first page) or DONE. Raises ZoneKeptChanging
        after `attempts` listings that never held still."""
        self.pages += 1
        if self.version is not None and version != self.version:
            self.attempts -= 1
            if self.attempts <= 0:
                raise ZoneKeptChanging(f"{self.zone} changed under every listing (version {self.version} -> "
                                       f"{version}); not read")
            self.records, self.version = [], None
            return START_AGAIN
        self.version = version
        self.records.extend(records)
        return NEXT_PAGE if truncated else DONE

    def snapshot(self) -> ZoneSnapshot:
        return ZoneSnapshot.build(normalize_name(self.zone), self.version or 0, self.records)


# What a rejection may put in trailing metadata: gRPC tears the stream down above 16 KiB
# (and may above 8 KiB), so a clean-up that finds a hundred trees already gone must not
# send a hundred messages.
WIRE_ERRORS_FIRST = 12
WIRE_ERROR_MESSAGE_CHARS = 240


def batch_errors_to_wire(rejected: BatchRejected) -> bytes:
    """The first errors by change index (the lock's come first) and one of every other code;
    the rest are counted, not sent."""
    ordered = sorted(rejected.errors, key=lambda e: e.index)
    sent = ordered[:WIRE_ERRORS_FIRST]
    codes = {e.code for e in sent}
    for e in ordered[WIRE_ERRORS_FIRST:]:
        if e.code not in codes:
            sent.append(e)
            codes.add(e.code)
    return authority_pb2.BatchErrors(
        errors=[authority_pb2.BatchError(change_index=e.index, code=e.code,
                                         message=e.message[:WIRE_ERROR_MESSAGE_CHARS]) for e in sent],
        omitted=len(ordered) - len(sent) + rejected.omitted).SerializeToString()


def batch_rejected_from_error(zone: str, error: grpc.RpcError) -> BatchRejected | None:
    """The BatchRejected carried by a FAILED_PRECONDITION from the control API, if that is what it is."""
    if error.code() is not grpc.StatusCode.FAILED_PRECONDITION:
        return None
    for key, value in (error.trailing_metadata() or ()):
        if key == BATCH_ERRORS_KEY:
            parsed = authority_pb2.BatchErrors.FromString(value)
            return BatchRejected(zone, [BatchError(e.change_index, e.code, e.message) for e in parsed.errors],
                                 parsed.omitted)
    return BatchRejected(zone, [BatchError(-1, "UNKNOWN", error.details() or "rejected")])


def plan_to_wire(plan: Plan) -> planner_pb2.Plan:
    return planner_pb2.Plan(
        generation=plan.generation, created_at_sim_seconds=plan.created_at, traceparent=plan.trace_parent,
        endpoints=[planner_pb2.EndpointPlan(
            endpoint=ep.endpoint, hosted_zone=ep.zone, tree_id=ep.tree_id, dual_stack=ep.dual_stack,
            targets=[planner_pb2.Target(lb_id=t.lb_id, ipv4=t.ipv4, ipv6=t.ipv6, weight=t.weight)
                     for t in ep.targets])
            for ep in plan.endpoints])


def plan_from_wire(msg: planner_pb2.Plan) -> Plan:
    return Plan(msg.generation, msg.created_at_sim_seconds, tuple(
        EndpointPlan(normalize_name(ep.endpoint), ep.tree_id,
                     tuple(Target(t.lb_id, t.ipv4, t.ipv6, t.weight) for t in ep.targets), ep.dual_stack)
        for ep in msg.endpoints), msg.traceparent)
