"""The DynamoDB LB fleet as a process: one server per LB address, one shared store, registration."""

from __future__ import annotations

import grpc
import pytest

from racelab.v1 import dynamodb_pb2 as db, dynamodb_pb2_grpc, planner_pb2 as pb, planner_pb2_grpc
from services.dynamodb.store import Condition, ConditionFailed, TableStore

from procs import channel as grpc_channel
from procs import (env_for, free_port, metric, run_to_exit, scrape, start, stop, wait_for, wait_serving,
                            write_scenario)

pytestmark = pytest.mark.integration

KEY = db.ItemKey(partition_key="droplet-1", sort_key="lease")


def test_store_conditions_and_paging():
    s = TableStore()
    assert s.put("t", "p", "a", {"x": "1"}, Condition(must_not_exist=True)).version == 1
    with pytest.raises(ConditionFailed):
        s.put("t", "p", "a", {}, Condition(must_not_exist=True))
    with pytest.raises(ConditionFailed):
        s.put("t", "p", "a", {}, Condition(expected_version=7))
    assert s.put("t", "p", "a", {"x": "2"}, Condition(expected_version=1)).version == 2
    for k in "cbed":
        s.put("t", "p", k, {})
    items, last = s.query("t", "p", 2)
    assert [i.sort_key for i in items] == ["a", "b"] and last == "b"
    items, last = s.query("t", "p", 10, start_after=last)
    assert [i.sort_key for i in items] == ["c", "d", "e"] and last == ""
    with pytest.raises(ConditionFailed):
        s.delete("t", "p", "zz", Condition(expected_version=1))
    assert s.delete("t", "p", "zz") is False
    assert s.delete("t", "p", "a", Condition(expected_version=2)) is True
    assert s.count == 4
    assert s.put("t", "p", "a", {}).version == 1  # re-created: a new item


def test_bad_settings_exit_2_with_one_line(tmp_path):
    env = env_for(write_scenario(tmp_path / "s.yaml"))
    for args in ([],  # no planner
                 ["--planner", "127.0.0.1:1", "--count", "many"],
                 ["--planner", "127.0.0.1:1", "--lb-port", "70000"],
                 ["--planner", "127.0.0.1:1", "--lb-host-prefix", "10.0."],
                 ["--planner", "127.0.0.1:1", "--count", "2", "--advertise", "10.1.2.3"],
                 ["--planner", "127.0.0.1:1", "--count", "1", "--advertise", "10.1.2.3", "--lb-ordinal", "-1"],
                 ["--planner", "127.0.0.1:1", "--lb-host-prefix", "255.255.255.", "--count", "3",
                  "--lb-ordinal", "253"]):  # past IPv4's last address
        done = run_to_exit("services.dynamodb", args, env)
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("dynamodb: error:"), done.stderr


def test_lb_addresses_carry_past_254_into_the_next_24():
    from services.core.plans import lb_address
    assert [lb_address("127.0.1.", i) for i in (1, 254, 255, 256, 300)] == [
        "127.0.1.1", "127.0.1.254", "127.0.1.255", "127.0.2.0", "127.0.2.44"]


