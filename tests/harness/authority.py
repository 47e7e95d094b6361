"""Helpers to run a real authority process and feed it record trees (tests, benchmarks)."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc

from racelab.v1 import authority_pb2, authority_pb2_grpc
from services.core import tree
from services.core.planner import Planner
from services.core.plans import DEFAULT_ENDPOINTS, Endpoint, LoadBalancer, Plan
from services.core.records import Change
from services.runtime.auth import FAST_RECONNECT, read_token, sync_channel
from services.runtime.wire import ZoneListing, change_to_wire, record_to_wire

REPO = Path(__file__).resolve().parents[2]
# Tests and benchmarks call as "tester", an identity that may do anything.
TESTER = {"tester": {"methods": ["*"], "zones": ["*"]}}


def tester_credentials(directory: Path) -> Path:
    """A run's credentials plus the all-powerful "tester" (kept if already there: restarts reuse them)."""
    from services.runtime.credentials import write_credentials
    from services.runtime.scenario import load_scenario
    if not (directory / "acl.yaml").exists():
        write_credentials(directory, load_scenario("oct-2025"), extra=TESTER)
    return directory


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


class AuthorityProcess:
    """`python -m services.authority` as a subprocess on free loopback ports."""

    def __init__(self, state_dir: Path, *, extra: list[str] | None = None, env: dict[str, str] | None = None,
                 dns_port: int | None = None, control_port: int | None = None, metrics_port: int | None = None,
                 credentials: Path | None = None, identity: str = "tester"):
        self.state_dir = Path(state_dir)
        self.credentials = tester_credentials(credentials or self.state_dir.parent / f"{self.state_dir.name}.credentials")
        self.token = read_token(self.credentials / f"{identity}.token")
        self.control_port = control_port or free_port()
        self.dns_port = dns_port or free_port()
        self.metrics_port = metrics_port
        self.extra = extra or []
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.log_path = self.state_dir.parent / f"{self.state_dir.name}.authority.log"
        self._log = None
        self._channel: grpc.Channel | None = None

    @property
    def control(self) -> str:
        return f"127.0.0.1:{self.control_port}"

    @property
    def dns(self) -> tuple[str, int]:
        return ("127.0.0.1", self.dns_port)

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "services.authority", "--listen", self.control,
                "--dns-listen", f"127.0.0.1:{self.dns_port}", "--state-dir", str(self.state_dir)]
        if self.metrics_port:
            argv += ["--metrics-addr", f"127.0.0.1:{self.metrics_port}"]
        return argv + self.extra

    def start(self, timeout: float = 20.0) -> "AuthorityProcess":
        env = {**os.environ, "PYTHONPATH": str(REPO), "RACELAB_LOG_LEVEL": "WARNING",
               "RACELAB_TOKEN_FILE": str(self.credentials / "authority.token"),
               "RACELAB_ACL_FILE": str(self.credentials / "acl.yaml"), **self.env}
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        # Readiness through ListHostedZones: the process starts gRPC last, after its state
        # and DNS are up. (The standard health Check fails under the aio interceptor: the
        # runtime registers the sync HealthServicer on an aio server.)
        deadline = time.monotonic() + timeout
        # Reconnecting fast: gRPC's reconnect back-off after the server is up is not the restart's time.
        with sync_channel(self.control, self.token, options=FAST_RECONNECT) as ch:
            stub = authority_pb2_grpc.RouteControlStub(ch)
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"authority exited with {self.proc.returncode}: {self.log_path.read_text()}")
                try:
                    stub.ListHostedZones(authority_pb2.ListHostedZonesRequest(), timeout=0.5)
                    return
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("authority did not become ready")
                time.sleep(0.05)

    def stub(self) -> authority_pb2_grpc.RouteControlStub:
        if self._channel is None:
            self._channel = sync_channel(self.control, self.token)
        return authority_pb2_grpc.RouteControlStub(self._channel)

    def change(self, zone: str, changes: list[Change], comment: str = "") -> authority_pb2.ChangeResourceRecordSetsResponse:
        return self.stub().ChangeResourceRecordSets(authority_pb2.ChangeResourceRecordSetsRequest(
            hosted_zone=zone, changes=[change_to_wire(c) for c in changes], comment=comment), timeout=10)

    def list(self, zone: str) -> authority_pb2.ListResourceRecordSetsResponse:
        """The whole zone at one version, read page by page as the enactors read it, in one message."""
        listing = ZoneListing(zone)
        while (request := listing.next_request()) is not None:
            listing.add(self.stub().ListResourceRecordSets(request, timeout=10))
        return authority_pb2.ListResourceRecordSetsResponse(record_sets=[record_to_wire(rs) for rs in listing.records],
                                                            zone_version=listing.version or 0)

    def _close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no final snapshot."""
        self._close_channel()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        if self._log:
            self._log.close()

    def stop(self) -> int | None:
        self._close_channel()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._log:
            self._log.close()
        return self.proc.returncode if self.proc else None


def fleet_planner(endpoints: tuple[Endpoint, ...] = DEFAULT_ENDPOINTS, lbs: int = 6, seed: int = 1,
                  last_generation: int = 109) -> Planner:
    planner = Planner(endpoints, random.Random(seed), last_generation=last_generation)
    zones = ("use1-az1", "use1-az2", "use1-az4")
    for i in range(1, lbs + 1):
        planner.register(LoadBalancer(f"lb-{i}", f"127.0.1.{i}", f"fd00:ddb::{i:x}", zones[i % len(zones)]))
    return planner


def install_plan(auth: AuthorityProcess, plan: Plan, previous: Plan | None = None, ttl: int = 5,
                 endpoints: list[str] | None = None) -> None:
    """Install each endpoint's tree (one batch) and flip to it (another), as an enactor does, minus the lock."""
    for ep in plan.endpoints:
        if endpoints is not None and ep.endpoint not in endpoints:
            continue
        auth.change(ep.zone, tree.install_changes(ep, plan.generation, ttl), f"install {plan.generation}")
        rollback = tree.tree_root(previous.for_endpoint(ep.endpoint)) if previous else None
        auth.change(ep.zone, tree.activation_changes(ep.endpoint, ep.dual_stack, tree.tree_root(ep), rollback),
                    f"flip {plan.generation}")


def answer_cache_with_plan(lbs: int = 6):
    """The oct-2025 zones in memory with one plan installed and active, and their AnswerCache (no process)."""
    from services.authority.answers import AnswerCache
    from services.authority.state import initial_zones
    from services.core.zone import ZoneSet
    from services.runtime.scenario import load_scenario
    scenario = load_scenario("oct-2025")
    zones = ZoneSet()
    for z in initial_zones(scenario):
        zones.add(z)
    plan = fleet_planner(lbs=lbs).next_plan(0.0)
    for ep in plan.endpoints:
        zone = zones[ep.zone]
        zone.apply(tree.install_changes(ep, plan.generation, 5))
        zone.apply(tree.activation_changes(ep.endpoint, ep.dual_stack, tree.tree_root(ep), None))
    cache = AnswerCache(zones)
    cache.rebuild_all()
    return cache
