"""Credentials: who may call what, and what a refused call leaves behind (nothing but a metric and a log line)."""

from __future__ import annotations

import stat
import subprocess
import sys

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from procs import (ROOT, auth_env, credentials, env_for, free_port, metric, run_to_exit, scrape, start, stop, token,
                   wait_for, wait_serving, write_scenario)
from racelab.v1 import authority_pb2, authority_pb2_grpc, planner_pb2, planner_pb2_grpc
from harness.authority import AuthorityProcess
from services.core.nlbdns import NLB_ZONE
from services.core.plans import ACCOUNT_ZONE, LEGACY_ENDPOINT
from services.core.records import RecordSet, RRType, create
from services.runtime.auth import Acl, AuthConfigError, Grant, read_token, sync_channel, token_sha256
from services.runtime.credentials import run_grants, write_credentials
from services.runtime.scenario import load_scenario
from services.runtime.wire import change_to_wire

SCENARIO = load_scenario("oct-2025")
ENDPOINT_ZONES = sorted(ep.zone for ep in SCENARIO.endpoints)


# ---- the ACL and the generator ----

def test_generated_credentials_match_the_acl(tmp_path):
    out = write_credentials(tmp_path / "creds", SCENARIO)
    acl = Acl.load(out / "acl.yaml")
    expected = {"authority", "planner", "director", "enactor-az1", "enactor-az2", "enactor-az3", "dynamodb",
                "workload", "dwfm", "netmgr", "nlb", "lab"}
    assert set(acl.grants) == expected
    for name in expected:
        path = out / f"{name}.token"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert acl.identify(read_token(path)).identity == name
    text = (out / "acl.yaml").read_text()
    assert not any(read_token(out / f"{name}.token") in text for name in expected)  # hashes only
    enactor = acl.grants["enactor-az2"]
    assert all(enactor.may_change(z) for z in ENDPOINT_ZONES) and not enactor.may_change(ACCOUNT_ZONE)
    assert enactor.may_call("racelab.v1.RouteControl/ChangeResourceRecordSets")
    assert not enactor.may_call("racelab.v1.Planner/RegisterLoadBalancer")
    assert acl.grants["director"].may_change(ACCOUNT_ZONE) and acl.grants["director"].may_change("anything.example")
    assert not acl.grants["planner"].may_change(LEGACY_ENDPOINT)
    assert acl.grants["nlb"].may_change(NLB_ZONE)
    assert not acl.grants["nlb"].may_change(LEGACY_ENDPOINT)
    # fresh tokens every time
    again = write_credentials(tmp_path / "creds", SCENARIO)
    assert Acl.load(again / "acl.yaml").identify(read_token(path)) is not None
    assert read_token(path) != token("lab")