def test_fleet_serves_on_distinct_addresses_and_registers(tmp_path):
    env = env_for(write_scenario(tmp_path / "s.yaml", plan_interval=600, load_balancers=3))
    lb_port, planner_port, metrics_port = free_port("127.0.1.1"), free_port(), free_port()
    # The fleet first: it must keep trying until the planner answers.
    fleet = start("services.dynamodb", ["--planner", f"127.0.0.1:{planner_port}", "--lb-port", str(lb_port),
                                        "--lb-host-prefix", "127.0.1.", "--metrics-addr", f"127.0.0.1:{metrics_port}"],
                  env, tmp_path / "dynamodb.log")
    procs = [fleet]
    try:
        targets = [f"127.0.1.{i}:{lb_port}" for i in (1, 2, 3)]
        for t in targets:
            wait_serving(t, proc=fleet)
        stubs = [dynamodb_pb2_grpc.DynamoDBStub(grpc_channel(t)) for t in targets]

        for i, stub in enumerate(stubs, 1):
            got = stub.GetItem(db.GetItemRequest(table="leases", key=KEY), timeout=2)
            assert not got.found and got.lb_id == f"lb-{i:03d}"

        put = stubs[0].PutItem(db.PutItemRequest(table="leases", key=KEY, attributes={"owner": "dwfm-1"},
                                                 condition=db.WriteCondition(must_not_exist=True)))
        assert put.item.version == 1 and put.lb_id == "lb-001"
        got = stubs[1].GetItem(db.GetItemRequest(table="leases", key=KEY, consistent_read=True))
        assert got.found and got.item.attributes["owner"] == "dwfm-1" and got.lb_id == "lb-002"  # one store

        for cond in (db.WriteCondition(must_not_exist=True), db.WriteCondition(expected_version=5)):
            with pytest.raises(grpc.RpcError) as err:
                stubs[2].PutItem(db.PutItemRequest(table="leases", key=KEY, attributes={"owner": "x"}, condition=cond))
            assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
            assert "ConditionalCheckFailed" in err.value.details()
        renewed = stubs[2].PutItem(db.PutItemRequest(table="leases", key=KEY, attributes={"owner": "dwfm-2"},
                                                     condition=db.WriteCondition(expected_version=1)))
        assert renewed.item.version == 2 and renewed.lb_id == "lb-003"
        with pytest.raises(grpc.RpcError) as err:
            stubs[0].DeleteItem(db.DeleteItemRequest(table="leases", key=KEY,
                                                     condition=db.WriteCondition(expected_version=1)))
        assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert stubs[0].DeleteItem(db.DeleteItemRequest(table="leases", key=KEY,
                                                        condition=db.WriteCondition(expected_version=2))).deleted

        for sk in ("c", "a", "b"):
            stubs[0].PutItem(db.PutItemRequest(table="leases", key=db.ItemKey(partition_key="p", sort_key=sk)))
        page = stubs[1].Query(db.QueryRequest(table="leases", partition_key="p", limit=2))
        assert [i.key.sort_key for i in page.items] == ["a", "b"] and page.last_evaluated_sort_key == "b"
        page = stubs[1].Query(db.QueryRequest(table="leases", partition_key="p", limit=2, start_after_sort_key="b"))
        assert [i.key.sort_key for i in page.items] == ["c"] and page.last_evaluated_sort_key == ""
        assert page.lb_id == "lb-002"

        for bad in (db.GetItemRequest(table="", key=KEY), db.GetItemRequest(table="t", key=db.ItemKey())):
            with pytest.raises(grpc.RpcError) as err:
                stubs[0].GetItem(bad)
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT

        text = scrape(metrics_port)
        assert metric(text, "racelab_dynamodb_requests_total", lb="lb-001", operation="GetItem", result="ok") == 1
        assert metric(text, "racelab_dynamodb_requests_total", lb="lb-003", operation="PutItem",
                      result="condition_failed") == 2
        assert metric(text, "racelab_dynamodb_items") == 3
        assert metric(text, "racelab_dynamodb_request_duration_seconds_count", operation="PutItem") >= 5

        # Now the planner comes up: every LB registers under its own address.
        planner = start("services.planner", ["--listen", f"127.0.0.1:{planner_port}", "--state-dir",
                                             str(tmp_path / "planner")], env, tmp_path / "planner.log")
        procs.append(planner)
        wait_serving(f"127.0.0.1:{planner_port}", proc=planner)
        pstub = planner_pb2_grpc.PlannerStub(grpc_channel(f"127.0.0.1:{planner_port}"))

        def registered():
            try:
                plan = pstub.GetLatestPlan(pb.GetLatestPlanRequest(), timeout=1).plan
            except grpc.RpcError:
                return None
            found = {(t.lb_id, t.ipv4, t.ipv6) for t in plan.endpoints[0].targets}
            return found if len(found) == 3 else None
        assert wait_for(registered, 5, "the fleet's registrations") == {
            (f"lb-{i:03d}", f"127.0.1.{i}", f"fd00::1:{i}") for i in (1, 2, 3)}
    finally:
        codes = [stop(p) for p in procs]
    assert codes == [0] * len(procs), (tmp_path / "dynamodb.log").read_text()[-2000:]


