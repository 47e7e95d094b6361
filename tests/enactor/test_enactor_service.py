"""Three enactor processes against a real planner and an in-test RouteControl."""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from racelab.v1 import planner_pb2 as pb, planner_pb2_grpc
from services.core import tree
from services.core.lock import read_lock
from services.core.records import RRType
from services.runtime.scenario import load_scenario

from procs import channel as grpc_channel
from procs import (env_for, free_port, metric, run_to_exit, scrape, start, stop, wait_for, wait_serving,
                           write_scenario)
from enactor_fakes import FakeDirector, FakeRouteControl, serve

pytestmark = pytest.mark.integration

ENACTORS = ("enactor-az1", "enactor-az2", "enactor-az3")

ENACTOR_SETTINGS = """\
enactor:
  lock_lease_seconds: 2.0
  backoff_base_seconds: 0.5
  backoff_multiplier: 2.0
  backoff_cap_seconds: 8.0
  poll_interval_seconds: 1.0
  cleanup_threshold_generations: 3
"""


@dataclass
class Cluster:
    route: FakeRouteControl
    director: FakeDirector
    planner: planner_pb2_grpc.PlannerStub
    endpoints: list[str]
    metrics: dict[str, int]

    def latest(self) -> pb.Plan:
        return self.planner.GetLatestPlan(pb.GetLatestPlanRequest(), timeout=2).plan

    def active(self) -> dict[str, int | None]:
        return {ep: tree.active_generation(self.route.snapshot(ep), ep) for ep in self.endpoints}

    def converged(self) -> int | None:
        """The latest generation, once every endpoint and every enactor is on it and idle."""
        try:
            gen = self.latest().generation
        except grpc.RpcError:
            return None  # no plan yet
        if any(g != gen for g in self.active().values()):
            return None
        for name, port in self.metrics.items():
            text = scrape(port)
            if (metric(text, "racelab_enactor_applied_generation", enactor=name) != gen
                    or metric(text, "racelab_enactor_phase", enactor=name, phase="idle") != 1):
                return None
        return gen


@contextlib.contextmanager
def cluster(tmp_path: Path, scenario_extra: str, plan_interval: float):
    scenario = write_scenario(tmp_path / "scenario.yaml", plan_interval=plan_interval,
                              extra=ENACTOR_SETTINGS + scenario_extra)
    endpoints = [e.name for e in load_scenario(str(scenario)).endpoints]
    route, director = FakeRouteControl(endpoints), FakeDirector()
    server, fake_port = serve(route, director)
    env = env_for(scenario)
    planner_port = free_port()
    procs = [start("services.planner", ["--listen", f"127.0.0.1:{planner_port}", "--state-dir",
                                        str(tmp_path / "planner")], env, tmp_path / "planner.log")]
    metrics = {}
    try:
        for name in ENACTORS:
            metrics[name] = free_port()
            procs.append(start("services.enactor", [
                "--instance", name, "--planner", f"127.0.0.1:{planner_port}",
                "--authority", f"127.0.0.1:{fake_port}", "--director", f"127.0.0.1:{fake_port}",
                "--metrics-addr", f"127.0.0.1:{metrics[name]}"], env, tmp_path / f"{name}.log"))
        wait_serving(f"127.0.0.1:{planner_port}", proc=procs[0])
        channel = grpc_channel(f"127.0.0.1:{planner_port}")
        c = Cluster(route, director, planner_pb2_grpc.PlannerStub(channel), endpoints, metrics)
        wait_for(lambda: all(_scrapes(p) for p in metrics.values()), 10, "enactor metrics")
        for i in (1, 2, 3):
            c.planner.RegisterLoadBalancer(pb.RegisterLoadBalancerRequest(load_balancer=pb.LoadBalancer(
                lb_id=f"lb-{i:03d}", ipv4=f"127.0.1.{i}", ipv6=f"fd00::1:{i}",
                availability_zone=f"use1-az{i}", capacity=100)))
        yield c
        channel.close()
    finally:
        codes = [stop(p) for p in procs]
        server.stop(None)
        logs = {p.name: p.read_text()[-2000:] for p in tmp_path.glob("*.log")}
    assert codes == [0] * len(procs), (codes, logs)


def _scrapes(port: int) -> bool:
    try:
        scrape(port)
        return True
    except OSError:
        return False


def root_targets(c: Cluster, endpoint: str) -> set[str]:
    snap = c.route.snapshot(endpoint)
    return {rs.set_identifier for rs in snap.rrsets(tree.active_tree(snap, endpoint), RRType.A)}


def test_bad_settings_exit_2_with_one_line(tmp_path):
    env = env_for(write_scenario(tmp_path / "s.yaml"))
    for args in (["--planner", "127.0.0.1:1"],  # no authority
                 ["--planner", "nope", "--authority", "127.0.0.1:1"],
                 ["--planner", "127.0.0.1:1", "--authority", "127.0.0.1:1", "--rpc-timeout", "soon"],
                 ["--planner", "127.0.0.1:1", "--authority", "127.0.0.1:1", "--fixes", "magic"]):
        done = run_to_exit("services.enactor", args, env)
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("enactor: error:"), done.stderr


