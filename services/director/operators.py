"""The operators: what people did by hand that night, at the scenario's times.

restore-dns is the core's repair machine (services/core/repair.py: INCIDENT.md §3 at 02:25, a
healthy tree installed by hand), driven here over the same control API the enactors use, through
the same effect performer (services/runtime/effects.py); the explorer drives the very same machine
in its simulated world.

The cascade's actions are each one call to the service that owns the state:
DNS automation off/on (planner SetAutomation), mitigate-internal and
restart-sqs-poller (workload Control), throttle-dwfm, restart-dwfm-hosts and
relax-ec2-throttle (DWFM; throttle-dwfm may also throttle Network Manager),
NLB failover off/on (nlb SetAutomaticFailover). An action whose service the
director was not given fails with a message naming the missing setting.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

import grpc
from opentelemetry import trace

from racelab.v1 import (authority_pb2_grpc, dwfm_pb2, dwfm_pb2_grpc, netmgr_pb2, netmgr_pb2_grpc,
                        nlb_pb2, nlb_pb2_grpc, planner_pb2, planner_pb2_grpc, workload_pb2, workload_pb2_grpc)
from services.core.effects import Sleep
from services.core.operators import (Action, ActionError, Params, RelaxEc2Throttle, RestartDwfmHosts, RestoreDns,
                                     ThrottleDwfm, parse_action, parse_params)
from services.core.repair import LeftAlone, Repair, RepairFailed, RepairStarted, Restored
from services.runtime.scenario import Scenario
from services.runtime.effects import ControlPlane

log = logging.getLogger("racelab.director")

RPC_TIMEOUT = 10.0  # wall seconds


class ActionFailed(Exception):
    pass


class Operators:
    def __init__(self, *, scenario: Scenario, sim_now: Callable[[], float], sim_unix: Callable[[], float],
                 sim_sleep: Callable[[float], "asyncio.Future"], planner: planner_pb2_grpc.PlannerStub,
                 authority: authority_pb2_grpc.RouteControlStub,
                 publish: Callable[..., object], count: Callable[[str], None] = lambda action: None,
                 tracer: trace.Tracer | None = None, dwfm: dwfm_pb2_grpc.DropletWorkflowStub | None = None,
                 netmgr: netmgr_pb2_grpc.NetworkManagerStub | None = None,
                 nlb: nlb_pb2_grpc.LoadBalancingStub | None = None,
                 workload: workload_pb2_grpc.WorkloadStub | None = None):
        self.scenario = scenario
        self.sim_now = sim_now
        self.sim_unix = sim_unix
        self.sim_sleep = sim_sleep
        self.planner = planner
        self.authority = authority
        self.publish = publish  # publish(kind, message, **attributes)
        self.count = count
        self.tracer = tracer or trace.get_tracer("racelab.director")
        self.dwfm = dwfm
        self.netmgr = netmgr
        self.nlb = nlb
        self.workload = workload

    # ---- the schedule ----

    async def run_schedule(self, stopping: asyncio.Event, done: Callable[[str, float], bool]) -> None:
        """Perform each scenario action at its simulated time (late, if the director started late).

        `done(action, at)` says whether an action was already performed (from the event log),
        so a restarted director does not repeat it.
        """
        for op in self.scenario.operators:
            if done(op.action, op.at):
                continue
            waiter = asyncio.ensure_future(self._sleep_until(op.at))
            stop = asyncio.ensure_future(stopping.wait())
            await asyncio.wait({waiter, stop}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stop.cancel()
            if stopping.is_set():
                return
            try:
                await self.perform(op.action, op.params, scheduled_at=op.at)
            except ActionFailed as exc:
                log.error("%s failed: %s", op.action, exc)

    async def _sleep_until(self, at: float) -> None:
        while (left := at - self.sim_now()) > 0:
            await self.sim_sleep(left)

    # ---- actions ----

    async def perform(self, action: str | Action, params: Params | dict[str, str] | None = None,
                      scheduled_at: float | None = None) -> str:
        """One action; `params` typed, or a request's strings (ActionError if they are not the action's)."""
        action = parse_action(action)
        attrs = {"action": str(action)}
        if scheduled_at is not None:
            attrs["scheduled_at"] = f"{scheduled_at:g}"
        with self.tracer.start_as_current_span("operator.action") as span:
            span.set_attribute("racelab.operator.action", action)
            self.count(action)
            try:
                if params is None or isinstance(params, dict):
                    try:
                        params = parse_params(action, params)
                    except ActionError as exc:
                        raise ActionFailed(str(exc)) from None
                if isinstance(params, RestoreDns):
                    message = await self._restore_dns(params)
                else:
                    message = await self._cascade_action(action, params)
            except ActionFailed as exc:
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
                self.publish("operator.action", f"operators' {action} failed: {exc}", result="failed", **attrs)
                raise
            self.publish("operator.action", message, result="done", **attrs)
            return message

    # ---- the cascade's actions: each one call to the service that owns the state ----

    async def _cascade_action(self, action: Action, params: Params) -> str:
        if action in (Action.DISABLE_DNS_AUTOMATION, Action.ENABLE_DNS_AUTOMATION):
            enabled = action is Action.ENABLE_DNS_AUTOMATION
            await self._rpc(action, "the planner", self.planner.SetAutomation,
                            planner_pb2.SetAutomationRequest(enabled=enabled))
            return ("operators re-enabled DNS automation" if enabled else
                    "operators disabled DNS automation: no new plans, DNS frozen as it is")
        if action in (Action.MITIGATE_INTERNAL, Action.RESTART_SQS_POLLER):
            reply = await self._rpc(action, "the workload", self._need(action, self.workload, "workload").Control,
                                    workload_pb2.ControlRequest(action=str(action)))
            return f"operators: {reply.message}"
        if action in (Action.DISABLE_NLB_FAILOVER, Action.ENABLE_NLB_FAILOVER):
            enabled = action is Action.ENABLE_NLB_FAILOVER
            await self._rpc(action, "the nlb service", self._need(action, self.nlb, "nlb").SetAutomaticFailover,
                            nlb_pb2.SetAutomaticFailoverRequest(enabled=enabled))
            return ("operators re-enabled NLB automatic AZ failover" if enabled else
                    "operators disabled NLB automatic AZ failover: every failed-over zone is back in DNS")
        dwfm = self._need(action, self.dwfm, "dwfm")
        if isinstance(params, ThrottleDwfm):
            await self._rpc(action, "DWFM", dwfm.SetThrottle, dwfm_pb2.SetWorkflowThrottleRequest(
                enabled=True, requests_per_second=params.admit_per_host_second,
                launches_per_second=params.launches_per_second))
            message = (f"operators throttled DWFM: {params.admit_per_host_second:g} lease work items per host and "
                       f"{params.launches_per_second:g} launches per simulated second")
            if params.propagations_per_second is not None:
                rate = params.propagations_per_second
                await self._rpc(action, "Network Manager", self._need(action, self.netmgr, "netmgr").SetThrottle,
                                netmgr_pb2.SetPropagationThrottleRequest(enabled=True, requests_per_second=rate))
                message += f", and network propagation to {rate:g} per simulated second"
            return message
        if isinstance(params, RestartDwfmHosts):
            if params.hosts:
                request = dwfm_pb2.RestartHostsRequest(host_ids=dwfm_pb2.HostIds(ids=list(params.hosts)))
            elif params.count is not None:
                request = dwfm_pb2.RestartHostsRequest(count=params.count)
            else:
                request = dwfm_pb2.RestartHostsRequest()
            reply = await self._rpc(action, "DWFM", dwfm.RestartHosts, request)
            return (f"operators restarted {len(reply.restarted_host_ids)} DWFM host(s) "
                    f"({', '.join(reply.restarted_host_ids)}): {reply.dropped_work_items} work items dropped")
        if isinstance(params, RelaxEc2Throttle):
            reply = await self._rpc(action, "DWFM", dwfm.RelaxThrottle, dwfm_pb2.RelaxThrottleRequest(
                relax_over_seconds=params.over_seconds, to_launches_per_second=params.to_launches_per_second))
            return (f"operators started relaxing the EC2 launch throttle from {reply.launches_per_second:g} to "
                    f"{params.to_launches_per_second:g} launches per simulated second over "
                    f"{params.over_seconds / 3600:.1f} h, then none")
        raise ActionFailed(f"{action} is not an action the operators can take here")

    @staticmethod
    def _need(action: str, stub, service: str):
        if stub is None:
            raise ActionFailed(f"{action} needs the {service} service: the director was started without "
                               f"--{service} (RACELAB_{service.upper()})")
        return stub

    async def _rpc(self, action: str, service: str, method, request):
        try:
            return await method(request, timeout=RPC_TIMEOUT)
        except grpc.RpcError as exc:
            raise ActionFailed(f"{service} refused {action}: {_rpc_text(exc)}") from None

    async def _restore_dns(self, params: RestoreDns) -> str:
        """The core's repair machine, its effects performed over gRPC, one span per endpoint."""
        repair = Repair(self.scenario.enactor, params.endpoint, mended=params.mended)
        control = ControlPlane(self.planner, self.authority, RPC_TIMEOUT, "operator restore-dns")
        spans: dict[str, trace.Span] = {}
        effect = repair.start(self.sim_unix())
        while effect is not None:
            for event in repair.drain_events():
                self._repair_event(event, repair, spans)
            if isinstance(effect, Sleep):
                await self.sim_sleep(effect.seconds)
                result = None
            else:
                result = await control.perform(effect)
            effect = repair.advance(result, self.sim_unix())
        for event in repair.drain_events():
            self._repair_event(event, repair, spans)
        if repair.error:
            raise ActionFailed(repair.error)
        generation = repair.plan.generation
        restored = [e for e in repair.outcomes if isinstance(e, Restored)]
        healthy = [e for e in repair.outcomes if isinstance(e, LeftAlone)]
        failed = [f"{e.endpoint}: {e.reason}" for e in repair.outcomes if isinstance(e, RepairFailed)]
        if failed and not restored:
            raise ActionFailed("; ".join(failed))
        message = f"operators restored {len(restored)} endpoint(s) to generation {generation} by installing a " \
                  f"healthy tree by hand"
        if healthy:
            message += f"; {len(healthy)} still answered and were left alone"
        if failed:
            message += f"; {len(failed)} failed: " + "; ".join(failed)
        return message

    def _repair_event(self, event, repair: Repair, spans: dict[str, trace.Span]) -> None:
        if isinstance(event, RepairStarted):
            span = self.tracer.start_span("operator.restore", attributes={
                "racelab.endpoint": event.endpoint, "racelab.zone": event.zone,
                "racelab.plan.generation": event.generation, "racelab.tree.id": event.tree_id})
            spans[event.endpoint] = span
            return
        span = spans.pop(event.endpoint)
        span.set_attribute("racelab.lock.attempt", event.attempts)
        generation = repair.plan.generation
        if isinstance(event, Restored):
            span.set_attribute("racelab.batch.result", "committed")
            self.publish("operator.action", f"operators restored {event.endpoint} to generation {generation} by hand",
                         action="restore-dns", endpoint=event.endpoint, generation=str(generation),
                         zone_version=str(event.zone_version), installed_tree=str(event.installed).lower(),
                         result="restored")
        elif isinstance(event, LeftAlone):
            span.set_attribute("racelab.batch.result", "left_alone")
        else:
            span.set_attribute("racelab.batch.result", "rejected" if event.rejected else "lock-lost")
            span.set_status(trace.Status(trace.StatusCode.ERROR, event.reason))
            self.publish("operator.action", f"operators could not restore {event.endpoint}: {event.reason}",
                         action="restore-dns", endpoint=event.endpoint, generation=str(generation), result="failed")
        span.end()


def _rpc_text(exc: grpc.RpcError) -> str:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return f"{code.name if code else 'error'}: {details}"
