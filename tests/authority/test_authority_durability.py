"""Acknowledged batches survive SIGKILL; a torn last log record is dropped; snapshots and replay agree."""

from __future__ import annotations

import os
import subprocess
import sys

import dns.rcode
import pytest

from authority_helpers import answers, dig
from services.authority.store import WalRecord, read_wal
from harness.authority import REPO, AuthorityProcess, fleet_planner, free_port, install_plan
from procs import auth_env
from services.core.plans import LEGACY_ENDPOINT
from services.core.records import RecordSet, RRType, create

pytestmark = pytest.mark.integration


def _records(auth, zone):
    listed = auth.list(zone)
    return listed.zone_version, sorted(rs.SerializeToString() for rs in listed.record_sets)


def test_acknowledged_batches_survive_sigkill(tmp_path):
    state = tmp_path / "state"
    auth = AuthorityProcess(state, extra=["--snapshot-every", "3"]).start()  # snapshots and log both in play
    planner = fleet_planner()
    p110, p111 = planner.next_plan(0.0), planner.next_plan(2.0)
    install_plan(auth, p110)
    install_plan(auth, p111, previous=p110)
    for i in range(4):
        auth.change(LEGACY_ENDPOINT, [create(RecordSet(f"n{i}.{LEGACY_ENDPOINT}", RRType.A, 5, ("10.9.0.1",)))])
    before = {ep.endpoint: _records(auth, ep.endpoint) for ep in p111.endpoints}
    assert before[LEGACY_ENDPOINT][0] == 8
    auth.kill()
    again = AuthorityProcess(state, dns_port=auth.dns_port, control_port=auth.control_port).start()
    try:
        after = {ep.endpoint: _records(again, ep.endpoint) for ep in p111.endpoints}
        assert after == before
        r = dig(again, LEGACY_ENDPOINT, "A")
        assert r.rcode() == dns.rcode.NOERROR and answers(r)[0].startswith("127.0.1.")
        # and it keeps counting from there
        assert again.change(LEGACY_ENDPOINT, [create(RecordSet("z." + LEGACY_ENDPOINT, RRType.A, 5,
                                                                ("10.9.0.2",)))]).zone_version == 9
    finally:
        assert again.stop() == 0  # SIGTERM: a clean stop
    assert (state / "zones.snapshot.json").exists() and (state / "batches.wal").stat().st_size == 0


def test_torn_last_record_is_dropped(tmp_path):
    state = tmp_path / "state"
    auth = AuthorityProcess(state).start()
    auth.change(LEGACY_ENDPOINT, [create(RecordSet("a." + LEGACY_ENDPOINT, RRType.A, 5, ("10.0.0.1",)))])
    auth.change(LEGACY_ENDPOINT, [create(RecordSet("b." + LEGACY_ENDPOINT, RRType.A, 5, ("10.0.0.2",)))])
    auth.kill()
    wal = state / "batches.wal"
    records, good, why = read_wal(wal)
    assert [r.version for r in records] == [1, 2] and why is None and good == wal.stat().st_size
    # A crash in the middle of writing batch 3: half a record at the end.
    torn = WalRecord(LEGACY_ENDPOINT, 3, "CTORN", [create(RecordSet("c." + LEGACY_ENDPOINT, RRType.A, 5,
                                                                    ("10.0.0.3",)))]).encode()
    with open(wal, "ab") as f:
        f.write(torn[: len(torn) // 2])
    again = AuthorityProcess(state).start()
    try:
        listed = again.list(LEGACY_ENDPOINT)
        names = {rs.name for rs in listed.record_sets}
        assert listed.zone_version == 2 and {"a." + LEGACY_ENDPOINT, "b." + LEGACY_ENDPOINT} <= names
        assert "c." + LEGACY_ENDPOINT not in names
        # the log was kept, not rewritten into a snapshot: only the torn tail is gone
        kept, kept_good, kept_why = read_wal(wal)
        assert [r.version for r in kept] == [1, 2] and kept_why is None and kept_good == wal.stat().st_size
        # the next batch gets version 3 and survives another crash
        again.change(LEGACY_ENDPOINT, [create(RecordSet("d." + LEGACY_ENDPOINT, RRType.A, 5, ("10.0.0.4",)))])
        again.kill()
        assert [r.version for r in read_wal(wal)[0]] == [1, 2, 3]  # appended after the good records
        third = AuthorityProcess(state).start()
        assert third.list(LEGACY_ENDPOINT).zone_version == 3
        third.stop()
    finally:
        again.stop()


def test_corrupt_record_and_replay_skip(tmp_path):
    """A checksum mismatch ends the log; records already in the snapshot are skipped on replay."""
    state = tmp_path / "state"
    auth = AuthorityProcess(state).start()
    for i in range(3):
        auth.change(LEGACY_ENDPOINT, [create(RecordSet(f"r{i}.{LEGACY_ENDPOINT}", RRType.A, 5, ("10.0.0.1",)))])
    auth.kill()
    wal = state / "batches.wal"
    data = bytearray(wal.read_bytes())
    records, _, _ = read_wal(wal)
    # Crash between snapshot and truncation: the log still holds batch 1 and 2, the snapshot is at 0.
    # Flip a byte inside the last record's payload: it must be dropped, 1-2 replayed.
    data[-3] ^= 0xFF
    wal.write_bytes(bytes(data))
    again = AuthorityProcess(state).start()
    try:
        assert again.list(LEGACY_ENDPOINT).zone_version == 2
    finally:
        again.stop()  # clean stop: snapshot at 2, empty log
    assert wal.stat().st_size == 0
    # Put batches 1..3 back in the log (as if truncation never happened): 1-2 skipped, 3 replayed.
    with open(wal, "wb") as f:
        for rec in records:
            f.write(rec.encode())
    third = AuthorityProcess(state).start()
    try:
        listed = third.list(LEGACY_ENDPOINT)
        assert listed.zone_version == 3 and "r2." + LEGACY_ENDPOINT in {rs.name for rs in listed.record_sets}
    finally:
        third.stop()


def _run(args: list[str], timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.authority", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO), **auth_env()})


def test_bad_settings_exit_2_with_one_line(tmp_path):
    port = free_port()
    r = _run(["--listen", f"127.0.0.1:{port}", "--state-dir", str(tmp_path)])
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--dns-listen" in r.stderr
    r = _run(["--listen", f"127.0.0.1:{port}", "--dns-listen", "nonsense", "--state-dir", str(tmp_path)])
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--dns-listen" in r.stderr
    r = _run(["--listen", f"127.0.0.1:{port}", "--dns-listen", f"127.0.0.1:{free_port()}"])
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--state-dir" in r.stderr


def test_ports_in_use_exit_2_with_one_line(tmp_path):
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        dns_port = busy.getsockname()[1]
        r = _run(["--listen", f"127.0.0.1:{free_port()}", "--dns-listen", f"127.0.0.1:{dns_port}",
                  "--state-dir", str(tmp_path / "a")])
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "--dns-listen" in r.stderr and "in use" in r.stderr
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = _run(["--listen", f"127.0.0.1:{port}", "--dns-listen", f"127.0.0.1:{free_port()}",
                  "--state-dir", str(tmp_path / "b")])
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "--listen" in r.stderr
