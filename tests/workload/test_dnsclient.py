"""The clients' resolver against a real UDP responder whose answers change mid-test."""

from __future__ import annotations

import aiodns
import pytest
import pytest_asyncio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.runtime.dnsclient import NoData, NXDomain, Resolver, ServerFailure, Timeout
from workload_fakes import FakeClock, FakeDNS

LEGACY = "dynamodb.us-east-1.amazonaws.com"
ACCOUNT_ZONE = "ddb.us-east-1.api.aws"
ACCOUNT = "123456789012." + ACCOUNT_ZONE

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def dns():
    server = await FakeDNS().start()
    server.zones[LEGACY] = (900, 86400)
    server.zones[ACCOUNT_ZONE] = (60, 30)
    server.records[LEGACY] = {"A": (["127.0.1.1"], 5)}
    server.records[ACCOUNT] = {"CNAME": (LEGACY, 300)}
    yield server
    server.close()


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter


@pytest_asyncio.fixture
async def resolver(dns, spans):
    clock = FakeClock(1000.0)
    r = Resolver(dns.address, clock, timeout=0.2, tries=1, tracer=spans[0])
    r.test_clock = clock
    yield r
    await r.close()


async def test_positive_answer_cached_for_its_ttl_in_simulated_time(dns, resolver):
    first = await resolver.lookup(LEGACY, "A")
    assert first.addresses == ("127.0.1.1",) and not first.cached and first.ttl == 5
    dns.records[LEGACY] = {"A": (["127.0.1.2"], 5)}
    resolver.test_clock.advance(4.9)
    again = await resolver.lookup(LEGACY)
    assert again.addresses == ("127.0.1.1",) and again.cached
    assert dns.count(LEGACY, "A") == 1
    resolver.test_clock.advance(0.2)  # past the TTL: the changed answer is seen
    fresh = await resolver.lookup(LEGACY)
    assert fresh.addresses == ("127.0.1.2",) and not fresh.cached
    assert dns.count(LEGACY, "A") == 2


async def test_nodata_cached_for_soa_negative_ttl_then_change_seen(dns, resolver):
    """RFC 2308: min(SOA TTL 900, minimum 86400) = 900 simulated seconds, not c-ares' wall-clock hour."""
    dns.records[LEGACY] = {}  # the name exists, no A: NODATA
    with pytest.raises(NoData) as first:
        await resolver.lookup(LEGACY)
    assert not first.value.cached
    dns.records[LEGACY] = {"A": (["127.0.1.9"], 5)}  # restored by hand
    resolver.test_clock.advance(899)
    with pytest.raises(NoData) as cached:
        await resolver.lookup(LEGACY)
    assert cached.value.cached
    assert dns.count(LEGACY, "A") == 1 and dns.count(LEGACY, "SOA") == 1
    assert resolver.cache_counts() == {"positive": 0, "negative": 1}
    resolver.test_clock.advance(2)
    answer = await resolver.lookup(LEGACY)  # c-ares's own cache would still say NODATA here
    assert answer.addresses == ("127.0.1.9",)
    assert dns.count(LEGACY, "A") == 2
    assert resolver.cache_counts() == {"positive": 1, "negative": 0}


async def test_cares_query_cache_is_the_trap_we_avoid(dns):
    """Documents the trap: a plain aiodns resolver keeps serving NODATA after the zone changed."""
    plain = aiodns.DNSResolver(servers=[dns.address], timeout=0.2, tries=1)
    try:
        dns.records[LEGACY] = {}
        with pytest.raises(aiodns.error.DNSError):
            await plain.query_dns(LEGACY, "A")
        dns.records[LEGACY] = {"A": (["127.0.1.9"], 5)}
        with pytest.raises(aiodns.error.DNSError):
            await plain.query_dns(LEGACY, "A")  # answered from c-ares's cache, not the wire
        assert dns.count(LEGACY, "A") == 1
    finally:
        await plain.close()


