"""python -m services.planner --listen HOST:PORT --state-dir DIR"""

from __future__ import annotations

import logging
import sys

from racelab.v1 import planner_pb2_grpc
from services.planner.store import StateError
from services.runtime.service import ConfigError, Context, hostport, parser, run, start_grpc_server

log = logging.getLogger("racelab.planner")

DEFAULT_LISTEN = "127.0.0.1:17002"


def build_parser():
    return parser("planner", "The DNS Planner: LB fleet in, generation-numbered "
                  "regional plans out, plan history kept durably.", [
                      ("listen", "RACELAB_LISTEN", f"HOST:PORT to serve gRPC on (default {DEFAULT_LISTEN})", False),
                      ("director", "RACELAB_DIRECTOR", "HOST:PORT of the director (optional)", False),
                  ])


async def main(ctx: Context) -> None:
    from services.planner.service import PlannerService
    ctx.args.listen = ctx.args.listen or DEFAULT_LISTEN
    host, port = hostport(ctx.args, "listen")
    if not ctx.args.state_dir:
        raise ConfigError("--state-dir (or RACELAB_STATE_DIR) is required: the plan history is durable")
    if ctx.args.director:
        hostport(ctx.args, "director")
    if not ctx.scenario.planner.plan_interval_seconds > 0:
        raise ConfigError("scenario planner.plan_interval_seconds must be positive")
    try:
        service = PlannerService(ctx, ctx.args.state_dir)
    except (StateError, OSError) as exc:
        raise ConfigError(f"state dir {ctx.args.state_dir}: {exc}") from None
    server, _ = await start_grpc_server(f"{host}:{port}",
                                        lambda s: planner_pb2_grpc.add_PlannerServicer_to_server(service, s),
                                        ["racelab.v1.Planner"])
    log.info("planner serving on %s:%d (state in %s)", host, port, ctx.args.state_dir)
    try:
        await service.run()
    finally:
        await service.close()
        await server.stop(grace=1)


if __name__ == "__main__":
    sys.exit(run("planner", build_parser(), main))
