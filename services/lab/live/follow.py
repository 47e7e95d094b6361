"""`racelab follow` and `racelab wait-dns`: a run whose services are already running elsewhere (Kubernetes).

`racelab run` is a local supervisor; in a cluster the services run as pods and
only the watching is left: `follow` waits for the director, prints its event
stream until the scenario's end, and writes events.jsonl and summary.json.
`wait-dns` holds a client back until the authority answers a name with an
address (a client that asked earlier would cache NODATA for the SOA's 15
minutes before the race even began).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import grpc

from services.core.plans import LEGACY_ENDPOINT
from services.runtime.clock import SimClock
from services.runtime.scenario import Scenario


class FollowError(Exception):
    """One clear line, exit code 1."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add `follow` and `wait-dns` to the racelab command."""
    f = sub.add_parser("follow", help="follow a running replica's director until the scenario ends (Kubernetes)",
                       description="Wait for the director, print its events until the scenario's end, then write "
                       "events.jsonl and summary.json to --out.")
    f.add_argument("--director", required=True, metavar="HOST:PORT", help="the director's gRPC address")
    f.add_argument("--scenario", default="oct-2025",
                   help="the scenario the services run (its end ends the follow; default oct-2025)")
    f.add_argument("--out", type=Path, default=Path("."), help="where events.jsonl and summary.json go")
    f.add_argument("--wait", type=float, default=300.0, help="wall seconds to wait for the director (default 300)")
    f.add_argument("--token-file", help="file holding the bearer token to call the director with")
    f.set_defaults(func=_follow_cmd)
    w = sub.add_parser("wait-dns", help="wait until the authority answers a name with an address",
                       description="Ask the authority over UDP until NAME has an A record; exit 1 after --timeout.")
    w.add_argument("--authority-dns", required=True, metavar="IP:PORT", help="the authority's DNS address")
    w.add_argument("--name", default=LEGACY_ENDPOINT, help=f"the name to wait for (default {LEGACY_ENDPOINT})")
    w.add_argument("--timeout", type=float, default=300.0, help="wall seconds to wait (default 300)")
    w.set_defaults(func=_wait_dns_cmd)


