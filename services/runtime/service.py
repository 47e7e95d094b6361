"""What every racelab process shares: settings from flags and environment, a
gRPC server with health checking and tracing, and a clean stop on SIGTERM.

Every setting has a flag and an environment variable (RACELAB_<NAME>); the
flag wins. A missing or malformed setting is one clear line and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from services.runtime import auth
from services.runtime.clock import SimClock
from services.runtime.grpcmetrics import MetricsInterceptor
from services.runtime.scenario import Scenario, ScenarioError, load_scenario
from services.runtime.telemetry import Telemetry, setup_telemetry, split_hostport

log = logging.getLogger("racelab")


class ConfigError(Exception):
    """A setting that is missing or malformed."""


@dataclass
class Context:
    """Everything a service's main coroutine gets."""

    service: str
    instance: str
    args: argparse.Namespace
    scenario: Scenario
    clock: SimClock
    telemetry: Telemetry
    stopping: asyncio.Event


COMMON = [
    # (flag, env, help, required)
    ("scenario", "RACELAB_SCENARIO", "scenario name or YAML path", False),
    ("wall-start", "RACELAB_WALL_START", "Unix time the run started (all processes share it)", False),
    ("seed", "RACELAB_SEED", "override the scenario's seed", False),
    ("fixes", "RACELAB_FIXES", "comma-separated fixes, overriding the scenario's", False),
    ("instance", "RACELAB_INSTANCE", "this process's instance id", False),
    ("otlp-endpoint", "RACELAB_OTLP_ENDPOINT", "HOST:PORT of an OTLP/gRPC trace receiver", False),
    ("metrics-addr", "RACELAB_METRICS_ADDR", "HOST:PORT to serve Prometheus metrics on", False),
    ("state-dir", "RACELAB_STATE_DIR", "directory for durable state", False),
    ("environment", "RACELAB_ENVIRONMENT", "deployment.environment of the traces", False),
    ("token-file", "RACELAB_TOKEN_FILE", "file holding this process's identity token (sent on every call)", False),
    ("acl-file", "RACELAB_ACL_FILE", "ACL YAML: identities (token SHA-256) and what each may call", False),
]
TRUE = ("1", "true", "yes", "on")


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr and exit code 2, like every other bad setting (no usage dump)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parser(service: str, description: str, extra: Iterable[tuple[str, str, str, bool]] = ()) -> argparse.ArgumentParser:
    p = OneLineParser(prog=f"python -m services.{service}", description=description)
    for flag, env, help_text, _ in list(COMMON) + list(extra):
        p.add_argument(f"--{flag}", default=os.environ.get(env), help=f"{help_text} (env {env})")
    p.add_argument("--insecure", action="store_true", default=os.environ.get("RACELAB_INSECURE", "").lower() in TRUE,
                   help="run without --token-file / --acl-file: no authentication (env RACELAB_INSECURE=1)")
    p.set_defaults(_required=[(f, e) for f, e, _, req in extra if req])
    return p


def require(args: argparse.Namespace, name: str) -> str:
    value = getattr(args, name.replace("-", "_"))
    if not value:
        raise ConfigError(f"--{name} (or RACELAB_{name.upper().replace('-', '_')}) is required")
    return value


def hostport(args: argparse.Namespace, name: str) -> tuple[str, int]:
    try:
        return split_hostport(require(args, name))
    except ValueError as exc:
        raise ConfigError(f"--{name}: {exc}") from None


def address(args: argparse.Namespace, name: str, required: bool = True) -> str | None:
    """A HOST:PORT setting, checked and normalised for a gRPC target; None if optional and unset."""
    if not required and not getattr(args, name.replace("-", "_")):
        return None
    host, port = hostport(args, name)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def port_setting(args: argparse.Namespace, name: str, default: int) -> int:
    value = getattr(args, name.replace("-", "_"))
    if value is None or value == "":
        return default
    if not str(value).isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f"--{name}: not a port number: {value!r}")
    return int(value)


