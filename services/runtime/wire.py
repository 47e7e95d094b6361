"""Conversions between the core's objects and the gRPC messages, in one place."""

from __future__ import annotations

import grpc

from racelab.v1 import authority_pb2, common_pb2, planner_pb2
from services.core.plans import EndpointPlan, Plan, Target
from services.core.records import Action, Change, RecordSet, RRType, normalize_name
from services.core.zone import BatchError, BatchRejected, ZoneSnapshot

BATCH_ERRORS_KEY = "racelab-batch-errors-bin"


class WireError(ValueError):
    """A message that does not describe a valid core object (INVALID_ARGUMENT)."""


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
    return ZoneSnapshot.build(normalize_name(zone), msg.zone_version, map(record_from_wire, msg.record_sets))


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
