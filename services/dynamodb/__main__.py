"""python -m services.dynamodb --planner HOST:PORT [--lb-host-prefix 127.0.1.] [--lb-port 17100] [--count N]
[--advertise HOST --lb-ordinal K]"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import sys

from racelab.v1 import dynamodb_pb2_grpc, planner_pb2_grpc
from services.core.plans import LEGACY_ENDPOINT
from services.runtime.service import (
    ConfigError,
    Context,
    channel,
    hostport,
    parser,
    run,
    start_grpc_server,
)

log = logging.getLogger("racelab.dynamodb")

DEFAULT_PREFIX = "127.0.1."
DEFAULT_PORT = 17100


def build_parser():
    return parser("dynamodb", "DynamoDB's load-balancer fleet: each LB its own gRPC server on its own address, "
                  "all fronting one table store.", [
                      ("planner", "RACELAB_PLANNER", "HOST:PORT of the planner", True),
                      ("lb-host-prefix", "RACELAB_LB_HOST_PREFIX",
                       f"LB i listens on PREFIX+i (default {DEFAULT_PREFIX})", False),
                      ("lb-port", "RACELAB_LB_PORT", f"port every LB listens on (default {DEFAULT_PORT})", False),
                      ("count", "RACELAB_LB_COUNT", "number of LBs (default: the scenario's fleet.load_balancers)",
                       False),
                      ("advertise", "RACELAB_LB_ADVERTISE",
                       "address to register under, listening on 0.0.0.0 (Kubernetes; needs --count 1)", False),
                      ("lb-ordinal", "RACELAB_LB_ORDINAL",
                       "LBs before this process's first one (default 0): its LB is number ORDINAL+1, e.g. a "
                       "StatefulSet pod's index (Kubernetes: one LB per pod)", False),
                  ])


def _int(ctx: Context, name: str, value: str | None, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    if not str(value).isdigit() or not low <= int(value) <= high:
        raise ConfigError(f"--{name}: expected a whole number in {low}..{high}, got {value!r}")
    return int(value)


async def main(ctx: Context) -> None:
    from services.core.plans import lb_address
    from services.dynamodb.service import LoadBalancerService, Registrar, fleet_specs
    from services.dynamodb.store import TableStore
    hostport(ctx.args, "planner")
    a = ctx.args
    port = _int(ctx, "lb-port", a.lb_port, DEFAULT_PORT, 1, 65535)
    count = _int(ctx, "count", a.count, ctx.scenario.fleet.load_balancers, 1, 4000)
    prefix = a.lb_host_prefix or DEFAULT_PREFIX
    ordinal = _int(ctx, "lb-ordinal", a.lb_ordinal, 0, 0, 9998)  # LB numbers end up in IPv6 groups
    if a.advertise:
        if count != 1:
            raise ConfigError(f"--advertise serves one LB per process; --count is {count} (set --count 1)")
        try:
            ipaddress.IPv4Address(a.advertise)
        except ValueError:
            raise ConfigError(f"--advertise: not an IPv4 address: {a.advertise!r}") from None
    else:
        try:
            lb_address(prefix, ordinal + count)
        except ValueError:
            raise ConfigError(f"--lb-host-prefix: {prefix!r} + {ordinal + count} is not an IPv4 address "
                              f"(expected e.g. 127.0.1.)") from None
    fleet = ctx.scenario.fleet
    specs = fleet_specs(count, prefix, port, fleet.availability_zones, fleet.capacity, a.advertise or None,
                        first=ordinal + 1)
    store = TableStore()
    servers = []
    planner_channel = channel(a.planner)
    planner = planner_pb2_grpc.PlannerStub(planner_channel)
    try:
        for spec in specs:
            servicer = LoadBalancerService(spec.lb_id, store)
            server, _ = await start_grpc_server(
                spec.listen, lambda s, sv=servicer: dynamodb_pb2_grpc.add_DynamoDBServicer_to_server(sv, s),
                ["racelab.v1.DynamoDB"], setting=f"--lb-port ({spec.lb_id})")
            servers.append(server)
        log.info("%d load balancers serving: %s", len(specs), ", ".join(f"{s.lb_id}@{s.listen}" for s in specs))
        shared = ctx.scenario.fleet.shared_load_balancers
        # Past the shared ones, LBs serve only the regional name, the biggest endpoint.
        registrars = [Registrar(ctx, planner, spec, [LEGACY_ENDPOINT] if shared and spec.index > shared else [])
                      for spec in specs]
        await asyncio.gather(*(r.run() for r in registrars))
    finally:
        await asyncio.gather(*(s.stop(grace=1) for s in servers))
        await planner_channel.close()


if __name__ == "__main__":
    sys.exit(run("dynamodb", build_parser(), main))