def run(service: str, arg_parser: argparse.ArgumentParser,
        main: Callable[[Context], Awaitable[None]], argv: list[str] | None = None) -> int:
    """Parse settings, set up telemetry, run `main` until it returns or SIGTERM/SIGINT."""
    logging.basicConfig(level=os.environ.get("RACELAB_LOG_LEVEL", "INFO"),
                        format=f"%(asctime)s {service} %(levelname)s %(message)s")
    args = arg_parser.parse_args(argv)
    try:
        for flag, _ in args._required:
            require(args, flag)
        scenario = load_scenario(args.scenario or "oct-2025")
        if args.seed is not None:
            if not str(args.seed).isdigit():
                raise ConfigError(f"--seed: not a whole number: {args.seed!r}")
            scenario = scenario.with_overrides(seed=int(args.seed))
        if args.fixes is not None:
            from services.core.fixes import UnknownFix, parse_fixes
            try:
                scenario = scenario.with_overrides(fixes=parse_fixes([args.fixes]))
            except UnknownFix as exc:
                raise ConfigError(str(exc)) from None
        try:
            wall_start = float(args.wall_start) if args.wall_start else time.time()
        except ValueError:
            raise ConfigError(f"--wall-start: not a number: {args.wall_start!r}") from None
        instance = args.instance or service
        auth.configure(service, args.token_file, args.acl_file, args.insecure)
        if getattr(args, "listen", None):  # a gRPC server without an ACL stops here, before doing anything
            auth.server_interceptors("--listen")
        for name in ("metrics-addr", "otlp-endpoint"):
            if getattr(args, name.replace("-", "_")):
                hostport(args, name)
        try:
            telemetry = setup_telemetry(service, instance, otlp_endpoint=args.otlp_endpoint,
                                        metrics_addr=args.metrics_addr, environment=args.environment or "local")
        except OSError as exc:
            raise ConfigError(f"--metrics-addr: cannot listen on {args.metrics_addr}: {exc.strerror}") from None
    except (ConfigError, ScenarioError, ValueError, OSError) as exc:  # AuthConfigError is a ValueError
        print(f"{service}: error: {exc}", file=sys.stderr)
        return 2
    clock = SimClock(scenario.schedule, scenario.epoch, wall_start)
    return asyncio.run(_main(Context(service, instance, args, scenario, clock, telemetry, asyncio.Event()), main))


async def _main(ctx: Context, main: Callable[[Context], Awaitable[None]]) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(main(ctx))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, ctx.stopping.set)
    stop = asyncio.ensure_future(ctx.stopping.wait())
    orphan_watch = asyncio.ensure_future(_stop_when_orphaned(ctx.stopping))
    try:
        done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
            return 0
        log.info("stopping")
        try:
            await asyncio.wait_for(task, timeout=10)  # main sees ctx.stopping and winds down
        except asyncio.TimeoutError:
            task.cancel()
        return 0
    except ConfigError as exc:
        print(f"{ctx.service}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        stop.cancel()
        orphan_watch.cancel()
        ctx.telemetry.shutdown()


async def _stop_when_orphaned(stopping: asyncio.Event) -> None:
    """A process whose supervisor died (even by SIGKILL) stops instead of holding its ports."""
    parent = os.getppid()
    while not stopping.is_set():
        await asyncio.sleep(1.0)
        if os.getppid() != parent:
            log.warning("parent process %d is gone; stopping", parent)
            stopping.set()


async def start_grpc_server(listen: str, register: Callable[[grpc.aio.Server], None],
                            service_names: Iterable[str], setting: str = "--listen",
                            ) -> tuple[grpc.aio.Server, health_aio.HealthServicer]:
    """A grpc.aio server with OpenTelemetry spans and the standard health service, started."""
    from opentelemetry.instrumentation.grpc import aio_server_interceptor
    # No SO_REUSEPORT: a port another process holds must be an error, not a shared socket.
    check_port_free(listen, setting)
    try:
        guard = auth.server_interceptors(setting)
    except auth.AuthConfigError as exc:
        raise ConfigError(str(exc)) from None
    # Tracing outermost: a refused call is still a span, and counted in the RED metrics with its code.
    server = grpc.aio.server(interceptors=[aio_server_interceptor(), MetricsInterceptor(), *guard],
                             options=[("grpc.so_reuseport", 0)])
    register(server)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        bound = server.add_insecure_port(listen)
    except RuntimeError:
        bound = 0
    if bound == 0:
        raise ConfigError(f"{setting}: cannot listen on {listen}: address in use or not available")
    await server.start()
    for name in list(service_names) + [""]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, health_servicer


def check_port_free(listen: str, setting: str) -> None:
    """One clear line for a port someone listens on (gRPC would log its own error first).
    SO_REUSEADDR, as servers bind: connections lingering from a previous run do not count."""
    import socket
    try:
        host, port = split_hostport(listen)
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (ValueError, socket.gaierror) as exc:
        raise ConfigError(f"{setting}: cannot listen on {listen}: {exc}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(addr)
        except OSError as exc:
            raise ConfigError(f"{setting}: cannot listen on {listen}: {exc.strerror}") from None


def channel(target: str) -> grpc.aio.Channel:
    """A client channel whose calls carry trace context and this process's token, and are timed
    (rpc.client.call.duration) inside their client span."""
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    from services.runtime import grpcmetrics
    return grpc.aio.insecure_channel(target, interceptors=aio_client_interceptors() + grpcmetrics.client_interceptors()
                                     + auth.client_interceptors())


async def ticks(stopping: asyncio.Event, period: float):
    """Yield about every `period` wall seconds until `stopping`; a slow tick is not made up for."""
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while not stopping.is_set():
        yield
        next_at = max(next_at + period, loop.time())
        try:
            await asyncio.wait_for(stopping.wait(), max(0.0, next_at - loop.time()))
        except asyncio.TimeoutError:
            pass
