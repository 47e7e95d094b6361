"""The RouteControl API: atomic batches, errors, consistent listing; invariants and telemetry."""

from __future__ import annotations

import threading
import time
import urllib.request
from concurrent import futures

import grpc
import pytest

from racelab.v1 import authority_pb2, common_pb2, director_pb2, director_pb2_grpc
from harness.authority import fleet_planner, free_port, install_plan
from services.core import tree
from services.core.plans import ACCOUNT_ZONE, LEGACY_ENDPOINT
from services.core.records import RecordSet, RRType, create, delete
from services.runtime.wire import BATCH_ERRORS_KEY, batch_rejected_from_error, snapshot_from_wire

pytestmark = pytest.mark.integration

LOCK = RecordSet("_lock." + LEGACY_ENDPOINT, RRType.TXT, 1, ("enactor-az1 100",))


def test_rejected_batch_is_failed_precondition_with_batch_errors(authority):
    auth = authority()
    v0 = auth.change(LEGACY_ENDPOINT, [create(LOCK)]).zone_version
    other = RecordSet("x." + LEGACY_ENDPOINT, RRType.A, 5, ("10.0.0.1",))
    stale = RecordSet(LOCK.name, RRType.TXT, 1, ("enactor-az2 99",))
    with pytest.raises(grpc.RpcError) as err:
        auth.change(LEGACY_ENDPOINT, [create(other), delete(stale), create(stale)])
    e = err.value
    assert e.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "do not match" in e.details()
    raw = dict(e.trailing_metadata())[BATCH_ERRORS_KEY]
    errors = authority_pb2.BatchErrors.FromString(raw).errors
    assert [(x.change_index, x.code) for x in errors] == [(1, "MISMATCH"), (2, "ALREADY_EXISTS")]
    rejected = batch_rejected_from_error(LEGACY_ENDPOINT, e)
    assert rejected.touches(1) and not rejected.touches(0) and "MISMATCH" in rejected.codes
    listed = auth.list(LEGACY_ENDPOINT)  # all or nothing: x was not created
    assert listed.zone_version == v0 and not any(rs.name.startswith("x.") for rs in listed.record_sets)


def test_a_rejection_with_hundreds_of_errors_still_reaches_the_caller_as_a_lost_lock(authority):
    """A clean-up that lost its lock and whose trees another cleaner already deleted fails every
    change. Sent whole, that list outgrew gRPC's 16 KiB metadata limit and the caller saw
    RESOURCE_EXHAUSTED instead of a lost lock (live runs: every such clean-up of the regional name)."""
    auth = authority()
    auth.change(LEGACY_ENDPOINT, [create(LOCK)])
    stale = RecordSet(LOCK.name, RRType.TXT, 1, ("enactor-az2 99",))
    gone = [delete(RecordSet(f"{i:08x}-0000-4000-8000-000000000000.{LEGACY_ENDPOINT}", RRType.A, 5,
                             (f"10.0.{i // 250}.{i % 250}",))) for i in range(400)]
    with pytest.raises(grpc.RpcError) as err:
        auth.change(LEGACY_ENDPOINT, [delete(stale), create(stale)] + gone)
    e = err.value
    assert e.code() is grpc.StatusCode.FAILED_PRECONDITION, e.details()
    raw = dict(e.trailing_metadata())[BATCH_ERRORS_KEY]
    assert len(raw) < 8192  # under gRPC's soft limit, so never at the mercy of its random drop
    rejected = batch_rejected_from_error(LEGACY_ENDPOINT, e)
    assert rejected.touches(0) and {"MISMATCH", "NOT_FOUND"} <= rejected.codes
    assert len(rejected.errors) + rejected.omitted == 402
    assert "(+401 more)" in str(rejected)

