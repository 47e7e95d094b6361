"""The operators: what people did by hand that night, at the scenario's times.

restore-dns is INCIDENT.md §3 at 02:25, "all DNS records restored by installing
a healthy tree by hand": take the newest plan from the planner and, for every
endpoint, through the same Route 53 control API the enactors use, write ONE
batch built with the core's own functions:

    lock change (DELETE the lock record as read, CREATE ours)
    the plan's record tree, if the zone does not hold it
    the alias flip, with the rollback record pointed at the NEW tree as well

The rollback record goes to the new tree because the tree it would otherwise
name - the one active when the endpoint emptied - is gone; pointing it there
is exactly what every enactor batch failed on. A batch that loses the lock
compare-and-swap (someone wrote the zone between our read and our write) is
read and built again.

The operators respect an enactor's unexpired lock for a few rounds, then act
anyway: a person with a runbook does not wait on a lock forever, and the
compare-and-swap still keeps the zone consistent.

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
from dataclasses import dataclass
from typing import Callable

import grpc
from opentelemetry import trace

from racelab.v1 import (authority_pb2, authority_pb2_grpc, dwfm_pb2, dwfm_pb2_grpc, netmgr_pb2, netmgr_pb2_grpc,
                        nlb_pb2, nlb_pb2_grpc, planner_pb2, planner_pb2_grpc, workload_pb2, workload_pb2_grpc)
from services.core import tree
from services.core.invariants import resolves_empty
from services.core.lock import lock_changes, read_lock
from services.core.operators import (Action, ActionError, Params, RelaxEc2Throttle, RestartDwfmHosts, RestoreDns,
                                     ThrottleDwfm, parse_action, parse_params)
from services.core.plans import EndpointPlan, Plan
from services.runtime.scenario import Scenario
from services.runtime.wire import batch_rejected_from_error, change_to_wire, plan_from_wire, snapshot_from_wire

log = logging.getLogger("racelab.director")

HOLDER = "operator"
MAX_ATTEMPTS = 20
LOCK_PATIENCE = 5  # rounds an unexpired enactor lock is waited out before the operators go ahead
RPC_TIMEOUT = 10.0  # wall seconds


class ActionFailed(Exception):
    pass


@dataclass
class Restored:
    endpoint: str
    generation: int
    zone_version: int
    installed: bool
    attempts: int
    left_alone: bool = False  # it still answered: nothing to repair


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
        plan = await self._latest_plan()
        only = params.endpoint
        endpoints = [ep for ep in plan.endpoints if not only or ep.endpoint == only]
        if not endpoints:
            raise ActionFailed(f"generation {plan.generation} has no endpoint {only!r}")
        restored, failed, healthy = [], [], []
        for ep in endpoints:
            try:
                r = await self.restore_endpoint(ep, plan.generation)
            except ActionFailed as exc:
                failed.append(f"{ep.endpoint}: {exc}")
                self.publish("operator.action", f"operators could not restore {ep.endpoint}: {exc}",
                             action="restore-dns", endpoint=ep.endpoint, generation=str(plan.generation),
                             result="failed")
                continue
            if r.left_alone:
                healthy.append(ep.endpoint)
                continue
            restored.append(r)
            self.publish("operator.action",
                         f"operators restored {ep.endpoint} to generation {plan.generation} by hand",
                         action="restore-dns", endpoint=ep.endpoint, generation=str(plan.generation),
                         zone_version=str(r.zone_version), installed_tree=str(r.installed).lower(),
                         result="restored")
        if failed and not restored:
            raise ActionFailed("; ".join(failed))
        message = (f"operators restored {len(restored)} endpoint(s) to generation {plan.generation} "
                   f"by installing a healthy tree by hand")
        if healthy:
            message += f"; {len(healthy)} still answered and were left alone"
        if failed:
            message += f"; {len(failed)} failed: " + "; ".join(failed)
        return message

    async def _latest_plan(self) -> Plan:
        try:
            reply = await self.planner.GetLatestPlan(planner_pb2.GetLatestPlanRequest(), timeout=RPC_TIMEOUT)
        except grpc.RpcError as exc:
            raise ActionFailed(f"no plan from the planner: {_rpc_text(exc)}") from None
        if not reply.HasField("plan"):
            raise ActionFailed("the planner has no plan yet")
        return plan_from_wire(reply.plan)

    async def restore_endpoint(self, ep: EndpointPlan, generation: int) -> Restored:
        """One batch: lock, tree if missing, alias and rollback to the tree. Retried on lock loss."""
        lease = self.scenario.enactor.lock_lease_seconds
        ttl = self.scenario.enactor.record_ttl_seconds
        root = tree.tree_root(ep)
        with self.tracer.start_as_current_span("operator.restore") as span:
            span.set_attribute("racelab.endpoint", ep.endpoint)
            span.set_attribute("racelab.zone", ep.zone)
            span.set_attribute("racelab.plan.generation", generation)
            span.set_attribute("racelab.tree.id", ep.tree_id)
            for attempt in range(1, MAX_ATTEMPTS + 1):
                span.set_attribute("racelab.lock.attempt", attempt)
                snap = snapshot_from_wire(ep.zone, await self._call(
                    self.authority.ListResourceRecordSets,
                    authority_pb2.ListResourceRecordSetsRequest(hosted_zone=ep.zone), ep.zone))
                # Operators repair what is broken: an endpoint that still answers is left alone
                # (restoring it to the plan they fetched could only move it backwards).
                if not resolves_empty(snap, ep.endpoint, ep.dual_stack):
                    span.set_attribute("racelab.batch.result", "left_alone")
                    return Restored(ep.endpoint, generation, snap.version, False, attempt, left_alone=True)
                seen, lock = read_lock(snap)
                now = self.sim_unix()
                if lock is not None and lock.blocks(HOLDER, now) and attempt <= LOCK_PATIENCE:
                    await self.sim_sleep(min(lock.expires_at - now, 2 * lease) + 0.001)
                    continue
                head = lock_changes(ep.zone, seen, HOLDER, now, lease)
                install = tree.tree_generation(snap, root) is None
                changes = list(head)
                if install:
                    changes += tree.install_changes(ep, generation, ttl)
                changes += tree.activation_changes(ep.endpoint, ep.dual_stack, root, root)
                request = authority_pb2.ChangeResourceRecordSetsRequest(
                    hosted_zone=ep.zone, changes=[change_to_wire(c) for c in changes],
                    comment=f"operator restore-dns generation {generation}")
                try:
                    reply = await self.authority.ChangeResourceRecordSets(request, timeout=RPC_TIMEOUT)
                except grpc.RpcError as exc:
                    rejected = batch_rejected_from_error(ep.zone, exc)
                    if rejected is not None and any(rejected.touches(i) for i in range(len(head))):
                        await asyncio.sleep(min(0.02 * attempt, 0.2))  # lost the lock: read again
                        continue
                    span.set_attribute("racelab.batch.result", "rejected")
                    raise ActionFailed(str(rejected) if rejected is not None else _rpc_text(exc)) from None
                span.set_attribute("racelab.batch.result", "committed")
                return Restored(ep.endpoint, generation, reply.zone_version, install, attempt)
            span.set_attribute("racelab.batch.result", "lock-lost")
            raise ActionFailed(f"lost the lock on {ep.zone} {MAX_ATTEMPTS} times")

    async def _call(self, method, request, zone: str):
        try:
            return await method(request, timeout=RPC_TIMEOUT)
        except grpc.RpcError as exc:
            raise ActionFailed(f"reading {zone}: {_rpc_text(exc)}") from None


def _rpc_text(exc: grpc.RpcError) -> str:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return f"{code.name if code else 'error'}: {details}"
