"""python -m services.workload --authority-dns H:P --listen H:P [--director H:P] [--lb-port N]
[--dwfm H:P] [--nlb H:P]"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from racelab.v1 import dwfm_pb2_grpc, nlb_pb2_grpc, workload_pb2_grpc
from services.core.seeds import derive
from services.runtime.ddbcall import LoadBalancers
from services.runtime.dnsclient import Resolver
from services.runtime.events import EventPublisher
from services.runtime.service import (
    ConfigError,
    Context,
    address,
    channel,
    hostport,
    parser,
    run,
    start_grpc_server,
)
from services.workload.clients import Workload, WorkloadServicer
from services.workload.dependents import Dependents

log = logging.getLogger("racelab.workload")

DEFAULT_LB_PORT = 17100

EXTRA = [
    ("listen", "RACELAB_LISTEN", "HOST:PORT for the Workload gRPC service", True),
    ("authority-dns", "RACELAB_AUTHORITY_DNS", "HOST:PORT of the authority's DNS (UDP/TCP)", True),
    ("director", "RACELAB_DIRECTOR", "HOST:PORT of the director, for notable events", False),
    ("lb-port", "RACELAB_LB_PORT", f"port every DynamoDB load balancer serves on (default {DEFAULT_LB_PORT})", False),
    ("dwfm", "RACELAB_DWFM", "HOST:PORT of DWFM (EC2 launches; without it no ec2_launch and no NLB apps)", False),
    ("nlb", "RACELAB_NLB", "HOST:PORT of the NLB service (app and STS front doors)", False),
]


def _settings(ctx: Context) -> tuple[str, str, str | None, int]:
    args = ctx.args
    lhost, lport = hostport(args, "listen")
    dhost, dport = hostport(args, "authority-dns")
    director = None
    if args.director:
        h, p = hostport(args, "director")
        director = f"{h}:{p}"
    lb_port = DEFAULT_LB_PORT
    if args.lb_port is not None:
        if not str(args.lb_port).isdigit() or not 0 < int(args.lb_port) < 65536:
            raise ConfigError(f"--lb-port: not a port number: {args.lb_port!r}")
        lb_port = int(args.lb_port)
    dns_server = f"[{dhost}]:{dport}" if ":" in dhost else f"{dhost}:{dport}"
    return f"{lhost}:{lport}", dns_server, director, lb_port


async def main(ctx: Context) -> None:
    listen, dns_server, director, lb_port = _settings(ctx)
    clock = ctx.clock
    resolver = Resolver(dns_server, clock.now, tracer=ctx.telemetry.tracer)
    events = EventPublisher(director, ctx.instance)
    workload = Workload(
        resolver=resolver, settings=ctx.scenario.workload, lb_port=lb_port,
        sim_now=clock.now, sim_rate=lambda: clock.schedule.rate_at(time.time() - clock.wall_start),
        rng=derive(ctx.scenario.seed, ctx.instance), tracer=ctx.telemetry.tracer,
        publish=lambda kind, message, attrs: events.publish(kind, message, attrs, clock.now()))
    dwfm_addr = address(ctx.args, "dwfm", required=False)
    nlb_addr = address(ctx.args, "nlb", required=False)
    dwfm_channel = channel(dwfm_addr) if dwfm_addr else None
    nlb_channel = channel(nlb_addr) if nlb_addr else None
    lbs = LoadBalancers(lb_port)
    # Each dependent is its own service with its own resolver and cache.
    dep_resolvers: list[Resolver] = []

    def resolver_for(dependent: str) -> Resolver:
        dep_resolvers.append(Resolver(dns_server, clock.now, tracer=ctx.telemetry.tracer))
        return dep_resolvers[-1]

    dependents = Dependents(
        scenario=ctx.scenario, resolver_for=resolver_for, lbs=lbs,
        dwfm=dwfm_pb2_grpc.DropletWorkflowStub(dwfm_channel) if dwfm_channel else None,
        nlb=nlb_pb2_grpc.LoadBalancingStub(nlb_channel) if nlb_channel else None,
        sim_now=clock.now, sim_rate=workload.sim_rate, rng=derive(ctx.scenario.seed, "dependents"),
        tracer=ctx.telemetry.tracer, publish=lambda kind, message, attrs: events.publish(kind, message, attrs,
                                                                                        clock.now()),
        call_timeout_seconds=ctx.scenario.workload.call_timeout_seconds)
    server, _ = await start_grpc_server(
        listen, lambda s: workload_pb2_grpc.add_WorkloadServicer_to_server(WorkloadServicer(workload, dependents), s),
        ["racelab.v1.Workload"])
    log.info("workload: %g requests per wall second, DNS at %s, load balancers on port %d; dependents: %s",
             ctx.scenario.workload.requests_per_second, dns_server, lb_port, ", ".join(dependents.active))
    try:
        await dependents.start(ctx.stopping)
        await asyncio.gather(workload.run(ctx.stopping), dependents.run(ctx.stopping))
    finally:
        await server.stop(1.0)
        await workload.close()
        await lbs.close()
        for ch in (dwfm_channel, nlb_channel):
            if ch is not None:
                await ch.close()
        await events.close()
        await resolver.close()
        for r in dep_resolvers:
            await r.close()


def cli(argv: list[str] | None = None) -> int:
    return run("workload", parser("workload", __doc__ or "", EXTRA), main, argv)


if __name__ == "__main__":
    sys.exit(cli())