async def test_nxdomain_uses_soa_of_enclosing_zone(dns, resolver):
    name = "nope." + ACCOUNT_ZONE
    with pytest.raises(NXDomain):
        await resolver.lookup(name)
    resolver.test_clock.advance(29)  # min(60, 30)
    with pytest.raises(NXDomain) as cached:
        await resolver.lookup(name)
    assert cached.value.cached
    resolver.test_clock.advance(2)
    with pytest.raises(NXDomain) as fresh:
        await resolver.lookup(name)
    assert not fresh.value.cached
    assert dns.count(name, "A") == 2


async def test_cname_chase_to_legacy_name(dns, resolver):
    answer = await resolver.lookup(ACCOUNT)
    assert answer.addresses == ("127.0.1.1",)
    assert answer.chain == (LEGACY,)
    assert answer.ttl == 5


async def test_cname_chased_by_client_when_target_zone_not_served(dns, resolver):
    dns.follow_cnames = False  # the authority answers only the CNAME
    answer = await resolver.lookup(ACCOUNT)
    assert answer.addresses == ("127.0.1.1",) and answer.chain == (LEGACY,)
    assert dns.count(LEGACY, "A") == 1
    again = await resolver.lookup(ACCOUNT)  # both links cached
    assert again.cached and dns.count(ACCOUNT, "A") == 1


async def test_cname_to_nodata_is_nodata(dns, resolver):
    dns.records[LEGACY] = {}
    with pytest.raises(NoData):
        await resolver.lookup(ACCOUNT)


async def test_timeout_and_servfail_not_cached(dns, resolver):
    dns.modes[LEGACY] = "DROP"
    with pytest.raises(Timeout):
        await resolver.lookup(LEGACY)
    dns.modes[LEGACY] = "SERVFAIL"
    with pytest.raises(ServerFailure):
        await resolver.lookup(LEGACY)
    del dns.modes[LEGACY]
    assert (await resolver.lookup(LEGACY)).addresses == ("127.0.1.1",)


async def test_lookup_span_attributes(dns, resolver, spans):
    _, exporter = spans
    await resolver.lookup(LEGACY)
    await resolver.lookup(LEGACY)
    dns.records["other." + ACCOUNT_ZONE] = {}
    with pytest.raises(NoData):
        await resolver.lookup("other." + ACCOUNT_ZONE)
    found = [s for s in exporter.get_finished_spans() if s.name == "dns.lookup"]
    assert [s.attributes["racelab.dns.cache"] for s in found] == ["miss", "hit", "miss"]
    assert found[0].attributes["dns.question.name"] == LEGACY
    assert found[0].attributes["dns.question.type"] == "A"
    assert found[0].attributes["racelab.dns.answer_count"] == 1
    assert found[2].attributes["error.type"] == "NODATA"
    assert found[2].attributes["racelab.dns.answer_count"] == 0


def lookups(name: str, error_type: str = "") -> float:
    from prometheus_client import REGISTRY
    return REGISTRY.get_sample_value("dns_lookup_duration_seconds_count",
                                     {"dns_question_name": name, "error_type": error_type}) or 0.0


async def test_lookup_duration_under_the_current_conventions(dns, resolver, spans):
    """dns.lookup.duration (semantic conventions 1.40+): by dns.question.name, error.type on failures
    (NODATA, SERVFAIL, TIMEOUT: what the span says), cache hits timed too; exemplars are the span's trace."""
    from prometheus_client import REGISTRY
    from prometheus_client.openmetrics.exposition import generate_latest
    before = {k: lookups(LEGACY, k) for k in ("", "SERVFAIL")}
    await resolver.lookup(LEGACY)
    await resolver.lookup(LEGACY)  # a cache hit
    dns.modes[LEGACY] = "SERVFAIL"
    resolver.test_clock.advance(10)
    with pytest.raises(ServerFailure):
        await resolver.lookup(LEGACY)
    assert lookups(LEGACY) - before[""] == 2
    assert lookups(LEGACY, "SERVFAIL") - before["SERVFAIL"] == 1
    trace_ids = {format(s.context.trace_id, "032x") for s in spans[1].get_finished_spans()}
    exposition = generate_latest(REGISTRY).decode()
    exemplars = {line.split('trace_id="')[1][:32] for line in exposition.splitlines()
                 if line.startswith("dns_lookup_duration_seconds_bucket") and "trace_id" in line}
    assert exemplars & trace_ids
