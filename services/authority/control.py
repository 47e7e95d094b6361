"""RouteControl: the authority's gRPC control API (Route 53's ChangeResourceRecordSets and friends)."""

from __future__ import annotations

import grpc

from racelab.v1 import authority_pb2, authority_pb2_grpc
from services.core.zone import BatchRejected
from services.runtime import auth
from services.runtime.wire import BATCH_ERRORS_KEY, WireError, batch_errors_to_wire, change_from_wire, page_to_wire

from .state import AuthorityState, UnknownZone
from .store import StoreFailed

SERVICE_NAME = authority_pb2.DESCRIPTOR.services_by_name["RouteControl"].full_name
CHANGE_METHOD = f"{SERVICE_NAME}/ChangeResourceRecordSets"


class RouteControl(authority_pb2_grpc.RouteControlServicer):
    def __init__(self, state: AuthorityState):
        self.state = state

    async def ChangeResourceRecordSets(self, request: authority_pb2.ChangeResourceRecordSetsRequest,
                                       context: grpc.aio.ServicerContext) -> authority_pb2.ChangeResourceRecordSetsResponse:
        if not auth.may_change_zone(request.hosted_zone):  # checked first: nothing is parsed, locked or written
            who = auth.caller().identity if auth.caller() else "an unidentified caller"
            detail = f"{who} may not change hosted zone {request.hosted_zone!r}"
            auth.record_denial(auth.security().service, CHANGE_METHOD, grpc.StatusCode.PERMISSION_DENIED, detail)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, detail)
        try:
            changes = [change_from_wire(c) for c in request.changes]
        except WireError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            committed = await self.state.apply(request.hosted_zone, changes, request.comment)
        except UnknownZone:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no hosted zone {request.hosted_zone!r}")
        except BatchRejected as rejected:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(rejected),
                                trailing_metadata=((BATCH_ERRORS_KEY, batch_errors_to_wire(rejected)),))
        except StoreFailed as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"not durable, not applied: {exc}")
        return authority_pb2.ChangeResourceRecordSetsResponse(change_id=committed.change_id,
                                                              zone_version=committed.version)

    async def ListResourceRecordSets(self, request: authority_pb2.ListResourceRecordSetsRequest,
                                     context: grpc.aio.ServicerContext) -> authority_pb2.ListResourceRecordSetsResponse:
        try:
            snap = self.state.snapshot(request.hosted_zone)
        except UnknownZone:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no hosted zone {request.hosted_zone!r}")
        try:
            return page_to_wire(snap, request)
        except WireError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    async def ListHostedZones(self, request: authority_pb2.ListHostedZonesRequest,
                              context: grpc.aio.ServicerContext) -> authority_pb2.ListHostedZonesResponse:
        zones = []
        for origin in sorted(self.state.zones.zones):
            snap = self.state.zones.zones[origin].snapshot
            zones.append(authority_pb2.HostedZone(name=origin + ".", zone_version=snap.version,
                                                  record_set_count=len(snap.records)))
        return authority_pb2.ListHostedZonesResponse(hosted_zones=zones)
