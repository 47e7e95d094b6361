"""The DNS machines' I/O, performed once for every driver: the enactor service and the director
(the operators' repair) both fetch the newest plan, read a zone and submit a batch through this,
over the same gRPC control API. Sleeping stays with each driver (its own time policy)."""

from __future__ import annotations

import grpc

from racelab.v1 import authority_pb2, authority_pb2_grpc, planner_pb2, planner_pb2_grpc
from typing import Awaitable, Callable

from services.core.effects import Accepted, FetchLatestPlan, ReadZone, SubmitBatch, Unavailable, ZoneChanging
from services.core.plans import Plan
from services.core.zone import BatchRejected, ZoneSnapshot
from services.runtime import wire


class ControlPlane:
    """Performs FetchLatestPlan, ReadZone and SubmitBatch against the planner and the authority."""

    def __init__(self, planner: planner_pb2_grpc.PlannerStub, authority: authority_pb2_grpc.RouteControlStub,
                 rpc_timeout: float, writer: str, before_call: Callable[[], Awaitable[None]] | None = None):
        self.planner = planner
        self.authority = authority
        self.rpc_timeout = rpc_timeout
        self.writer = writer  # names the batches' comments ("enactor-az1 flip generation 440")
        self.automation_off = False  # the planner's last answer: DNS automation disabled
        # Awaited before every control-API call (each page of a read, each batch): where a
        # scenario's "unusually high delays" on one enactor are spent.
        self.before_call = before_call

    async def perform(self, effect: FetchLatestPlan | ReadZone | SubmitBatch) -> object:
        if isinstance(effect, FetchLatestPlan):
            return await self.fetch()
        if isinstance(effect, ReadZone):
            return await self.read(effect.zone)
        if isinstance(effect, SubmitBatch):
            return await self.submit(effect)
        raise TypeError(f"not an I/O effect: {effect!r}")

    async def fetch(self) -> Plan | Unavailable | None:
        """The newest plan; None when there is none or DNS automation is off (FAILED_PRECONDITION)."""
        try:
            response = await self.planner.GetLatestPlan(planner_pb2.GetLatestPlanRequest(), timeout=self.rpc_timeout)
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                return None
            if exc.code() is grpc.StatusCode.FAILED_PRECONDITION:
                self.automation_off = True
                return None
            return Unavailable(f"planner: {exc.code().name}: {exc.details()}")
        self.automation_off = False
        return wire.plan_from_wire(response.plan)

    async def read(self, zone: str) -> ZoneSnapshot | Unavailable:
        """The whole zone, page by page, as one consistent version (wire.ZoneListing)."""
        listing = wire.ZoneListing(zone)
        try:
            while (request := listing.next_request()) is not None:
                if self.before_call is not None:
                    await self.before_call()
                listing.add(await self.authority.ListResourceRecordSets(request, timeout=self.rpc_timeout))
            return listing.snapshot()
        except grpc.RpcError as exc:
            return Unavailable(f"authority: {exc.code().name}: {exc.details()}")
        except wire.ZoneKeptChanging as exc:
            return ZoneChanging(f"authority: {exc}")
        except wire.WireError as exc:
            return Unavailable(f"authority: unreadable zone {zone}: {exc}")

    async def submit(self, effect: SubmitBatch) -> Accepted | BatchRejected | Unavailable:
        request = authority_pb2.ChangeResourceRecordSetsRequest(
            hosted_zone=effect.zone, changes=[wire.change_to_wire(c) for c in effect.changes],
            comment=f"{self.writer} {effect.step.value} generation {effect.generation}")
        if self.before_call is not None:
            await self.before_call()
        try:
            response = await self.authority.ChangeResourceRecordSets(request, timeout=self.rpc_timeout)
        except grpc.RpcError as exc:
            rejected = wire.batch_rejected_from_error(effect.zone, exc)
            if rejected is not None:
                return rejected
            return Unavailable(f"authority: {exc.code().name}: {exc.details()}")
        return Accepted(response.zone_version)
