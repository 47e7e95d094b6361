"""Load on the authority: DNS at its maximum rate for a minute, and many control-API clients at once.

    PYTHONPATH=. python bench/load_authority.py [--dns-seconds 60] [--clients 50,100,200] [--control-seconds 20]

DNS: dnsperf (no rate limit: as fast as the authority answers, 200 queries
outstanding, 2 s timeout) for --dns-seconds, twice: on quiet zones, and while a
writer installs a new plan (tree + alias flip + clean-up of old trees) on every
endpoint every second, as enactors do. Reported: queries/s, lost, SERVFAIL, and
the authority's RSS before, after, and sampled every second.
Control API: for each client count, that many clients (each its own channel,
authenticated as one of the enactors) loop for --control-seconds: CREATE a
record, list the zone and find it, DELETE it, list and find it gone. Every
result is checked; latency percentiles per call. Route 53's simulated cost per
change (dns.change_seconds_per_change) is 0 here: this measures the server.
Needs dnsperf (apt-get install -y dnsperf).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # the harnesses live in tests/harness

import grpc  # noqa: E402

from bench_dns import dnsperf, query_lines, rss_kib  # noqa: E402
from racelab.v1 import authority_pb2, authority_pb2_grpc  # noqa: E402
from harness.authority import AuthorityProcess, fleet_planner, install_plan  # noqa: E402
from services.core import tree  # noqa: E402
from services.core.records import RecordSet, RRType, create, delete  # noqa: E402
from services.runtime.auth import bearer_interceptors, read_token  # noqa: E402
from services.runtime.scenario import load_scenario, scenario_text  # noqa: E402
from services.runtime.wire import change_to_wire, snapshot_from_wire  # noqa: E402

DNSPERF = ["-c", "4", "-T", "1", "-q", "200", "-t", "2"]


class RssSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.samples, self.done = pid, [], threading.Event()

    def run(self) -> None:
        while not self.done.wait(1.0):
            self.samples.append(rss_kib(self.pid)[0])


def servfail(raw: str) -> int:
    m = re.search(r"SERVFAIL (\d+)", raw)
    return int(m.group(1)) if m else 0


def plan_writer(auth: AuthorityProcess, stop: threading.Event, counts: dict) -> None:
    """A new plan every second on every endpoint, the old trees cleaned up, as the enactors do."""
    planner = fleet_planner(lbs=24)
    plans = [planner.next_plan(0.0)]
    while not stop.wait(1.0):
        plan = planner.next_plan(0.0)
        install_plan(auth, plan, plans[-1])
        plans.append(plan)
        for ep in plan.endpoints:
            old = [tree.tree_root(p.for_endpoint(ep.endpoint)) for p in plans[:-3]]
            snap = snapshot_from_wire(ep.zone, auth.list(ep.zone))
            changes = tree.deletion_changes(snap, [r for r in old if tree.tree_generation(snap, r) is not None])
            if changes:
                auth.change(ep.zone, changes, "clean-up")
        counts["plans"] += 1


def dns_load(auth: AuthorityProcess, seconds: int, query_file: Path, writes: bool) -> dict:
    stop, counts = threading.Event(), {"plans": 0}
    writer = threading.Thread(target=plan_writer, args=(auth, stop, counts), daemon=True)
    sampler = RssSampler(auth.proc.pid)
    before = rss_kib(auth.proc.pid)[0]
    sampler.start()
    if writes:
        writer.start()
    result = dnsperf(auth.dns_port, query_file, seconds)
    stop.set()
    sampler.done.set()
    if writes:
        writer.join(30)
    after = rss_kib(auth.proc.pid)[0]
    s = sampler.samples or [after]
    half = s[len(s) // 2:]
    return {"with_plan_writes": writes, "plans_written": counts["plans"], "seconds": seconds,
            "queries_per_second": round(result["qps"]), "sent": int(result["sent"]),
            "completed": int(result["completed"]), "lost": int(result["lost"]), "servfail": servfail(result["raw"]),
            "avg_latency_ms": round(result["latency"] * 1000, 2), "rss_kib_before": before, "rss_kib_after": after,
            "rss_kib_max": max(s), "rss_kib_second_half_min_max": [min(half), max(half)],
            "command": result["command"]}


async def control_client(i: int, target: str, token: str, zone: str, until: float, lat: dict, errors: list) -> int:
    ops = 0
    async with grpc.aio.insecure_channel(target, interceptors=bearer_interceptors(token)) as ch:
        stub = authority_pb2_grpc.RouteControlStub(ch)
        n = 0
        while time.monotonic() < until:
            n += 1
            rs = RecordSet(f"load-c{i}-{n}.{zone}", RRType.TXT, 60, (f"client {i} op {n}",))
            for action, want in ((create, True), (delete, False)):
                t0 = time.perf_counter()
                try:
                    reply = await stub.ChangeResourceRecordSets(authority_pb2.ChangeResourceRecordSetsRequest(
                        hosted_zone=zone, changes=[change_to_wire(action(rs))]), timeout=30)
                    t1 = time.perf_counter()
                    listed = await stub.ListResourceRecordSets(
                        authority_pb2.ListResourceRecordSetsRequest(hosted_zone=zone), timeout=30)
                    t2 = time.perf_counter()
                except grpc.RpcError as exc:
                    errors.append(f"client {i}: {exc.code().name}: {exc.details()}")
                    return ops
                lat["change"].append(t1 - t0)
                lat["list"].append(t2 - t1)
                ops += 2
                if (rs.name in {r.name for r in listed.record_sets}) != want or listed.zone_version < reply.zone_version:
                    errors.append(f"client {i}: {rs.name} {'missing' if want else 'still there'} at version "
                                  f"{listed.zone_version} after change at {reply.zone_version}")
    return ops


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


async def control_load(auth: AuthorityProcess, clients: int, seconds: float) -> dict:
    zones = [ep.zone for ep in load_scenario("oct-2025").endpoints]
    tokens = [read_token(auth.credentials / f"enactor-az{k}.token") for k in (1, 2, 3)]
    lat: dict[str, list[float]] = {"change": [], "list": []}
    errors: list[str] = []
    before = rss_kib(auth.proc.pid)[0]
    until = time.monotonic() + seconds
    started = time.monotonic()
    ops = await asyncio.gather(*(control_client(i, auth.control, tokens[i % 3], zones[i % len(zones)], until, lat,
                                                errors) for i in range(clients)))
    elapsed = time.monotonic() - started
    return {"clients": clients, "seconds": round(elapsed, 1), "calls": sum(ops),
            "calls_per_second": round(sum(ops) / elapsed), "errors_or_wrong_results": len(errors),
            "first_errors": errors[:5],
            **{f"{kind}_ms": {"p50": round(pct(v, .5), 1), "p99": round(pct(v, .99), 1),
                              "max": round(max(v) * 1000, 1) if v else None, "mean": round(statistics.mean(v) * 1000, 1)
                              if v else None} for kind, v in lat.items()},
            "rss_kib_before": before, "rss_kib_after": rss_kib(auth.proc.pid)[0]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dns-seconds", type=int, default=60)
    ap.add_argument("--clients", default="50,100,200")
    ap.add_argument("--control-seconds", type=float, default=20)
    args = ap.parse_args()
    if not shutil.which("dnsperf"):
        print("dnsperf not found: apt-get install -y dnsperf", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="load-authority-"))
    result: dict = {}
    if args.dns_seconds:
        query_file = tmp / "queries.txt"
        query_file.write_text("\n".join(query_lines(load_scenario("oct-2025"))) + "\n")
        auth = AuthorityProcess(tmp / "dns-state").start()
        try:
            planner = fleet_planner(lbs=24)
            install_plan(auth, planner.next_plan(0.0))
            result["dns"] = [dns_load(auth, args.dns_seconds, query_file, writes) for writes in (False, True)]
            for r in result["dns"]:
                print(json.dumps(r), flush=True)
        finally:
            auth.stop()
    if args.clients:
        text = scenario_text("oct-2025")[0].replace("change_seconds_per_change: 0.1", "change_seconds_per_change: 0")
        (tmp / "free-changes.yaml").write_text(text)
        auth = AuthorityProcess(tmp / "control-state", env={"RACELAB_SCENARIO": str(tmp / "free-changes.yaml")}).start()
        try:
            result["control"] = []
            for n in (int(c) for c in args.clients.split(",")):
                result["control"].append(asyncio.run(control_load(auth, n, args.control_seconds)))
                print(json.dumps(result["control"][-1]), flush=True)
        finally:
            auth.stop()
    print(json.dumps(result, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)
    dns_ok = all(r["lost"] == 0 and r["servfail"] == 0 for r in result.get("dns", []))
    control_ok = all(r["errors_or_wrong_results"] == 0 for r in result.get("control", []))
    return 0 if dns_ok and control_ok else 1


if __name__ == "__main__":
    sys.exit(main())
