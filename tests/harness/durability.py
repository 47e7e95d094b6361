"""kill -9 in the middle of writes: nothing acknowledged is lost, nothing is half-applied.

Authority: three writers (the enactors' identities) send tagged change batches
to the endpoint zones at once; the authority is SIGKILLed at a random moment,
restarted on the same state directory, and every zone is listed:
- every acknowledged batch is there (its records created, the ones it deleted gone);
- the batch each writer had in flight is all there or not at all;
- no record appears that no batch wrote; zone versions never go back.
Planner: three writers re-register load balancers (each a new address) and
shift traffic while a watcher streams plans; it is SIGKILLed and restarted:
- every plan a client was served (streamed, or returned by ShiftTraffic) is in
  the history, unchanged; the history's generations only go up;
- every acknowledged registration is in the first plan after the restart
  (or the one in flight, if it made it).
Each iteration continues on the state the previous one left (bench/kill9_authority.py).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from racelab.v1 import authority_pb2, authority_pb2_grpc, planner_pb2, planner_pb2_grpc
from harness.authority import REPO, AuthorityProcess, free_port, tester_credentials
from services.core.records import RecordSet, RRType, create, delete
from services.runtime.auth import FAST_RECONNECT, read_token, sync_channel
from services.runtime.scenario import load_scenario
from services.runtime.wire import change_to_wire

WRITERS = ("enactor-az1", "enactor-az2", "enactor-az3")
START_TIMEOUT = 60.0  # generous: the machine is shared, and a slow start is not what is measured


@dataclass
class Batch:
    writer: int
    seq: int
    zone: str
    creates: list[RecordSet]
    deletes: list[RecordSet]
    acked_version: int | None = None  # None: no answer (in flight when the process died)


@dataclass
class Tally:
    iterations: int = 0
    acknowledged: int = 0  # batches (authority) or plans and registrations (planner) acknowledged
    in_flight: int = 0  # unanswered at the kill
    in_flight_applied: int = 0
    lost: int = 0  # acknowledged, then missing after the restart: must stay 0
    half_applied: int = 0  # must stay 0
    other: list[str] = field(default_factory=list)  # anything else wrong, in words
    restart_seconds: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.half_applied == 0 and not self.other

    def summary(self) -> dict:
        rs = sorted(self.restart_seconds) or [0.0]
        return {"iterations": self.iterations, "acknowledged": self.acknowledged, "in_flight": self.in_flight,
                "in_flight_applied": self.in_flight_applied, "lost": self.lost, "half_applied": self.half_applied,
                "problems": self.other[:20], "restart_seconds_median": round(rs[len(rs) // 2], 2),
                "restart_seconds_max": round(rs[-1], 2)}


def _kill_after(proc: subprocess.Popen, rng: random.Random, low: float, high: float) -> float:
    delay = rng.uniform(low, high)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    return delay


# ---- the authority ---------------------------------------------------------

class AuthorityKiller:
    def __init__(self, workdir: Path, seed: int = 1, snapshot_every: int = 25, scenario: Path | None = None):
        """`scenario`: a scenario file for the authority (its zones: e.g. 100,000 account CNAMEs)."""
        self.rng = random.Random(seed)
        self.workdir = workdir
        self.zones = [ep.zone for ep in load_scenario("oct-2025").endpoints]
        self.creds = tester_credentials(workdir / "credentials")
        env = {"RACELAB_LOG_LEVEL": "INFO", **({"RACELAB_SCENARIO": str(scenario)} if scenario else {})}
        self.auth = AuthorityProcess(workdir / "state", credentials=self.creds, env=env,
                                     extra=["--snapshot-every", str(snapshot_every)])
        self.present: set[tuple[str, str]] = set()  # (zone, record name) the model says exist
        self.versions: dict[str, int] = {}
        self.tally = Tally()

    def run(self, iterations: int) -> Tally:
        started = time.monotonic()
        self.auth.start(START_TIMEOUT)
        self.tally.restart_seconds.append(time.monotonic() - started)
        try:
            for i in range(iterations):
                self.iteration(i)
        finally:
            self.auth.stop()
        return self.tally

    def iteration(self, i: int) -> None:
        stop = threading.Event()
        logs: list[list[Batch]] = [[] for _ in WRITERS]
        threads = [threading.Thread(target=self._writer, args=(i, w, logs[w], stop), daemon=True)
                   for w in range(len(WRITERS))]
        for t in threads:
            t.start()
        _kill_after(self.auth.proc, self.rng, 0.05, 1.2)
        stop.set()
        for t in threads:
            t.join(30)
        self.auth.kill()
        started = time.monotonic()
        self.auth.start(START_TIMEOUT)
        self.tally.restart_seconds.append(time.monotonic() - started)
        self.verify(logs)
        self.clean_up(before=i - 1)
        self.tally.iterations += 1

    def clean_up(self, before: int) -> None:
        """Delete what iterations before `before` left (one batch per zone), so restarts stay as quick as the
        first ones: the answers the authority pre-encodes on start grow with the zones."""
        for zone in self.zones:
            old = sorted(name for z, name in self.present if z == zone and int(name[1:].split("-", 1)[0]) < before)
            if old:
                self.auth.change(zone, [delete(RecordSet(name, RRType.TXT, 60, (name.split(".")[0].rsplit("-r", 1)[0],)))
                                        for name in old], "clean-up")
                self.present -= {(zone, name) for name in old}

    def _writer(self, iteration: int, w: int, log: list[Batch], stop: threading.Event) -> None:
        rng = random.Random(f"{iteration}/{w}")
        with sync_channel(self.auth.control, read_token(self.creds / f"{WRITERS[w]}.token")) as ch:
            stub = authority_pb2_grpc.RouteControlStub(ch)
            seq = 0
            while not stop.is_set():
                zone = self.zones[(w + seq) % len(self.zones)]
                tag = f"k{iteration}-w{w}-s{seq}"
                creates = [RecordSet(f"{tag}-r{r}.{zone}", RRType.TXT, 60, (tag,))
                           for r in range(rng.randint(1, 30))]
                earlier = seq - len(self.zones)  # this writer's batch to the same zone, a round ago
                deletes = log[earlier].creates if earlier >= 0 and log[earlier].acked_version else []
                batch = Batch(w, seq, zone, creates, deletes)
                log.append(batch)
                request = authority_pb2.ChangeResourceRecordSetsRequest(
                    hosted_zone=zone, comment=tag,
                    changes=[change_to_wire(delete(rs)) for rs in deletes] + [change_to_wire(create(rs))
                                                                              for rs in creates])
                try:
                    batch.acked_version = stub.ChangeResourceRecordSets(request, timeout=10).zone_version
                except grpc.RpcError as exc:
                    if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
                                          grpc.StatusCode.DEADLINE_EXCEEDED):
                        self.tally.other.append(f"{tag}: {exc.code().name}: {exc.details()}")
                    return  # the authority is gone: this batch's fate is unknown
                seq += 1

    def verify(self, logs: list[list[Batch]]) -> None:
        listed: dict[str, set[str]] = {}
        for zone in self.zones:
            reply = self.auth.list(zone)
            listed[zone] = {rs.name.rstrip(".").lower() for rs in reply.record_sets
                            if rs.name.startswith("k") and "-w" in rs.name}
            if reply.zone_version < self.versions.get(zone, 0):
                self.tally.other.append(f"{zone}: version {reply.zone_version} after {self.versions[zone]}")
            self.versions[zone] = reply.zone_version
        for log in logs:
            applied_batches = []
            for batch in log:
                there = {rs.name for rs in batch.creates if rs.name in listed[batch.zone]}
                still = {rs.name for rs in batch.deletes if rs.name in listed[batch.zone]}
                if batch.acked_version is not None:
                    self.tally.acknowledged += 1
                    applied_batches.append(batch)
                    if batch.acked_version > self.versions[batch.zone]:
                        self.tally.other.append(f"{batch.zone}: acknowledged at version {batch.acked_version}, "
                                                f"recovered at {self.versions[batch.zone]}")
                    continue
                self.tally.in_flight += 1  # all of it, or none of it
                if len(there) == len(batch.creates) and not still:
                    self.tally.in_flight_applied += 1
                    applied_batches.append(batch)
                elif there or len(still) != len(batch.deletes):
                    self.tally.half_applied += 1
                    self.tally.other.append(f"in-flight batch w{batch.writer}-s{batch.seq} on {batch.zone}: "
                                            f"{len(there)}/{len(batch.creates)} created, "
                                            f"{len(batch.deletes) - len(still)}/{len(batch.deletes)} deleted")
            deleted_later: set[str] = set()
            for batch in reversed(applied_batches):  # what an acknowledged batch wrote stays, unless deleted since
                expected = {rs.name for rs in batch.creates} - deleted_later
                gone = {rs.name for rs in batch.deletes}
                if batch.acked_version is not None and (expected - listed[batch.zone] or gone & listed[batch.zone]):
                    self.tally.lost += 1
                    self.tally.other.append(f"acknowledged batch w{batch.writer}-s{batch.seq} on {batch.zone}: "
                                            f"{len(expected - listed[batch.zone])} record(s) missing, "
                                            f"{len(gone & listed[batch.zone])} not deleted")
                deleted_later |= gone
            for batch in applied_batches:
                self.present |= {(batch.zone, rs.name) for rs in batch.creates}
                self.present -= {(batch.zone, rs.name) for rs in batch.deletes}
        actual = {(zone, name) for zone, names in listed.items() for name in names}
        if actual != self.present:
            self.tally.other.append(f"{len(self.present - actual)} record(s) lost, "
                                    f"{len(actual - self.present)} appeared from nowhere")
            self.present = actual


# ---- the planner -----------------------------------------------------------

PLANNER_SCENARIO = """\
name: kill9-planner
seed: 3
epoch: "2025-10-19T23:30:00-07:00"
schedule:
  - {wall: 0, pdt: "23:30"}
  - {wall: 10, pdt: "23:40"}