def test_fleet_specs_from_an_ordinal():
    from services.dynamodb.service import fleet_specs
    zones = ("use1-az1", "use1-az2", "use1-az4")
    [pod] = fleet_specs(1, "127.0.1.", 17100, zones, 100, advertise="10.244.2.7", first=5)
    assert (pod.index, pod.lb_id, pod.listen, pod.ipv4, pod.ipv6, pod.availability_zone) == (
        5, "lb-005", "0.0.0.0:17100", "10.244.2.7", "fd00::1:5", "use1-az2")
    local = fleet_specs(2, "127.0.1.", 17100, zones, 100, first=3)
    assert [(s.lb_id, s.listen) for s in local] == [("lb-003", "127.0.1.3:17100"), ("lb-004", "127.0.1.4:17100")]


def test_one_lb_per_process_registers_its_pod_address_and_ordinal(tmp_path):
    """Kubernetes: each pod of the dynamodb-lb StatefulSet runs one LB, numbered from its pod index."""
    scenario = write_scenario(tmp_path / "s.yaml", plan_interval=600)
    scenario.write_text(scenario.read_text().replace("  load_balancers: 3\n",
                                                     "  load_balancers: 3\n  shared_load_balancers: 3\n"))
    env = env_for(scenario)
    lb_port, planner_port = free_port("127.0.0.1"), free_port()
    planner = start("services.planner", ["--listen", f"127.0.0.1:{planner_port}", "--state-dir",
                                         str(tmp_path / "planner")], env, tmp_path / "planner.log")
    procs = [planner]
    try:
        # Pod index 4: the fifth LB, past the 3 shared ones, so it serves only the regional name.
        procs.append(start("services.dynamodb", [], {**env, "RACELAB_PLANNER": f"127.0.0.1:{planner_port}",
                                                   "RACELAB_LB_PORT": str(lb_port), "RACELAB_LB_COUNT": "1",
                                                   "RACELAB_LB_ADVERTISE": "127.0.0.1", "RACELAB_LB_ORDINAL": "4"},
                           tmp_path / "dynamodb.log"))
        wait_serving(f"127.0.0.1:{lb_port}", proc=procs[1])
        got = dynamodb_pb2_grpc.DynamoDBStub(grpc_channel(f"127.0.0.1:{lb_port}")).GetItem(
            db.GetItemRequest(table="leases", key=KEY), timeout=2)
        assert got.lb_id == "lb-005"
        # Pod index 0, a shared LB: the planner makes no plan until every endpoint has one.
        shared_port = free_port("127.0.0.1")
        procs.append(start("services.dynamodb", [], {**env, "RACELAB_PLANNER": f"127.0.0.1:{planner_port}",
                                                   "RACELAB_LB_PORT": str(shared_port), "RACELAB_LB_COUNT": "1",
                                                   "RACELAB_LB_ADVERTISE": "127.0.0.2", "RACELAB_LB_ORDINAL": "0"},
                           tmp_path / "dynamodb-shared.log"))
        pstub = planner_pb2_grpc.PlannerStub(grpc_channel(f"127.0.0.1:{planner_port}"))

        def targets():
            try:
                plan = pstub.GetLatestPlan(pb.GetLatestPlanRequest(), timeout=1).plan
            except grpc.RpcError:
                return None
            found = {e.endpoint: {(t.lb_id, t.ipv4) for t in e.targets} for e in plan.endpoints}
            return found if len(found.get("dynamodb.us-east-1.amazonaws.com", ())) == 2 else None
        found = wait_for(targets, 5, "both LBs' registrations")
        assert found.pop("dynamodb.us-east-1.amazonaws.com") == {("lb-005", "127.0.0.1"), ("lb-001", "127.0.0.2")}
        assert all(t == {("lb-001", "127.0.0.2")} for t in found.values()), found
    finally:
        codes = [stop(p) for p in procs]
    assert codes == [0, 0, 0], (tmp_path / "dynamodb.log").read_text()[-2000:]
