"""The authority process: state recovery, DNS, the control API, until told to stop."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from pathlib import Path

from racelab.v1 import authority_pb2_grpc
from services.runtime.events import EventPublisher
from services.runtime.looplag import start_lag_watch
from services.runtime.service import (
    ConfigError,
    Context,
    hostport,
    require,
    start_grpc_server,
)

from . import metrics
from .control import SERVICE_NAME, RouteControl
from .dnsserver import DnsServer, bind_dns
from .state import AuthorityState, initial_zones
from .store import StateError, Store

log = logging.getLogger("racelab.authority")

EXTRA_SETTINGS = [
    ("listen", "RACELAB_LISTEN", "HOST:PORT for the RouteControl gRPC API", True),
    ("dns-listen", "RACELAB_DNS_LISTEN", "HOST:PORT to answer DNS on, UDP and TCP", True),
    ("director", "RACELAB_DIRECTOR", "HOST:PORT of the director, for authority.violation events", False),
    ("snapshot-every", "RACELAB_SNAPSHOT_EVERY", "batches between zone snapshots (default 1000)", False),
]


def _state_dir(args) -> Path:
    path = Path(require(args, "state-dir"))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--state-dir: cannot create {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"--state-dir: {path} is not writable")
    return path


def _snapshot_every(args) -> int:
    raw = args.snapshot_every
    if raw is None:
        return 1000
    if not str(raw).isdigit() or int(raw) < 1:
        raise ConfigError(f"--snapshot-every: expected a whole number >= 1, got {raw!r}")
    return int(raw)


def _freeze_survivors(phase: str, info: dict) -> None:
    """After each full collection, move what survived it out of the collector's sight too. The trees and
    answers batches add are long-lived; left in the oldest generation, every full collection walked all
    of them again, and at 300 LBs those walks grew past 200 ms, holding the event loop and the DNS with
    it. Survivors are still freed by reference counting when dropped; only a cycle among them that
    becomes garbage later is never collected, and the authority's long-lived data (records, snapshots,
    encoded answers) holds none."""
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


async def _warm(state: AuthorityState) -> None:
    started = time.perf_counter()
    try:
        names = await state.answers.warm(state.locks.__getitem__)
    except Exception:  # the answers are still computed on demand: slower, not wrong
        log.exception("pre-encoding the answers failed; answering on demand")
        return
    log.info("answers pre-encoded for %d names in %.2f s", names, time.perf_counter() - started)


async def main(ctx: Context) -> None:
    args = ctx.args
    listen = require(args, "listen")
    hostport(args, "listen")
    dns_host, dns_port = hostport(args, "dns-listen")
    if args.director:
        hostport(args, "director")
    state_dir = _state_dir(args)
    snapshot_every = _snapshot_every(args)
    udp, tcp = bind_dns(dns_host, dns_port)

    store = Store(state_dir, snapshot_every=snapshot_every, on_fatal=lambda exc: ctx.stopping.set())
    store.sync_seconds = metrics.WAL_SYNC.observe
    gc.disable()  # loading: a collection over a growing zone of 100,000 record sets is wasted work
    try:
        zones, recovery = store.recover(lambda present: initial_zones(ctx.scenario, present))
    except StateError as exc:
        raise ConfigError(f"--state-dir: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"--state-dir: {exc}") from None
    events = EventPublisher(args.director, ctx.instance)
    state = AuthorityState(zones, ctx.scenario, ctx.clock, store, ctx.telemetry.tracer, events)
    # The zones are loaded: out of the collector's sight from here on (the answers warmed after the start
    # follow with the first full collection's survivors, _freeze_survivors), so a full
    # collection never walks 100,000 record sets while a DNS query waits (bench/RESULTS-scale.md).
    # No collection first: loading makes no cycles worth finding, and one pass over a million
    # record sets took 7.7 s of a restart.
    gc.freeze()
    gc.callbacks.append(_freeze_survivors)
    gc.enable()
    store.start()
    lag = start_lag_watch(metrics.observe_loop_lag)
    dns = DnsServer(state.answers, udp, tcp)
    metrics.register_dns(state.answers, dns)
    await dns.start()
    server, _ = await start_grpc_server(
        listen, lambda s: authority_pb2_grpc.add_RouteControlServicer_to_server(RouteControl(state), s),
        [SERVICE_NAME])
    log.info("serving %d zones (%s); control on %s, DNS on %s:%d (UDP, TCP)", len(zones), recovery.describe(),
             listen, *dns.address)
    warm = asyncio.create_task(_warm(state), name="answers-warm-up")
    try:
        await ctx.stopping.wait()
    finally:
        warm.cancel()
        lag.cancel()
        await server.stop(1.0)
        await dns.stop()
        await store.close()
        await events.close()
        log.info("stopped")