def test_generator_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "services.runtime.credentials", str(tmp_path / "c")], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.startswith("wrote 12 tokens"), done.stderr
    bad = subprocess.run([sys.executable, "-m", "services.runtime.credentials", str(tmp_path / "d"), "--scenario",
                          "no-such"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_grants_use_patterns():
    g = Grant("x", ("racelab.v1.Planner/Get*",), ("*.elb.example",))
    assert g.may_call("racelab.v1.Planner/GetPlan") and not g.may_call("racelab.v1.Planner/AddCapacity")
    assert g.may_change("a.elb.example.") and g.may_change("A.ELB.example") and not g.may_change("elb.example")


# Whose code runs under which identity (each process's identity is its instance name).
CODE_OF = {"authority": "authority", "planner": "planner", "director": "director", "enactor-az1": "enactor",
           "dynamodb": "dynamodb", "workload": "workload", "dwfm": "dwfm", "netmgr": "netmgr", "nlb": "nlb"}
# Identities granted more than they call, on purpose: the operators hold every control API; the
# enactors may read any of the planner's plans and list the zones (read-only).
ROLES = {"director", "enactor-az1"}


def _rpc_methods() -> dict[str, set[str]]:
    """Method name -> the full names ("racelab.v1.Service/Method") of every RPC so named."""
    import importlib
    methods: dict[str, set[str]] = {}
    for proto in (ROOT / "proto/racelab/v1").glob("*.proto"):
        module = importlib.import_module(f"racelab.v1.{proto.stem}_pb2")
        for service in module.DESCRIPTOR.services_by_name.values():
            for m in service.methods:
                methods.setdefault(m.name, set()).add(f"{service.full_name}/{m.name}")
    return methods


def _calls(package: str, methods: dict[str, set[str]]) -> dict[str, set[str]]:
    """RPC method names the code of services/<package> calls (stub.Method, called or handed on) -> their candidates."""
    import re
    text = "\n".join(p.read_text() for p in (ROOT / "services" / package).rglob("*.py")
                     if p.name != "testing.py")  # helpers for tests, not the service
    called = {name: methods[name] for name in re.findall(r"\.([A-Z][A-Za-z]+)\b", text) if name in methods}
    if "EventPublisher(" in text:
        called["PublishEvent"] = {"racelab.v1.Director/PublishEvent"}
    return called


def test_every_identity_may_call_what_its_code_calls_and_no_more():
    methods = _rpc_methods()
    grants = Acl.parse(yaml.safe_dump({"identities": {name: {"token_sha256": f"{i:064x}", **grant} for i, (name, grant)
                                                      in enumerate(run_grants(SCENARIO).items())}}), "run_grants")
    for identity, package in CODE_OF.items():
        grant = grants.grants[identity]
        called = _calls(package, methods)
        for name, candidates in called.items():
            assert any(grant.may_call(full) for full in candidates), f"{identity} calls {name} without a grant"
        if identity not in ROLES:
            unused = {m for m in grant.methods if m.rpartition("/")[2] not in called}
            assert not unused, f"{identity} may call {sorted(unused)}, which its code never calls"
    assert {"BatchWriteItem", "PropagateInstance"} <= set(_calls("dwfm", methods))
    assert {"ChangeResourceRecordSets", "GetInstancesNetwork"} <= set(_calls("nlb", methods))
    assert {"RunInstances", "Connect", "GetItem"} <= set(_calls("workload", methods))
    assert {"SetAutomation", "Control", "SetAutomaticFailover", "RelaxThrottle"} <= set(_calls("director", methods))


@pytest.mark.parametrize("text, words", [
    ("identities: [", "not YAML"),
    ("[]", "expected a mapping"),
    ("identities: {}", "expected a mapping"),
    ("identities: {a: {token_sha256: abc, methods: []}}", "token_sha256"),
    (f"identities: {{Bad_Name: {{token_sha256: {'a' * 64}}}}}", "identity name"),
    (f"identities: {{a: {{token_sha256: {'a' * 64}, methods: x}}}}", "methods"),
    (f"identities: {{a: {{token_sha256: {'a' * 64}, zones: [1]}}}}", "zones"),
    (f"identities: {{a: {{token_sha256: {'a' * 64}, role: admin}}}}", "unknown key"),
    (f"identities: {{a: {{token_sha256: {'a' * 64}}}, b: {{token_sha256: {'a' * 64}}}}}", "another identity"),
    (f"identities: {{a: {{token_sha256: {'a' * 64}}}}}\nversion: 2", "unknown key"),
])
def test_malformed_acl_is_one_clear_error(text, words):
    with pytest.raises(AuthConfigError) as err:
        Acl.parse(text, "acl.yaml")
    assert words in str(err.value) and str(err.value).startswith("acl.yaml")


# ---- a real authority and planner ----

def _change(zone: str, name: str):
    return authority_pb2.ChangeResourceRecordSetsRequest(hosted_zone=zone, changes=[change_to_wire(
        create(RecordSet(f"{name}.{zone}", RRType.TXT, 60, ('"x"',))))])


def _code(call) -> grpc.StatusCode | None:
    try:
        call()
        return None
    except grpc.RpcError as exc:
        return exc.code()


@pytest.mark.integration
def test_authority_refuses_without_the_right_credentials(tmp_path):
    auth = AuthorityProcess(tmp_path / "state", credentials=credentials(), metrics_port=free_port(),
                            env={"RACELAB_LOG_LEVEL": "INFO"}).start()
    try:
        def stub(tok):
            return authority_pb2_grpc.RouteControlStub(sync_channel(auth.control, tok))

        before = auth.list(LEGACY_ENDPOINT).zone_version
        account_before = auth.list(ACCOUNT_ZONE).zone_version
        refused = {
            "no token": (stub(None), LEGACY_ENDPOINT, grpc.StatusCode.UNAUTHENTICATED),
            "unknown token": (stub("not-a-token"), LEGACY_ENDPOINT, grpc.StatusCode.UNAUTHENTICATED),
            "planner may not change zones": (stub(token("planner")), LEGACY_ENDPOINT,
                                             grpc.StatusCode.PERMISSION_DENIED),
            "enactor outside its zones": (stub(token("enactor-az1")), ACCOUNT_ZONE,
                                          grpc.StatusCode.PERMISSION_DENIED),
        }
        for why, (s, zone, code) in refused.items():
            assert _code(lambda: s.ChangeResourceRecordSets(_change(zone, "refused"), timeout=5)) is code, why
        assert _code(lambda: stub(None).ListHostedZones(authority_pb2.ListHostedZonesRequest(), timeout=5)) \
            is grpc.StatusCode.UNAUTHENTICATED
        # nothing changed
        assert auth.list(LEGACY_ENDPOINT).zone_version == before
        assert auth.list(ACCOUNT_ZONE).zone_version == account_before
        # the enactor may change its own zones; the director's operators any zone
        stub(token("enactor-az1")).ChangeResourceRecordSets(_change(LEGACY_ENDPOINT, "allowed"), timeout=5)
        stub(token("director")).ChangeResourceRecordSets(_change(ACCOUNT_ZONE, "allowed"), timeout=5)
        assert auth.list(LEGACY_ENDPOINT).zone_version == before + 1
        assert auth.list(ACCOUNT_ZONE).zone_version == account_before + 1
        # health checks stay open
        with grpc.insecure_channel(auth.control) as ch:
            reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        text = scrape(auth.metrics_port)
        method = "racelab.v1.RouteControl/ChangeResourceRecordSets"
        assert metric(text, "racelab_auth_denied_total", service="authority", method=method,
                      code="UNAUTHENTICATED") == 2
        assert metric(text, "racelab_auth_denied_total", service="authority", method=method,
                      code="PERMISSION_DENIED") == 2
        assert metric(text, "racelab_auth_denied_total", method="racelab.v1.RouteControl/ListHostedZones") == 1
    finally:
        assert auth.stop() == 0
    log = auth.log_path.read_text()
    assert "denied UNAUTHENTICATED racelab.v1.RouteControl/ChangeResourceRecordSets" in log
    assert "enactor-az1 may not change hosted zone" in log
    assert "planner may not call racelab.v1.RouteControl/ChangeResourceRecordSets" in log


@pytest.mark.integration
def test_planner_lets_each_identity_do_only_its_part(tmp_path):
    port = free_port()
    env = env_for(write_scenario(tmp_path / "s.yaml", plan_interval=600), **auth_env("planner"))
    proc = start("services.planner", ["--listen", f"127.0.0.1:{port}", "--state-dir", str(tmp_path / "p")], env,
                 tmp_path / "planner.log")
    try:
        wait_serving(f"127.0.0.1:{port}", proc=proc)

        def planner(identity):
            return planner_pb2_grpc.PlannerStub(sync_channel(f"127.0.0.1:{port}", token(identity)))

        lb = planner_pb2.LoadBalancer(lb_id="lb-1", ipv4="127.0.1.1", ipv6="fd00::1", availability_zone="use1-az1",
                                      capacity=100)
        register = planner_pb2.RegisterLoadBalancerRequest(load_balancer=lb)
        assert _code(lambda: planner("enactor-az1").RegisterLoadBalancer(register, timeout=5)) \
            is grpc.StatusCode.PERMISSION_DENIED
        assert _code(lambda: planner("workload").GetLatestPlan(planner_pb2.GetLatestPlanRequest(), timeout=5)) \
            is grpc.StatusCode.PERMISSION_DENIED
        planner("dynamodb").RegisterLoadBalancer(register, timeout=5)
        assert wait_for(lambda: planner("enactor-az1").ListPlans(planner_pb2.ListPlansRequest(), timeout=5).plans,
                        10, "the first plan")
        stream = planner_pb2_grpc.PlannerStub(sync_channel(f"127.0.0.1:{port}", None)).WatchPlans(
            planner_pb2.WatchPlansRequest(), timeout=5)
        assert _code(lambda: next(stream)) is grpc.StatusCode.UNAUTHENTICATED  # streams are guarded too
    finally:
        assert stop(proc) == 0


def test_secure_by_default(tmp_path):
    """No token or no ACL: the process refuses to start, unless --insecure says so explicitly."""
    scenario = write_scenario(tmp_path / "s.yaml")
    bare = {k: v for k, v in env_for(scenario).items() if k not in ("RACELAB_TOKEN_FILE", "RACELAB_ACL_FILE")}
    args = ["--listen", f"127.0.0.1:{free_port()}", "--state-dir", str(tmp_path / "p")]
    no_token = run_to_exit("services.planner", args, bare)
    assert no_token.returncode == 2 and no_token.stderr.strip().splitlines() == [
        "planner: error: --token-file (or RACELAB_TOKEN_FILE) is required: this process's identity "
        "(or --insecure / RACELAB_INSECURE=1 to run without authentication)"]
    no_acl = run_to_exit("services.planner", args, {**bare, "RACELAB_TOKEN_FILE": auth_env()["RACELAB_TOKEN_FILE"]})
    assert no_acl.returncode == 2 and len(no_acl.stderr.strip().splitlines()) == 1
    assert "without --acl-file" in no_acl.stderr


@pytest.mark.integration
def test_insecure_is_explicit_and_loud(tmp_path):
    scenario = write_scenario(tmp_path / "s.yaml")
    bare = {k: v for k, v in env_for(scenario).items() if k not in ("RACELAB_TOKEN_FILE", "RACELAB_ACL_FILE")}
    port = free_port()
    proc = start("services.planner", ["--listen", f"127.0.0.1:{port}", "--state-dir", str(tmp_path / "p"),
                                      "--insecure"], bare, tmp_path / "planner.log")
    try:
        wait_serving(f"127.0.0.1:{port}", proc=proc)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            planner_pb2_grpc.PlannerStub(ch).ListPlans(planner_pb2.ListPlansRequest(), timeout=5)
    finally:
        assert stop(proc) == 0
    assert "INSECURE" in (tmp_path / "planner.log").read_text()


def test_token_files_are_checked(tmp_path):
    empty = tmp_path / "empty.token"
    empty.write_text("\n")
    with pytest.raises(AuthConfigError, match="expected one token"):
        read_token(empty)
    with pytest.raises(AuthConfigError, match="cannot read"):
        read_token(tmp_path / "missing.token")
    assert token_sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert yaml.safe_load((credentials() / "acl.yaml").read_text())["identities"]["tester"]["methods"] == ["*"]
    assert set(run_grants(SCENARIO)) < set(Acl.load(credentials() / "acl.yaml").grants)