def _follow_cmd(args: argparse.Namespace) -> int:
    from services.runtime.scenario import ScenarioError, load_scenario
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"racelab: error: {exc}", file=sys.stderr)
        return 2
    token = _read_token(args.token_file) if args.token_file else None
    try:
        summary = asyncio.run(follow(args.director, scenario, args.out, args.wait, token))
    except FollowError as exc:
        print(f"racelab follow: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


def _read_token(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise SystemExit(f"racelab: error: --token-file {path}: {exc.strerror}") from None


async def follow(director: str, scenario: Scenario, out: Path, wait: float, token: str | None = None) -> dict:
    """Print the director's events until the scenario's end; write events.jsonl and summary.json."""
    from racelab.v1 import director_pb2 as pb, director_pb2_grpc
    from services.lab.live.run import read_events, windows_from_events
    clock = SimClock(scenario.schedule, scenario.epoch, 0.0)  # only to name simulated instants in PDT
    out.mkdir(parents=True, exist_ok=True)
    events_path = out / "events.jsonl"
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    async with grpc.aio.insecure_channel(director) as ch:
        stub = director_pb2_grpc.DirectorStub(ch)
        status = await _first_status(stub, pb, wait, metadata)
        print(f"following {status.scenario} (seed {status.seed}) at {director}: now {status.pdt_time}, "
              f"phase {status.phase}", flush=True)
        counts: dict[str, int] = {}

        async def watch() -> None:
            with events_path.open("w") as f:
                async for ev in stub.WatchEvents(pb.WatchEventsRequest(), metadata=metadata):
                    record = {"sim_time_seconds": ev.sim_time_seconds, "source": ev.source, "kind": ev.kind,
                              "message": ev.message, "attributes": dict(ev.attributes)}
                    f.write(json.dumps(record) + "\n")
                    f.flush()
                    counts[ev.kind] = counts.get(ev.kind, 0) + 1
                    print(f"{clock.pdt(ev.sim_time_seconds)}  {ev.source:<12} {ev.message}", flush=True)

        watcher = asyncio.ensure_future(watch())
        try:
            while status.sim_time_seconds < scenario.end:
                if watcher.done():
                    watcher.result()  # the stream broke: say why
                    raise FollowError("the director ended its event stream before the scenario's end")
                await asyncio.sleep(1.0)
                try:
                    status = await stub.GetStatus(pb.GetStatusRequest(), timeout=5, metadata=metadata)
                except grpc.aio.AioRpcError as exc:
                    raise FollowError(f"lost the director at {director}: {exc.code().name}") from None
            await asyncio.sleep(1.0)  # the last events arrive
        except grpc.aio.AioRpcError as exc:
            raise FollowError(f"the director's event stream failed: {exc.code().name} {exc.details()}") from None
        finally:
            watcher.cancel()
    return _summary(status, clock, counts, windows_from_events(read_events(events_path), LEGACY_ENDPOINT),
                    events_path, out)


async def _first_status(stub, pb, wait: float, metadata):
    deadline = time.monotonic() + wait
    while True:
        try:
            return await stub.GetStatus(pb.GetStatusRequest(), timeout=3, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                raise FollowError(f"the director refused us: {exc.details()}") from None
            if time.monotonic() > deadline:
                raise FollowError(f"no director answered in {wait:.0f}s ({exc.code().name})") from None
        await asyncio.sleep(1.0)


def _summary(status, clock: SimClock, counts: dict[str, int], windows, events_path: Path, out: Path) -> dict:
    stale = stuck = False
    for line in events_path.read_text().splitlines():
        ev = json.loads(line)
        stale |= ev["kind"] == "enactor.flip" and ev["attributes"].get("stale") == "true"
        stuck |= ev["kind"] == "enactor.stuck"

    def pdt(sim: float | None) -> str | None:
        return None if sim is None else clock.pdt(sim)
    summary = {
        "scenario": status.scenario,
        "seed": status.seed,
        "fixes": sorted(name for name, on in status.fixes.items() if on),
        "stale_apply": stale,
        "endpoint_emptied": bool(windows),
        "regional_name_emptied": bool(windows),  # follow sees the regional name only
        "enactors_stuck": bool(windows) and stuck,
        "empty_windows": [{"endpoint": LEGACY_ENDPOINT, "from_pdt": pdt(a), "until_pdt": pdt(b),
                           "sim_seconds": (b - a) if b is not None else None} for a, b in windows],
        "ended_at_pdt": status.pdt_time,
        "events": dict(sorted(counts.items())),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _wait_dns_cmd(args: argparse.Namespace) -> int:
    try:
        addresses = wait_for_addresses(args.authority_dns, args.name, args.timeout)
    except FollowError as exc:
        print(f"racelab wait-dns: {exc}", file=sys.stderr)
        return 1
    print(f"{args.name} answers {', '.join(addresses)}")
    return 0


def wait_for_addresses(server: str, name: str, timeout: float) -> list[str]:
    """Ask `server` ("IP:PORT") for NAME's A records until there is one."""
    import ipaddress

    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype
    from services.runtime.telemetry import split_hostport
    try:
        host, port = split_hostport(server)
        ipaddress.ip_address(host)  # c-ares, like dnspython here, takes an address, never a name
    except ValueError as exc:
        raise FollowError(f"--authority-dns: expected IP:PORT, got {server!r} ({exc})") from None
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            reply = dns.query.udp(dns.message.make_query(name, dns.rdatatype.A), host, port=port, timeout=1.0)
            addresses = [r.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for r in rrset]
            if addresses:
                return addresses
            last = f"{dns.rcode.to_text(reply.rcode())} with no address"
        except (dns.exception.DNSException, OSError) as exc:
            last = str(exc) or type(exc).__name__
        time.sleep(0.5)
    raise FollowError(f"{name} had no address at {server} after {timeout:.0f}s (last: {last})")