def test_listing_pages_as_route53_does_and_a_batch_over_quota_is_refused(authority):
    """ListResourceRecordSets pages at most 300 record sets (Route 53's MaxItems), in Route 53's
    order, each page naming where the next starts; the pages together are the zone, once each. A
    batch over Route 53's 1,000-value quota is refused with its error and changes nothing."""
    auth = authority()
    names = [f"{100000000000 + i}.{ACCOUNT_ZONE}" for i in range(1000)]
    v1 = auth.change(ACCOUNT_ZONE, [create(RecordSet(n, RRType.CNAME, 300, (LEGACY_ENDPOINT,)))
                                    for n in names]).zone_version
    with pytest.raises(grpc.RpcError) as err:
        auth.change(ACCOUNT_ZONE, [create(RecordSet(f"x{i}.{ACCOUNT_ZONE}", RRType.CNAME, 300, (LEGACY_ENDPOINT,)))
                                   for i in range(1001)])
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "Number of records limit of 1000 exceeded" in err.value.details()
    stub = auth.stub()
    for max_items, expected in ((0, 300), (300, 300), (999, 300), (7, 7)):
        seen, request, pages = [], authority_pb2.ListResourceRecordSetsRequest(hosted_zone=ACCOUNT_ZONE,
                                                                                max_items=max_items), 0
        while True:
            page = stub.ListResourceRecordSets(request, timeout=10)
            pages += 1
            assert page.zone_version == v1 and len(page.record_sets) <= expected
            seen.extend((rs.name, rs.type, rs.set_identifier) for rs in page.record_sets)
            if not page.is_truncated:
                break
            assert len(page.record_sets) == expected
            assert page.next_record_name  # where the next page starts
            request = authority_pb2.ListResourceRecordSetsRequest(
                hosted_zone=ACCOUNT_ZONE, max_items=max_items, start_record_name=page.next_record_name,
                start_record_type=page.next_record_type, start_record_identifier=page.next_record_identifier)
        assert len(seen) == len(set(seen)) == 1000 + 3  # the CNAMEs, the SOA, the NS, the wildcard
        assert pages == -(-len(seen) // expected)
        assert seen == sorted(seen, key=lambda k: (tuple(reversed(k[0].split("."))), RRType[
            common_pb2.RRType.Name(k[1])].value, k[2]))
    start = stub.ListResourceRecordSets(authority_pb2.ListResourceRecordSetsRequest(
        hosted_zone=ACCOUNT_ZONE, start_record_name=names[500].upper() + ".", max_items=1), timeout=10)
    assert [rs.name for rs in start.record_sets] == [names[500]]
    with pytest.raises(grpc.RpcError) as err:
        stub.ListResourceRecordSets(authority_pb2.ListResourceRecordSetsRequest(
            hosted_zone=ACCOUNT_ZONE, start_record_type=common_pb2.RRType.Value("A")), timeout=10)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT and "start_record_name" in err.value.details()
    assert len(snapshot_from_wire(ACCOUNT_ZONE, auth.list(ACCOUNT_ZONE)).records) == 1003  # the pages, merged


def test_not_found_invalid_argument_and_listing(authority):
    auth = authority()
    with pytest.raises(grpc.RpcError) as err:
        auth.change("example.com", [create(LOCK)])
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
    bad = authority_pb2.ChangeResourceRecordSetsRequest(hosted_zone=LEGACY_ENDPOINT, changes=[
        authority_pb2.Change(action=authority_pb2.CREATE)])  # record type unspecified
    with pytest.raises(grpc.RpcError) as err:
        auth.stub().ChangeResourceRecordSets(bad, timeout=5)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        auth.change(LEGACY_ENDPOINT, [])
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    zones = auth.stub().ListHostedZones(authority_pb2.ListHostedZonesRequest(), timeout=5).hosted_zones
    assert {z.name for z in zones} >= {LEGACY_ENDPOINT + ".", ACCOUNT_ZONE + "."}
    snap = snapshot_from_wire(ACCOUNT_ZONE, auth.list(ACCOUNT_ZONE + "."))
    wildcard = snap.get("*." + ACCOUNT_ZONE, RRType.CNAME)
    assert wildcard.values == (LEGACY_ENDPOINT,) and wildcard.ttl == 5
    soa = snap.soa_record
    assert soa.ttl == 900 and soa.values[0].endswith(" 86400")


def test_concurrent_batches_to_one_zone_are_serialized(authority):
    auth = authority()
    results, errors = [], []

    def writer(i):
        try:
            results.append(auth.change(LEGACY_ENDPOINT, [create(RecordSet(f"w{i}.{LEGACY_ENDPOINT}", RRType.A, 5,
                                                                          ("10.0.0.1",)))]).zone_version)
        except grpc.RpcError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and sorted(results) == list(range(1, 21))
    assert auth.list(LEGACY_ENDPOINT).zone_version == 20


class _Director(director_pb2_grpc.DirectorServicer):
    def __init__(self):
        self.events = []

    def PublishEvent(self, request, context):
        self.events.append(request.event)
        return director_pb2.PublishEventResponse()


def test_active_tree_deletion_is_a_violation_in_metrics_and_events(authority):
    director = _Director()
    server = grpc.server(futures.ThreadPoolExecutor(2))
    director_pb2_grpc.add_DirectorServicer_to_server(director, server)
    dport = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        metrics_port = free_port()
        auth = authority(metrics_port=metrics_port, extra=["--director", f"127.0.0.1:{dport}"])
        planner = fleet_planner()
        p110 = planner.next_plan(0.0)
        install_plan(auth, p110, endpoints=[LEGACY_ENDPOINT])
        text = _metrics(metrics_port)
        assert f'racelab_authority_endpoint_generation{{endpoint="{LEGACY_ENDPOINT}"}} 110.0' in text
        assert f'racelab_authority_endpoint_addresses{{endpoint="{LEGACY_ENDPOINT}",qtype="A"}} 6.0' in text
        ep = p110.for_endpoint(LEGACY_ENDPOINT)
        snap = snapshot_from_wire(LEGACY_ENDPOINT, auth.list(LEGACY_ENDPOINT))
        auth.change(LEGACY_ENDPOINT, tree.deletion_changes(snap, [tree.tree_root(ep)]))
        text = _metrics(metrics_port)
        assert f'racelab_authority_endpoint_generation{{endpoint="{LEGACY_ENDPOINT}"}} -1.0' in text
        assert f'racelab_authority_endpoint_addresses{{endpoint="{LEGACY_ENDPOINT}",qtype="A"}} 0.0' in text
        assert 'racelab_invariant_violations_total{violation="active-tree-deleted"} 1.0' in text
        assert 'racelab_invariant_violations_total{violation="endpoint-empty"} 1.0' in text
        assert f'racelab_authority_batches_total{{result="committed",zone="{LEGACY_ENDPOINT}"}} 3.0' in text
        assert 'racelab_dns_queries_total' in text and 'racelab_dns_malformed_total' in text
        deadline = time.monotonic() + 5
        while len(director.events) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        kinds = {(e.kind, e.attributes["violation"]) for e in director.events}
        assert kinds == {("authority.violation", "active-tree-deleted"), ("authority.violation", "endpoint-empty")}
        assert any(e.message == f"{LEGACY_ENDPOINT} now answers NODATA for every address type"
                   for e in director.events)
        assert all(e.source == "authority" for e in director.events)
    finally:
        server.stop(0)


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def test_director_down_never_blocks_a_batch(authority):
    auth = authority(extra=["--director", f"127.0.0.1:{free_port()}"])
    planner = fleet_planner()
    plan = planner.next_plan(0.0)
    install_plan(auth, plan, endpoints=[LEGACY_ENDPOINT])
    snap = snapshot_from_wire(LEGACY_ENDPOINT, auth.list(LEGACY_ENDPOINT))
    start = time.monotonic()
    auth.change(LEGACY_ENDPOINT, tree.deletion_changes(snap, [tree.tree_root(plan.for_endpoint(LEGACY_ENDPOINT))]))
    assert time.monotonic() - start < 0.5
