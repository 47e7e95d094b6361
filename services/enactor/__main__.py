"""python -m services.enactor --instance enactor-az1 --planner HOST:PORT --authority HOST:PORT [--director HOST:PORT]"""

from __future__ import annotations

import sys

from services.runtime.service import ConfigError, Context, hostport, parser, run


def build_parser():
    return parser("enactor", "A DNS Enactor: applies the newest plan endpoint by endpoint under each zone's "
                  "lock, then cleans up old trees.", [
                      ("planner", "RACELAB_PLANNER", "HOST:PORT of the planner", True),
                      ("authority", "RACELAB_AUTHORITY", "HOST:PORT of the authority's control API", True),
                      ("director", "RACELAB_DIRECTOR", "HOST:PORT of the director (optional)", False),
                      ("rpc-timeout", "RACELAB_RPC_TIMEOUT", "deadline of each call, wall seconds (default 5)",
                       False),
                  ])


async def main(ctx: Context) -> None:
    from services.enactor.driver import EnactorDriver
    for name in ("planner", "authority") + (("director",) if ctx.args.director else ()):
        hostport(ctx.args, name)  # validated; the text itself is the gRPC target
    planner, authority, director = ctx.args.planner, ctx.args.authority, ctx.args.director or None
    try:
        timeout = float(ctx.args.rpc_timeout or 5.0)
    except ValueError:
        raise ConfigError(f"--rpc-timeout: not a number: {ctx.args.rpc_timeout!r}") from None
    if not timeout > 0:
        raise ConfigError(f"--rpc-timeout: must be positive, got {timeout}")
    await EnactorDriver(ctx, planner, authority, director, timeout).run()


if __name__ == "__main__":
    sys.exit(run("enactor", build_parser(), main))
