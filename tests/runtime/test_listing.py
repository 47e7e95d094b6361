"""Reading a zone page by page (wire.ZoneListing, wire.page_to_wire) against the core's zone."""

from __future__ import annotations

import pytest

from racelab.v1 import authority_pb2
from services.core.records import RecordSet, RRType, create, upsert
from services.core.zone import HostedZone
from services.core.effects import Accepted, SubmitBatch, Step, ZoneChanging
from services.runtime.effects import ControlPlane
from services.runtime.wire import WireError, ZoneKeptChanging, ZoneListing, page_to_wire, pages_of

ORIGIN = "ddb.example"


def zone_of(n: int) -> HostedZone:
    zone = HostedZone(ORIGIN)
    zone.apply([create(RecordSet(f"h{i:04d}.{ORIGIN}", RRType.A, 60, (f"10.0.{i // 250}.{i % 250}",)))
                for i in range(n)])
    return zone


def test_a_listing_reads_every_page_once_into_one_snapshot():
    zone = zone_of(700)
    listing = ZoneListing(ORIGIN, max_items=300)
    while (request := listing.next_request()) is not None:
        listing.add(page_to_wire(zone.snapshot, request))
    assert listing.pages == 3
    assert dict(listing.snapshot().records) == dict(zone.snapshot.records)
    assert listing.snapshot().version == zone.version


def test_a_batch_landing_between_pages_restarts_the_listing_and_never_tears_it():
    zone = zone_of(700)
    listing = ZoneListing(ORIGIN, max_items=300)
    listing.add(page_to_wire(zone.snapshot, listing.next_request()))
    zone.apply([create(RecordSet(f"new.{ORIGIN}", RRType.A, 60, ("10.9.9.9",)))])  # mid-listing
    listing.add(page_to_wire(zone.snapshot, listing.next_request()))  # a later version: start again
    assert listing.records == []
    while (request := listing.next_request()) is not None:
        listing.add(page_to_wire(zone.snapshot, request))
    assert listing.snapshot().get(f"new.{ORIGIN}", RRType.A) is not None
    assert dict(listing.snapshot().records) == dict(zone.snapshot.records)


def test_a_zone_that_never_holds_still_is_unreadable_not_torn():
    zone = zone_of(700)
    listing = ZoneListing(ORIGIN, max_items=300, attempts=3)
    with pytest.raises(ZoneKeptChanging, match="changed under every listing"):
        for i in range(10):
            listing.add(page_to_wire(zone.snapshot, listing.next_request()))
            zone.apply([create(RecordSet(f"n{i}.{ORIGIN}", RRType.A, 60, ("10.9.9.9",)))])


def test_a_start_type_without_a_start_name_is_refused():
    with pytest.raises(WireError, match="need start_record_name"):
        page_to_wire(zone_of(1).snapshot, authority_pb2.ListResourceRecordSetsRequest(
            hosted_zone=ORIGIN, start_record_type=1))


@pytest.mark.parametrize("record_sets, pages", [(0, 1), (1, 1), (300, 1), (301, 2), (700, 3)])
def test_pages_of_is_the_number_of_calls_a_listing_makes(record_sets, pages):
    assert pages_of(record_sets) == pages
    if record_sets > 2:
        zone, listing = zone_of(record_sets - 2), ZoneListing(ORIGIN)  # + the apex SOA and NS
        while (request := listing.next_request()) is not None:
            listing.add(page_to_wire(zone.snapshot, request))
        assert len(zone.snapshot.records) == record_sets and listing.pages == pages


class FakeAuthority:
    """The control API's two calls over one HostedZone; `between_pages` runs after every page served."""

    def __init__(self, zone: HostedZone, between_pages=lambda: None):
        self.zone, self.between_pages = zone, between_pages

    async def ListResourceRecordSets(self, request, timeout=None):
        page = page_to_wire(self.zone.snapshot, request)
        self.between_pages()
        return page

    async def ChangeResourceRecordSets(self, request, timeout=None):
        return authority_pb2.ChangeResourceRecordSetsResponse(zone_version=self.zone.version)


@pytest.mark.asyncio
async def test_a_condition_is_paid_before_every_page_and_every_batch():
    """ControlPlane.before_call is where a slow enactor's delay goes: a 3-page read costs it 3 times."""
    calls = []

    async def before_call():
        calls.append("call")
    control = ControlPlane(None, FakeAuthority(zone_of(700)), 1.0, "e1", before_call=before_call)
    await control.read(ORIGIN)
    assert len(calls) == 3
    result = await control.submit(SubmitBatch(ORIGIN, (), Step.INSTALL, 1, ORIGIN))
    assert isinstance(result, Accepted) and len(calls) == 4


@pytest.mark.asyncio
async def test_a_zone_written_between_every_page_reads_as_zone_changing_contention():
    zone = zone_of(700)
    written = iter(range(1000))
    control = ControlPlane(None, FakeAuthority(zone, lambda: zone.apply([create(RecordSet(
        f"n{next(written)}.{ORIGIN}", RRType.A, 60, ("10.9.9.9",)))])), 1.0, "e1")
    result = await control.read(ORIGIN)
    assert isinstance(result, ZoneChanging) and "changed under every listing" in result.message


def test_a_listed_page_is_the_zone_however_often_it_is_listed_and_whatever_a_reader_does_with_it():
    """Listed record sets are built once and copied into each response: a reader changing its response
    changes nothing for the next one, and a record set replaced in the zone is listed as it is now."""
    zone = zone_of(5)
    request = authority_pb2.ListResourceRecordSetsRequest(hosted_zone=ORIGIN)
    name = f"h0000.{ORIGIN}"

    def h0000(response) -> object:
        (rs,) = [r for r in response.record_sets if r.name == name]
        return rs

    first = page_to_wire(zone.snapshot, request)
    h0000(first).values[0] = "192.0.2.1"
    h0000(first).ttl_seconds = 1
    again = page_to_wire(zone.snapshot, request)
    assert (h0000(again).values, h0000(again).ttl_seconds) == (["10.0.0.0"], 60)
    zone.apply([upsert(RecordSet(name, RRType.A, 30, ("10.1.1.1",)))])
    now = page_to_wire(zone.snapshot, request)
    assert (h0000(now).values, h0000(now).ttl_seconds) == (["10.1.1.1"], 30)
    assert [r.name for r in now.record_sets] == [r.name for r in again.record_sets]
