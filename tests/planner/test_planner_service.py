"""The planner as a process: plans over simulated time, fleet changes, durable history."""

from __future__ import annotations

import re
import signal
import threading
import time

import grpc
import pytest

from racelab.v1 import planner_pb2 as pb, planner_pb2_grpc

from procs import channel as grpc_channel
from procs import (env_for, free_port, metric, run_to_exit, scrape, start, stop, wait_for, wait_serving,
                           write_scenario)

pytestmark = pytest.mark.integration

TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def lb(i: int, **over) -> pb.LoadBalancer:
    fields = dict(lb_id=f"lb-{i:03d}", ipv4=f"127.0.1.{i}", ipv6=f"fd00::1:{i}",
                  availability_zone=f"use1-az{i}", capacity=100)
    fields.update(over)
    return pb.LoadBalancer(**fields)


def latest(stub) -> pb.Plan:
    return stub.GetLatestPlan(pb.GetLatestPlanRequest(), timeout=2).plan


def targets(plan: pb.Plan) -> set[str]:
    """LB ids of the legacy endpoint's targets (every endpoint is planned alike here)."""
    ep = [e for e in plan.endpoints if e.endpoint == "dynamodb.us-east-1.amazonaws.com"][0]
    return {t.lb_id for t in ep.targets}


def test_bad_settings_exit_2_with_one_line(tmp_path):
    env = env_for(write_scenario(tmp_path / "s.yaml"))
    for args in (["--listen", f"127.0.0.1:{free_port()}"],  # no state dir
                 ["--listen", "127.0.0.1:notaport", "--state-dir", str(tmp_path)],
                 ["--listen", f"127.0.0.1:{free_port()}", "--state-dir", str(tmp_path), "--scenario", "nope"]):
        done = run_to_exit("services.planner", args, env)
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("planner: error:"), done.stderr


