"""python -m services.dwfm --listen H:P --authority-dns H:P [--lb-port N] [--netmgr H:P] [--director H:P]"""

from __future__ import annotations

import asyncio
import logging
import sys

from racelab.v1 import dwfm_pb2_grpc, netmgr_pb2_grpc
from services.core.plans import LEGACY_ENDPOINT
from services.core.seeds import derive
from services.dwfm.service import Dwfm, DwfmServicer
from services.runtime.ddbcall import LoadBalancers
from services.runtime.dnsclient import DnsError, Resolver
from services.runtime.events import EventPublisher
from services.runtime.service import (
    ConfigError,
    Context,
    address,
    channel,
    parser,
    port_setting,
    run,
    start_grpc_server,
    ticks,
)
from services.runtime.snapshot import for_context
from services.runtime.telemetry import unsampled

log = logging.getLogger("racelab.dwfm")

TICK_SECONDS = 0.2  # wall
DEFAULT_LB_PORT = 17100

EXTRA = [
    ("listen", "RACELAB_LISTEN", "HOST:PORT for the DropletWorkflow gRPC service", True),
    ("authority-dns", "RACELAB_AUTHORITY_DNS", "HOST:PORT of the authority's DNS, to find DynamoDB", True),
    ("lb-port", "RACELAB_LB_PORT", f"port every DynamoDB load balancer serves on (default {DEFAULT_LB_PORT})", False),
    ("netmgr", "RACELAB_NETMGR", "HOST:PORT of Network Manager (launches and terminations propagate there)", False),
    ("director", "RACELAB_DIRECTOR", "HOST:PORT of the director, for notable events", False),
]


async def wait_until_answers(dns_server: str, clock, stopping: asyncio.Event) -> None:
    """Do not start the state checks before the regional name answers: a host that cached NODATA
    at start-up would lose leases before the night even began. The probe keeps no cache."""
    probe = Resolver(dns_server, clock.now)
    try:
        said = False
        while not stopping.is_set():
            try:
                with unsampled():  # a readiness probe, not a client: its empty answers are not the outage's
                    await probe.lookup(LEGACY_ENDPOINT, "A")
                return
            except DnsError as exc:
                probe.flush()
                if not said:
                    log.info("waiting for %s to answer before the state checks start (%s)", LEGACY_ENDPOINT,
                             exc.error_type)
                    said = True
            try:
                await asyncio.wait_for(stopping.wait(), 0.2)
            except asyncio.TimeoutError:
                pass
    finally:
        await probe.close()


async def main(ctx: Context) -> None:
    args = ctx.args
    listen = address(args, "listen")
    dns_server = address(args, "authority-dns")
    netmgr_addr = address(args, "netmgr", required=False)
    director = address(args, "director", required=False)
    lb_port = port_setting(args, "lb-port", DEFAULT_LB_PORT)
    clock = ctx.clock
    scenario = ctx.scenario
    if scenario.dwfm.hosts < 1 or scenario.dwfm.droplets < 1:
        raise ConfigError("scenario dwfm.hosts and dwfm.droplets must be positive")
    events = EventPublisher(director, ctx.instance, clock.now)
    tracer = ctx.telemetry.tracer
    # One resolver per DWFM host: each host's cache, negative answers included, expires on its own.
    resolvers = {f"dwfm-{h + 1}": Resolver(dns_server, clock.now, tracer=tracer) for h in range(scenario.dwfm.hosts)}
    lbs = LoadBalancers(lb_port)
    netmgr_channel = channel(netmgr_addr) if netmgr_addr else None
    snapshots = for_context(ctx, "dwfm")
    restored = snapshots.load()
    dwfm = Dwfm(scenario, clock.now(), resolvers=resolvers, lbs=lbs,
                netmgr=netmgr_pb2_grpc.NetworkManagerStub(netmgr_channel) if netmgr_channel else None,
                rng=derive(scenario.seed, ctx.instance), tracer=tracer, publish=events.publish,
                restored=restored)
    if restored:
        log.info("dwfm: restored from %s (fleet at %s, %d of %d droplets leased)", snapshots.path,
                 clock.pdt(dwfm.fleet.now), dwfm.fleet.leased(), scenario.dwfm.droplets)
    server, _ = await start_grpc_server(
        listen, lambda s: dwfm_pb2_grpc.add_DropletWorkflowServicer_to_server(DwfmServicer(dwfm, clock.now), s),
        ["racelab.v1.DropletWorkflow"])
    log.info("dwfm: %d droplets on %d hosts, DynamoDB found through %s, network manager %s", scenario.dwfm.droplets,
             scenario.dwfm.hosts, dns_server, netmgr_addr or "none")
    try:
        if not restored:  # a restart goes on where it stopped, DynamoDB reachable or not
            await wait_until_answers(dns_server, clock, ctx.stopping)
        async for _ in ticks(ctx.stopping, TICK_SECONDS):
            await dwfm.tick(clock.now())
            snapshots.save(dwfm.state())
        snapshots.save(dwfm.state(), force=True)
    finally:
        await server.stop(1.0)
        await lbs.close()
        if netmgr_channel is not None:
            await netmgr_channel.close()
        await events.close()
        for r in resolvers.values():
            await r.close()


def cli(argv: list[str] | None = None) -> int:
    return run("dwfm", parser("dwfm", __doc__ or "", EXTRA), main, argv)


if __name__ == "__main__":
    sys.exit(cli())
