"""The snapshot file: grouped record sets read back exactly, the older format still read, bad files refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from services.authority.store import StateError, read_snapshot, record_to_json, write_snapshot
from services.core.records import RecordSet, RRType, record_sets_alike
from services.core.zone import HostedZone, apex_records

ORIGIN = "dynamodb.us-east-1.amazonaws.com"

labels = st.text("abcdefghij0123456789-", min_size=1, max_size=8).filter(lambda s: s[0] != "-" and s[-1] != "-")
addresses = st.sampled_from(["10.0.0.1", "10.0.0.2", "192.168.1.9"])


@st.composite
def record_set(draw) -> RecordSet:
    name = f"{draw(labels)}.{ORIGIN}" if draw(st.booleans()) else f"{draw(labels)}.{draw(labels)}.{ORIGIN}"
    kind = draw(st.sampled_from(["plain", "weighted", "alias", "cname", "txt"]))
    if kind == "plain":
        return RecordSet(name, RRType.A, draw(st.sampled_from([5, 60])), (draw(addresses),))
    if kind == "weighted":
        return RecordSet(name, RRType.A, 5, (draw(addresses),), draw(labels), draw(st.integers(0, 255)))
    if kind == "alias":
        return RecordSet(name, RRType.AAAA, alias_target=f"{draw(labels)}.{ORIGIN}")
    if kind == "cname":
        return RecordSet(name, RRType.CNAME, 300, (ORIGIN,))
    return RecordSet(name, RRType.TXT, 0, tuple(draw(st.lists(labels, min_size=1, max_size=3))))


def _zone(records: list[RecordSet], version: int = 7) -> HostedZone:
    by_key = {rs.key: rs for rs in records}  # one record set per key, as a zone holds them
    return HostedZone(ORIGIN, apex_records(ORIGIN) + list(by_key.values()), version)


@settings(max_examples=60, deadline=None)
@given(st.lists(record_set(), max_size=30))
def test_a_zone_reads_back_as_it_was_written(tmp_path_factory, records):
    path = tmp_path_factory.mktemp("snap") / "zones.snapshot.json"
    zone = _zone(records)
    write_snapshot(path, [zone.snapshot])
    back = read_snapshot(path)[ORIGIN]
    assert back.version == 7
    assert dict(back.snapshot.records) == dict(zone.snapshot.records)
    # The indexes built from the file are the ones built from the records.
    for rs in zone.snapshot.records.values():
        assert back.snapshot.rrsets(rs.name, rs.rtype) == zone.snapshot.rrsets(rs.name, rs.rtype)
        assert sorted(back.snapshot.referrers(rs.name)) == sorted(zone.snapshot.referrers(rs.name))


def test_a_million_alike_are_written_once_with_their_shape(tmp_path):
    accounts = [RecordSet(f"{100000000000 + i}.{ORIGIN}", RRType.CNAME, 300, ("dynamodb.us-east-1.amazonaws.com",))
                for i in range(1000)]
    path = tmp_path / "zones.snapshot.json"
    write_snapshot(path, [_zone(accounts).snapshot])
    groups = json.loads(path.read_text())["zones"][ORIGIN]["groups"]
    cnames = [g for g in groups if g["t"] == "CNAME"]
    assert len(cnames) == 1 and len(cnames[0]["names"]) == 1000 and cnames[0]["v"] == [ORIGIN]
    back = read_snapshot(path)[ORIGIN].snapshot
    shared = {id(rs.values) for rs in back.of_type(RRType.CNAME).values()}
    assert len(shared) == 1  # one values tuple for the thousand, not a thousand copies


def test_record_sets_made_alike_equal_those_made_one_by_one():
    made = record_sets_alike(["a.x", "b.x"], RRType.A, 5, ("10.0.0.1",), 7, "", ["one", "two"])
    expected = [RecordSet("a.x", RRType.A, 5, ("10.0.0.1",), "one", 7), RecordSet("b.x", RRType.A, 5, ("10.0.0.1",), "two", 7)]
    assert made == expected and [hash(r) for r in made] == [hash(r) for r in expected]
    assert record_sets_alike(["c.x"], RRType.CNAME, 300, ("x",)) == [RecordSet("c.x", RRType.CNAME, 300, ("x",))]
    with pytest.raises(AttributeError):  # still frozen
        made[0].ttl = 9


def test_a_snapshot_of_the_first_format_is_still_read(tmp_path):
    records = apex_records(ORIGIN) + [RecordSet(f"w.{ORIGIN}", RRType.A, 5, ("10.0.0.1",), "x", 3),
                                      RecordSet(f"c.{ORIGIN}", RRType.CNAME, 300, (ORIGIN,))]
    path = tmp_path / "zones.snapshot.json"
    path.write_text(json.dumps({"format": 1, "written_at": 0,
                                "zones": {ORIGIN: {"version": 3, "records": [record_to_json(r) for r in records]}}}))
    back = read_snapshot(path)[ORIGIN]
    assert back.version == 3 and set(back.snapshot.records.values()) == set(records)


@pytest.mark.parametrize("group, why", [
    ({"t": "A", "ttl": 5, "v": ["10.0.0.1"], "names": [["a", "b"]]}, "not a list of strings"),
    ({"t": "A", "ttl": 5, "v": ["10.0.0.1"], "names": ["a.x", "b.x"], "s": ["one"]}, "not a list of strings"),
    ({"t": "MX", "ttl": 5, "v": ["x"], "names": ["a.x"]}, "MX"),
    ({"t": "A", "ttl": 5, "v": ["not-an-address"], "names": ["a.x"]}, "not-an-address"),
    ({"t": "A", "ttl": 5, "v": ["10.0.0.1"]}, "names"),
    ({"t": "A", "ttl": 5, "v": ["10.0.0.1"], "names": "abc"}, "not a list of strings"),
    ({"t": "TXT", "ttl": 5, "v": "abc", "names": ["a.x"]}, "values are not a list of strings"),
])
def test_a_bad_group_is_refused_with_the_reason(tmp_path, group, why):
    path = tmp_path / "zones.snapshot.json"
    path.write_text(json.dumps({"format": 2, "written_at": 0, "zones": {ORIGIN: {"version": 1, "groups": [group]}}}))
    with pytest.raises(StateError, match="bad snapshot") as caught:
        read_snapshot(path)
    assert why in str(caught.value)


def test_an_unknown_format_is_refused(tmp_path):
    path = tmp_path / "zones.snapshot.json"
    path.write_text(json.dumps({"format": 9, "zones": {}}))
    with pytest.raises(StateError, match="not a snapshot of format 1 or 2"):
        read_snapshot(path)
