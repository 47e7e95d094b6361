"""python -m services.nlb --listen H:P --authority H:P [--netmgr H:P] [--director H:P]"""

from __future__ import annotations

import asyncio
import logging
import sys

from racelab.v1 import authority_pb2_grpc, netmgr_pb2_grpc, nlb_pb2_grpc
from services.core.nlbdns import NLB_ZONE
from services.core.seeds import derive
from services.nlb.service import NlbService, NlbServicer
from services.runtime.events import EventPublisher
from services.runtime.service import (
    ConfigError,
    Context,
    address,
    channel,
    parser,
    run,
    start_grpc_server,
    ticks,
)
from services.runtime.snapshot import for_context

log = logging.getLogger("racelab.nlb")

TICK_SECONDS = 0.25  # wall

EXTRA = [
    ("listen", "RACELAB_LISTEN", "HOST:PORT for the LoadBalancing gRPC service", True),
    ("authority", "RACELAB_AUTHORITY", "HOST:PORT of the authority's control API (the NLBs' DNS records)", True),
    ("netmgr", "RACELAB_NETMGR", "HOST:PORT of Network Manager (which targets have network)", False),
    ("director", "RACELAB_DIRECTOR", "HOST:PORT of the director, for notable events", False),
]


async def main(ctx: Context) -> None:
    args = ctx.args
    listen = address(args, "listen")
    authority_addr = address(args, "authority")
    netmgr_addr = address(args, "netmgr", required=False)
    director = address(args, "director", required=False)
    if not ctx.scenario.nlb.names:
        raise ConfigError("the scenario has no NLBs (nlb.names is empty): nothing to check")
    clock = ctx.clock
    events = EventPublisher(director, ctx.instance, clock.now)
    authority_channel = channel(authority_addr)
    netmgr_channel = channel(netmgr_addr) if netmgr_addr else None
    snapshots = for_context(ctx, "nlb")
    restored = snapshots.load()
    service = NlbService(ctx.scenario, clock.now(),
                         netmgr=netmgr_pb2_grpc.NetworkManagerStub(netmgr_channel) if netmgr_channel else None,
                         authority=authority_pb2_grpc.RouteControlStub(authority_channel),
                         rng=derive(ctx.scenario.seed, ctx.instance), tracer=ctx.telemetry.tracer,
                         publish=events.publish, restored=restored)
    if restored:
        log.info("nlb: restored from %s (checker at %s, %d targets)", snapshots.path,
                 clock.pdt(service.checker.now), sum(len(n.targets) for n in service.checker.nlbs.values()))
    server = None
    try:
        # The NLBs' names must answer before anyone asks: write them first.
        while not await service.sync_dns():
            try:
                await asyncio.wait_for(ctx.stopping.wait(), 0.5)
                return
            except asyncio.TimeoutError:
                pass
        log.info("NLB records written in %s for %s", NLB_ZONE, ", ".join(service.checker.nlbs))
        server, _ = await start_grpc_server(
            listen, lambda s: nlb_pb2_grpc.add_LoadBalancingServicer_to_server(NlbServicer(service, clock.now), s),
            ["racelab.v1.LoadBalancing"])
        async for _ in ticks(ctx.stopping, TICK_SECONDS):
            await service.tick(clock.now())
            snapshots.save(service.state())
        snapshots.save(service.state(), force=True)
    finally:
        if server is not None:
            await server.stop(1.0)
        await authority_channel.close()
        if netmgr_channel is not None:
            await netmgr_channel.close()
        await events.close()


def cli(argv: list[str] | None = None) -> int:
    return run("nlb", parser("nlb", __doc__ or "", EXTRA), main, argv)


if __name__ == "__main__":
    sys.exit(cli())
