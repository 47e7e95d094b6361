"""python -m services.director --listen H:P --planner H:P --authority H:P --state-dir DIR
[--dwfm H:P] [--netmgr H:P] [--nlb H:P] [--workload H:P]"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from racelab.v1 import (authority_pb2_grpc, director_pb2_grpc, dwfm_pb2_grpc, netmgr_pb2_grpc, nlb_pb2_grpc,
                        planner_pb2_grpc, workload_pb2_grpc)
from services.director.service import Director, DirectorServicer
from services.runtime.service import (ConfigError, Context, address, channel, hostport, parser, run,
                                      start_grpc_server)

log = logging.getLogger("racelab.director")

EXTRA = [
    ("listen", "RACELAB_LISTEN", "HOST:PORT for the Director gRPC service", True),
    ("planner", "RACELAB_PLANNER", "HOST:PORT of the planner", True),
    ("authority", "RACELAB_AUTHORITY", "HOST:PORT of the authority's control API", True),
    ("dwfm", "RACELAB_DWFM", "HOST:PORT of DWFM (throttle-dwfm, restart-dwfm-hosts, relax-ec2-throttle)", False),
    ("netmgr", "RACELAB_NETMGR", "HOST:PORT of Network Manager (throttle-dwfm's propagations_per_second)", False),
    ("nlb", "RACELAB_NLB", "HOST:PORT of the nlb service (disable-/enable-nlb-failover)", False),
    ("workload", "RACELAB_WORKLOAD", "HOST:PORT of the workload (mitigate-internal, restart-sqs-poller)", False),
]
CASCADE = {"dwfm": dwfm_pb2_grpc.DropletWorkflowStub, "netmgr": netmgr_pb2_grpc.NetworkManagerStub,
           "nlb": nlb_pb2_grpc.LoadBalancingStub, "workload": workload_pb2_grpc.WorkloadStub}


def _settings(ctx: Context) -> tuple[str, str, str, Path]:
    args = ctx.args
    addrs = []
    for name in ("listen", "planner", "authority"):
        host, port = hostport(args, name)
        addrs.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    if not args.state_dir:
        raise ConfigError("--state-dir (or RACELAB_STATE_DIR) is required")
    state = Path(args.state_dir)
    try:
        state.mkdir(parents=True, exist_ok=True)
        (state / "events.jsonl").open("a").close()
    except OSError as exc:
        raise ConfigError(f"--state-dir: cannot write events.jsonl in {state}: {exc.strerror}") from None
    return addrs[0], addrs[1], addrs[2], state


async def main(ctx: Context) -> None:
    listen, planner_addr, authority_addr, state = _settings(ctx)
    planner_ch, authority_ch = channel(planner_addr), channel(authority_addr)
    cascade_channels = {name: channel(a) for name in CASCADE if (a := address(ctx.args, name, required=False))}
    director = Director(ctx.scenario, ctx.clock, event_log_path=state / "events.jsonl",
                        planner=planner_pb2_grpc.PlannerStub(planner_ch),
                        authority=authority_pb2_grpc.RouteControlStub(authority_ch),
                        tracer=ctx.telemetry.tracer,
                        **{name: CASCADE[name](ch) for name, ch in cascade_channels.items()})
    server, _ = await start_grpc_server(
        listen, lambda s: director_pb2_grpc.add_DirectorServicer_to_server(DirectorServicer(director), s),
        ["racelab.v1.Director"])
    log.info("director: scenario %s, now %s (%s), events in %s", ctx.scenario.name, ctx.clock.pdt(),
             director.phase(), state / "events.jsonl")
    try:
        await director.run(ctx.stopping)
    finally:
        await server.stop(1.0)
        await planner_ch.close()
        await authority_ch.close()
        for ch in cascade_channels.values():
            await ch.close()
        director.close()


def cli(argv: list[str] | None = None) -> int:
    return run("director", parser("director", __doc__ or "", EXTRA), main, argv)


if __name__ == "__main__":
    sys.exit(cli())