end: "23:59"
fleet:
  load_balancers: 3
  availability_zones: [use1-az1, use1-az2, use1-az4]
planner:
  start_generation: 110
  plan_interval_seconds: 2.0
"""


class PlannerKiller:
    def __init__(self, workdir: Path, seed: int = 1):
        self.rng = random.Random(seed)
        self.workdir = workdir
        self.creds = tester_credentials(workdir / "credentials")
        self.scenario = workdir / "scenario.yaml"
        workdir.mkdir(parents=True, exist_ok=True)
        self.scenario.write_text(PLANNER_SCENARIO)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.wall_start = time.time()
        self.address: dict[str, str] = {}  # lb id -> its acknowledged address
        self.history: dict[int, bytes] = {}  # plans seen in the history so far
        self.tally = Tally()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RACELAB_")}
        env.update(PYTHONPATH=str(REPO), RACELAB_SCENARIO=str(self.scenario), RACELAB_LOG_LEVEL="WARNING",
                   RACELAB_WALL_START=str(self.wall_start), RACELAB_TOKEN_FILE=str(self.creds / "planner.token"),
                   RACELAB_ACL_FILE=str(self.creds / "acl.yaml"))
        started = time.monotonic()
        with open(self.workdir / "planner.log", "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "services.planner", "--listen", self.target,
                                          "--state-dir", str(self.workdir / "state")], env=env, cwd=REPO,
                                         stdout=out, stderr=subprocess.STDOUT)
        with sync_channel(self.target, read_token(self.creds / "tester.token"), options=FAST_RECONNECT) as ch:
            stub = planner_pb2_grpc.PlannerStub(ch)
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                try:
                    stub.ListPlans(planner_pb2.ListPlansRequest(limit=1), timeout=1)
                    break
                except grpc.RpcError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"planner did not start: {(self.workdir / 'planner.log').read_text()}")
                    time.sleep(0.05)
        self.tally.restart_seconds.append(time.monotonic() - started)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(15)

    def run(self, iterations: int) -> Tally:
        self.start()
        try:
            for i in range(iterations):
                self.iteration(i)
        finally:
            self.stop()
        return self.tally

    def stub(self, identity: str) -> tuple[grpc.Channel, planner_pb2_grpc.PlannerStub]:
        ch = sync_channel(self.target, read_token(self.creds / f"{identity}.token"))
        return ch, planner_pb2_grpc.PlannerStub(ch)

    def iteration(self, i: int) -> None:
        stop = threading.Event()
        served: dict[int, bytes] = {}
        shifted: list[int] = []
        in_flight: dict[str, str] = {}
        watcher = threading.Thread(target=self._watch, args=(served, stop), daemon=True)
        writers = [threading.Thread(target=self._writer, args=(i, w, shifted, in_flight, stop), daemon=True)
                   for w in range(3)]
        watcher.start()
        for t in writers:
            t.start()
        time.sleep(0.3)  # the watcher has its stream
        _kill_after(self.proc, self.rng, 0.05, 1.0)
        stop.set()
        for t in writers + [watcher]:
            t.join(30)
        self.start()
        self.verify(served, shifted, in_flight)
        self.tally.iterations += 1

    def _watch(self, served: dict[int, bytes], stop: threading.Event) -> None:
        ch, stub = self.stub("enactor-az1")
        try:
            for plan in stub.WatchPlans(planner_pb2.WatchPlansRequest()):
                served[plan.generation] = plan.SerializeToString(deterministic=True)
        except grpc.RpcError:
            pass  # the planner died
        finally:
            ch.close()

    def _writer(self, iteration: int, w: int, shifted: list[int], in_flight: dict[str, str],
                stop: threading.Event) -> None:
        ch, stub = self.stub("director" if w == 0 else "dynamodb")
        n = 0
        try:
            while not stop.is_set():
                n += 1
                if w == 0:  # the operators: each shift is answered with the plan it made
                    reply = stub.ShiftTraffic(planner_pb2.ShiftTrafficRequest(
                        availability_zone="use1-az2", away=n % 2 == 1), timeout=10)
                    if reply.effective_generation:
                        shifted.append(reply.effective_generation)
                    continue
                lb_id = f"lb-w{w}-{n % 2}"
                ipv4 = f"10.{w}.{iteration % 250}.{n % 250 + 1}"
                in_flight[lb_id] = ipv4
                stub.RegisterLoadBalancer(planner_pb2.RegisterLoadBalancerRequest(load_balancer=planner_pb2.LoadBalancer(
                    lb_id=lb_id, ipv4=ipv4, ipv6=f"fd00::{w}:{n % 65535:x}", availability_zone="use1-az1",
                    capacity=100)), timeout=10)
                self.address[lb_id] = ipv4
                del in_flight[lb_id]
                self.tally.acknowledged += 1
        except grpc.RpcError:
            pass
        finally:
            ch.close()

    def _list_all(self, stub: planner_pb2_grpc.PlannerStub) -> list[planner_pb2.Plan]:
        plans, since = [], 0
        while True:
            reply = stub.ListPlans(planner_pb2.ListPlansRequest(since_generation=since, limit=1000), timeout=30)
            plans += reply.plans
            if not reply.plans or reply.plans[-1].generation >= reply.latest_generation:
                return plans
            since = reply.plans[-1].generation

    def verify(self, served: dict[int, bytes], shifted: list[int], in_flight: dict[str, str]) -> None:
        ch, stub = self.stub("tester")
        try:
            plans = self._list_all(stub)
            history = {p.generation: p.SerializeToString(deterministic=True) for p in plans}
            generations = [p.generation for p in plans]
            if generations != sorted(set(generations)):
                self.tally.other.append("plan history generations are not strictly increasing")
            for generation, plan in self.history.items():
                if history.get(generation) != plan:
                    self.tally.lost += 1
                    self.tally.other.append(f"plan {generation}, in the history before, is gone or changed")
            for generation, plan in served.items():
                self.tally.acknowledged += 1
                if history.get(generation) != plan:
                    self.tally.lost += 1
                    self.tally.other.append(f"plan {generation} was served, then lost or changed")
            for generation in shifted:
                self.tally.acknowledged += 1
                if generation not in history:
                    self.tally.lost += 1
                    self.tally.other.append(f"plan {generation} answered a ShiftTraffic, then lost")
            self.history = history
            # The planner publishes a plan as it restarts (it has a fleet): the registrations as acknowledged.
            newest_before = max([*served, *shifted, 0])
            deadline = time.monotonic() + 10
            while True:
                latest = stub.GetLatestPlan(planner_pb2.GetLatestPlanRequest(), timeout=10).plan
                if latest.generation > newest_before or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        finally:
            ch.close()
        if latest.generation <= newest_before:
            self.tally.other.append(f"no new plan after the restart (latest {latest.generation})")
        addresses = {t.lb_id: t.ipv4 for ep in latest.endpoints for t in ep.targets}
        self.tally.in_flight += len(in_flight)
        for lb_id in sorted({*self.address, *in_flight}):
            ipv4 = self.address.get(lb_id)
            if addresses.get(lb_id) == ipv4:
                continue
            if lb_id in in_flight and in_flight[lb_id] == addresses.get(lb_id):
                self.tally.in_flight_applied += 1
                self.address[lb_id] = in_flight[lb_id]
                continue
            self.tally.lost += 1
            self.tally.other.append(f"registration of {lb_id} at {ipv4} acknowledged, plan has "
                                    f"{addresses.get(lb_id)}")
            self.address[lb_id] = addresses.get(lb_id)
