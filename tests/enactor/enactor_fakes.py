"""In-test stand-ins for the authority's control API and the director.

FakeRouteControl keeps core HostedZone objects and speaks the same contract as
the real authority: a rejected batch is FAILED_PRECONDITION with the
BatchErrors in trailing metadata `racelab-batch-errors-bin`; an unknown zone
is NOT_FOUND; a malformed change is INVALID_ARGUMENT. It serves from a thread
pool so tests can read the zones directly while enactors write them.
"""

from __future__ import annotations

import threading
import uuid
from concurrent import futures

import grpc

from racelab.v1 import (
    authority_pb2,
    authority_pb2_grpc,
    director_pb2,
    director_pb2_grpc,
)
from services.core.records import normalize_name
from services.core.zone import BatchRejected, HostedZone, ZoneSnapshot
from services.runtime import wire


class FakeRouteControl(authority_pb2_grpc.RouteControlServicer):
    def __init__(self, zones: list[str]):
        self.lock = threading.Lock()
        self.zones = {normalize_name(z): HostedZone(z) for z in zones}
        self.committed = 0
        self.rejected = 0

    def snapshot(self, zone: str) -> ZoneSnapshot:
        with self.lock:
            return self.zones[normalize_name(zone)].snapshot

    def _zone(self, name: str, context) -> HostedZone:
        zone = self.zones.get(normalize_name(name))
        if zone is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no hosted zone {name!r}")
        return zone

    def ChangeResourceRecordSets(self, request, context):
        zone = self._zone(request.hosted_zone, context)
        try:
            changes = [wire.change_from_wire(c) for c in request.changes]
        except wire.WireError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        with self.lock:
            try:
                after = zone.apply(changes)
            except BatchRejected as rejected:
                self.rejected += 1
                context.set_trailing_metadata(((wire.BATCH_ERRORS_KEY, wire.batch_errors_to_wire(rejected)),))
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(rejected))
            self.committed += 1
        return authority_pb2.ChangeResourceRecordSetsResponse(change_id=str(uuid.uuid4()), zone_version=after.version)

    def ListResourceRecordSets(self, request, context):
        zone = self._zone(request.hosted_zone, context)
        with self.lock:
            snap = zone.snapshot
        return wire.page_to_wire(snap, request)

    def ListHostedZones(self, request, context):
        with self.lock:
            return authority_pb2.ListHostedZonesResponse(hosted_zones=[
                authority_pb2.HostedZone(name=z.origin, zone_version=z.version,
                                         record_set_count=len(z.snapshot.records))
                for z in self.zones.values()])


class FakeDirector(director_pb2_grpc.DirectorServicer):
    def __init__(self):
        self.lock = threading.Lock()
        self.events: list[director_pb2.Event] = []

    def PublishEvent(self, request, context):
        with self.lock:
            self.events.append(request.event)
        return director_pb2.PublishEventResponse()

    def of_kind(self, kind: str) -> list[director_pb2.Event]:
        with self.lock:
            return [e for e in self.events if e.kind == kind]


def serve(route: FakeRouteControl, director: FakeDirector | None = None) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    authority_pb2_grpc.add_RouteControlServicer_to_server(route, server)
    if director is not None:
        director_pb2_grpc.add_DirectorServicer_to_server(director, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port