def test_plans_over_time_fleet_changes_and_durable_history(tmp_path):
    # 90 simulated seconds between plans = 1.5 wall seconds at 60x.
    scenario = write_scenario(tmp_path / "s.yaml", plan_interval=90)
    env = env_for(scenario)
    port, metrics_port = free_port(), free_port()
    state = tmp_path / "state"
    args = ["--listen", f"127.0.0.1:{port}", "--state-dir", str(state), "--metrics-addr", f"127.0.0.1:{metrics_port}"]
    proc = start("services.planner", args, env, tmp_path / "planner.log")
    try:
        wait_serving(f"127.0.0.1:{port}", proc=proc)
        ch = grpc_channel(f"127.0.0.1:{port}")
        stub = planner_pb2_grpc.PlannerStub(ch)

        with pytest.raises(grpc.RpcError) as err:
            latest(stub)
        assert err.value.code() is grpc.StatusCode.NOT_FOUND

        for bad in (lb(1, lb_id=""), lb(1, ipv4="300.1.1.1"), lb(1, ipv4="fd00::1"), lb(1, ipv6="nope")):
            with pytest.raises(grpc.RpcError) as err:
                stub.RegisterLoadBalancer(pb.RegisterLoadBalancerRequest(load_balancer=bad))
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as err:
            stub.ReportHealth(pb.ReportHealthRequest(lb_id="lb-999", healthy=True))
        assert err.value.code() is grpc.StatusCode.NOT_FOUND

        # An LB for one cell alone: the other endpoints would get trees with no address,
        # which no enactor could flip to. No plan until every endpoint is served.
        cell_only = lb(4, endpoints=["cell-1.ddb.us-east-1.amazonaws.com"])
        stub.RegisterLoadBalancer(pb.RegisterLoadBalancerRequest(load_balancer=cell_only))
        time.sleep(0.5)  # ten times the planner's coalescing of fleet changes
        with pytest.raises(grpc.RpcError) as err:
            latest(stub)
        assert err.value.code() is grpc.StatusCode.NOT_FOUND

        for i in (1, 2, 3):
            stub.RegisterLoadBalancer(pb.RegisterLoadBalancerRequest(load_balancer=lb(i)))
        plan = wait_for(lambda: _plan_where(stub, lambda p: targets(p) == {"lb-001", "lb-002", "lb-003"}), 3,
                        "a plan over the three LBs")
        history = stub.ListPlans(pb.ListPlansRequest()).plans
        assert history[0].generation == 110  # the scenario's start_generation
        assert all(e.targets for p in history for e in p.endpoints), "a plan left an endpoint with no LB"
        assert [p.generation for p in history] == list(range(110, history[-1].generation + 1))
        assert TRACEPARENT.match(plan.traceparent), plan.traceparent
        assert len(plan.endpoints) == 5
        assert {e.endpoint: len(e.targets) for e in plan.endpoints if len(e.targets) != 3} == {
            "cell-1.ddb.us-east-1.amazonaws.com": 4}
        assert stub.GetPlan(pb.GetPlanRequest(generation=110)).plan.generation == 110

        # Watch: the latest first, then each new one.
        watched: list[int] = []
        watch = stub.WatchPlans(pb.WatchPlansRequest())

        def read() -> None:
            try:
                for p in watch:
                    watched.append(p.generation)
            except grpc.RpcError:
                pass  # cancelled at the end of the test
        reader = threading.Thread(target=read, daemon=True)
        reader.start()

        # With no fleet change, plans still come on the simulated interval.
        g0 = latest(stub).generation
        wait_for(lambda: latest(stub).generation >= g0 + 2, 6, "two interval plans")
        plans = stub.ListPlans(pb.ListPlansRequest(since_generation=g0)).plans
        gap = plans[1].created_at_sim_seconds - plans[0].created_at_sim_seconds
        assert 80 <= gap <= 110, gap  # 90 simulated seconds, give or take scheduling

        # A change of health makes a plan at once (well inside the interval), without the LB.
        before = latest(stub).generation
        stub.ReportHealth(pb.ReportHealthRequest(lb_id="lb-002", healthy=False, capacity=100))
        plan = wait_for(lambda: _plan_where(stub, lambda p: p.generation > before), 1.0,
                        "a plan on health change")
        assert targets(plan) == {"lb-001", "lb-003"}
        # Reporting the same health again is not a change: no extra plan.
        stub.ReportHealth(pb.ReportHealthRequest(lb_id="lb-002", healthy=False, capacity=100))

        # Shifting traffic away from an AZ answers with the first plan that reflects it.
        shifted = stub.ShiftTraffic(pb.ShiftTrafficRequest(availability_zone="use1-az3", away=True))
        assert targets(stub.GetPlan(pb.GetPlanRequest(generation=shifted.effective_generation)).plan) == {"lb-001"}
        stub.ShiftTraffic(pb.ShiftTrafficRequest(availability_zone="use1-az3", away=False))

        wait_for(lambda: len(watched) >= 3, 3, "watched plans")
        assert watched == sorted(watched) and watched[0] >= g0

        # Plans keep coming while we look: the scraped gauge lies between two reads of the newest plan.
        before = latest(stub).generation
        text = scrape(metrics_port)
        last = latest(stub).generation
        gauge = metric(text, "racelab_planner_generation")
        assert before <= gauge <= last
        assert metric(text, "racelab_plans_published_total") == gauge - 110 + 1
        # lb-001, lb-003 and the cell-only lb-004
        assert metric(text, "racelab_planner_load_balancers", state="healthy") == 3
        assert metric(text, "racelab_planner_load_balancers", state="unhealthy") == 1
        watch.cancel()
        ch.close()

        # Killed without warning, with half a plan written: history survives, generations continue.
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log = state / "plans.jsonl"
        with open(log, "ab") as f:
            f.write(b'{"generation": 99999, "created_at": 1.0, "endp')
        proc = start("services.planner", args, env, tmp_path / "planner.log")
        wait_serving(f"127.0.0.1:{port}", proc=proc)
        ch = grpc_channel(f"127.0.0.1:{port}")
        stub = planner_pb2_grpc.PlannerStub(ch)
        kept = stub.ListPlans(pb.ListPlansRequest(limit=1000)).plans
        assert [p.generation for p in kept][:last - 110 + 1] == list(range(110, last + 1))
        after = wait_for(lambda: _plan_where(stub, lambda p: p.generation > last), 3, "a plan after restart")
        assert stub.GetPlan(pb.GetPlanRequest(generation=last + 1)).plan.generation == last + 1
        # The fleet came back too: lb-002 is still unhealthy.
        assert targets(after) == {"lb-001", "lb-003"}
        assert b"99999" not in log.read_bytes()
        ch.close()
    finally:
        assert stop(proc) == 0


def _plan_where(stub, predicate) -> pb.Plan | None:
    try:
        plan = latest(stub)
    except grpc.RpcError:
        return None
    return plan if predicate(plan) else None


def test_automation_switch_is_durable(tmp_path):
    from services.planner.store import AutomationFile
    assert AutomationFile(tmp_path).enabled()
    AutomationFile(tmp_path).save(False)
    assert not AutomationFile(tmp_path).enabled()  # what a restarted planner reads
    AutomationFile(tmp_path).save(True)
    AutomationFile(tmp_path).save(True)
    assert AutomationFile(tmp_path).enabled()
