"""Reading a zone page by page (wire.ZoneListing, wire.page_to_wire) against the core's zone."""

from __future__ import annotations

import pytest

from racelab.v1 import authority_pb2
from services.core.records import RecordSet, RRType, create
from services.core.zone import HostedZone
from services.runtime.wire import WireError, ZoneListing, page_to_wire

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
    with pytest.raises(WireError, match="changed under every listing"):
        for i in range(10):
            listing.add(page_to_wire(zone.snapshot, listing.next_request()))
            zone.apply([create(RecordSet(f"n{i}.{ORIGIN}", RRType.A, 60, ("10.9.9.9",)))])


def test_a_start_type_without_a_start_name_is_refused():
    with pytest.raises(WireError, match="need start_record_name"):
        page_to_wire(zone_of(1).snapshot, authority_pb2.ListResourceRecordSetsRequest(
            hosted_zone=ORIGIN, start_record_type=1))
