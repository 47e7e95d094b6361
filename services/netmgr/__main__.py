"""python -m services.netmgr --listen H:P [--director H:P]"""

from __future__ import annotations

import logging
import sys

from racelab.v1 import netmgr_pb2_grpc
from services.netmgr.service import NetworkManager, NetworkManagerServicer
from services.runtime.events import EventPublisher
from services.runtime.service import Context, address, parser, run, start_grpc_server, ticks
from services.runtime.snapshot import for_context

log = logging.getLogger("racelab.netmgr")

TICK_SECONDS = 0.25  # wall

EXTRA = [
    ("listen", "RACELAB_LISTEN", "HOST:PORT for the NetworkManager gRPC service", True),
    ("director", "RACELAB_DIRECTOR", "HOST:PORT of the director, for notable events", False),
]


async def main(ctx: Context) -> None:
    listen = address(ctx.args, "listen")
    director = address(ctx.args, "director", required=False)
    clock = ctx.clock
    events = EventPublisher(director, ctx.instance, clock.now)
    snapshots = for_context(ctx, "netmgr")
    restored = snapshots.load()
    manager = NetworkManager(ctx.scenario.netmgr, clock.now(), tracer=ctx.telemetry.tracer,
                             publish=events.publish, restored=restored)
    if restored:
        log.info("network manager: restored from %s (backlog at %s, %d waiting)", snapshots.path,
                 clock.pdt(manager.backlog.now), len(manager.backlog.queue))
    server, _ = await start_grpc_server(
        listen,
        lambda s: netmgr_pb2_grpc.add_NetworkManagerServicer_to_server(NetworkManagerServicer(manager, clock.now), s),
        ["racelab.v1.NetworkManager"])
    log.info("network manager serving on %s (%g propagations per simulated second when idle)", listen,
             ctx.scenario.netmgr.propagations_per_second)
    try:
        async for _ in ticks(ctx.stopping, TICK_SECONDS):
            manager.tick(clock.now())
            snapshots.save(manager.state())
        snapshots.save(manager.state(), force=True)
    finally:
        await server.stop(1.0)
        await events.close()


def cli(argv: list[str] | None = None) -> int:
    return run("netmgr", parser("netmgr", __doc__ or "", EXTRA), main, argv)


if __name__ == "__main__":
    sys.exit(cli())