def test_three_enactors_converge_to_the_newest_plan(tmp_path):
    # Plans only on fleet changes here (the interval is 10 simulated minutes).
    with cluster(tmp_path, "", plan_interval=600) as c:
        gen = wait_for(c.converged, 10, "convergence on the first plans")
        assert root_targets(c, "dynamodb.us-east-1.amazonaws.com") == {"lb-001", "lb-002", "lb-003"}

        # The three registrations came as a burst of plans the enactors may have
        # taken in any order (stale flips are possible there: that is the race).
        stale_before = {n: metric(scrape(p), "racelab_enactor_stale_flips_total", enactor=n)
                        for n, p in c.metrics.items()}

        # One health change at a time: each makes a plan; the enactors follow to the newest.
        for healthy in (False, True, False):
            c.planner.ReportHealth(pb.ReportHealthRequest(lb_id="lb-002", healthy=healthy, capacity=100))
            gen = wait_for(lambda: (g := c.converged()) and g > gen and g, 10, "convergence after a health change")
        assert gen == c.latest().generation
        for ep in c.endpoints:
            assert root_targets(c, ep) == {"lb-001", "lb-003"}, ep
            snap = c.route.snapshot(ep)
            # Clean-up kept the zone small: no tree older than the threshold behind the applied plan.
            assert all(g >= gen - 3 for g in tree.trees_in(snap).values()), (ep, tree.trees_in(snap))
            _, lock = read_lock(snap)
            assert lock is not None and lock.holder in ENACTORS

        for name, port in c.metrics.items():
            text = scrape(port)
            assert metric(text, "racelab_enactor_plan_generation", enactor=name) == 0
            assert metric(text, "racelab_enactor_runs_total", enactor=name, outcome="partial") == 0
            assert metric(text, "racelab_enactor_runs_total", enactor=name, outcome="finished") >= 3
            assert metric(text, "racelab_enactor_stale_flips_total", enactor=name) == stale_before[name]
        total = sum(metric(scrape(p), "racelab_enactor_batches_total", result="committed") for p in c.metrics.values())
        assert total >= 5 * 3  # at least install + flip + cleanup for every endpoint

        runs = c.director.of_kind("enactor.run")
        assert runs and all(re.fullmatch(r"enactor-az\d took generation (\d+) \(freshness check passed: "
                                         r"\1 > \d+\)", e.message) for e in runs), [e.message for e in runs]
        flips = c.director.of_kind("enactor.flip")
        assert flips and all(re.fullmatch(r"enactor-az\d applied generation \d+ over (\d+|nothing) on [a-z0-9.-]+",
                                          e.message) for e in flips), [e.message for e in flips]


CONDITION = """\
fixes: [all]
conditions:
  - {enactor: enactor-az1, from: "23:30", until: "23:59", delay_seconds: [1.0, 3.0]}
"""


def test_delayed_enactor_loses_the_lock(tmp_path):
    # A plan every 2 simulated seconds, and every control-API call of enactor-az1 1-3 s late.
    with cluster(tmp_path, CONDITION, plan_interval=2) as c:
        def contended():
            text = scrape(c.metrics["enactor-az1"])
            return metric(text, "racelab_enactor_lock_contention_total", enactor="enactor-az1") >= 3 and text
        text = wait_for(contended, 10, "lock contention on enactor-az1", interval=0.2)
        lost = metric(text, "racelab_enactor_batches_total", enactor="enactor-az1", result="lock_lost")
        busy = metric(text, "racelab_enactor_lock_contention_total", enactor="enactor-az1", outcome="busy")
        assert lost + busy >= 3
        assert metric(text, "racelab_enactor_backoff_seconds_count") >= 1
        # The others, not delayed, keep committing.
        others = sum(metric(scrape(c.metrics[n]), "racelab_enactor_batches_total", enactor=n, result="committed")
                     for n in ("enactor-az2", "enactor-az3"))
        assert others > 0


def test_enactors_idle_while_dns_automation_is_disabled(tmp_path):
    with cluster(tmp_path, "", plan_interval=600) as c:
        gen = wait_for(lambda: root_targets(c, "dynamodb.us-east-1.amazonaws.com") == {"lb-001", "lb-002", "lb-003"}
                       and c.converged(), 10, "convergence on the whole fleet")
        assert c.planner.SetAutomation(pb.SetAutomationRequest(enabled=False)).enabled is False
        with pytest.raises(grpc.RpcError) as err:
            c.latest()
        assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert err.value.details() == "DNS automation disabled"
        batches = c.route.committed + c.route.rejected
        c.planner.ReportHealth(pb.ReportHealthRequest(lb_id="lb-002", healthy=False, capacity=100))
        time.sleep(1.5)  # 90 simulated seconds: enactors poll every simulated second
        assert c.route.committed + c.route.rejected == batches  # DNS frozen as it is
        assert set(c.active().values()) == {gen}
        c.planner.SetAutomation(pb.SetAutomationRequest(enabled=True))
        newer = wait_for(lambda: (g := c.converged()) and g > gen and g, 10, "convergence once automation is back")
        assert root_targets(c, "dynamodb.us-east-1.amazonaws.com") == {"lb-001", "lb-003"}
        assert newer == c.latest().generation
    logs = "".join(p.read_text() for p in tmp_path.glob("enactor-*.log"))
    assert "Traceback" not in logs
