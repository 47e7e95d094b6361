"""The authority's UDP queue wait: the kernel's arrival stamp of the oldest query of each wake-up
against the time it was read (racelab_dns_udp_queue_wait_seconds)."""

from __future__ import annotations

import os
import signal
import socket
import struct
import time

import dns.message
import pytest

from harness.authority import AuthorityProcess, fleet_planner, free_port, install_plan
from procs import metric, scrape
from services.authority.dnsserver import QUEUE_WAIT_BUCKETS, SO_TIMESTAMPNS, QueueWait, received_at
from services.core.plans import LEGACY_ENDPOINT


def test_queue_wait_buckets_and_stamp_parsing():
    wait = QueueWait()
    for seconds in (0.0002, 0.003, 0.003, 2.0, -0.001):
        wait.observe(seconds)
    assert wait.count == 5 and sum(wait.buckets) == 5
    assert wait.buckets[0] == 2  # 0.2 ms, and a negative reading (a clock step) counted as 0
    assert wait.buckets[QUEUE_WAIT_BUCKETS.index(0.005)] == 2
    assert wait.buckets[-1] == 1  # above every bound
    stamp = struct.pack("@ll", 1_700_000_000, 250_000_000)
    assert received_at([(socket.SOL_SOCKET, SO_TIMESTAMPNS, stamp)]) == pytest.approx(1_700_000_000.25)
    assert received_at([(socket.SOL_SOCKET, 29, stamp)]) is None  # another kind of ancillary data
    assert received_at([]) is None


@pytest.mark.integration
@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP")
def test_a_query_held_while_the_authority_cannot_run_shows_as_queue_wait(tmp_path):
    metrics_port = free_port()
    auth = AuthorityProcess(tmp_path / "state", metrics_port=metrics_port).start()
    try:
        install_plan(auth, fleet_planner().next_plan(0.0))
        host, port = auth.dns
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            query = dns.message.make_query(LEGACY_ENDPOINT, "A")
            sock.sendto(query.to_wire(), (host, port))
            sock.recv(4096)
            before = _over(scrape(metrics_port), 0.25)
            os.kill(auth.proc.pid, signal.SIGSTOP)  # the process cannot run: the query waits in its socket
            try:
                sock.sendto(query.to_wire(), (host, port))
                time.sleep(0.4)
            finally:
                os.kill(auth.proc.pid, signal.SIGCONT)
            reply = dns.message.from_wire(sock.recv(4096))
        assert reply.id == query.id and reply.answer
        text = scrape(metrics_port)
        assert metric(text, "racelab_dns_udp_queue_wait_seconds_count") >= 2
        assert _over(text, 0.25) == before + 1  # the held query, and only it, waited more than 0.25 s
        assert metric(text, "racelab_dns_udp_queue_wait_seconds_sum") >= 0.35
    finally:
        assert auth.stop() == 0


def _over(text: str, bound: float) -> float:
    count = metric(text, "racelab_dns_udp_queue_wait_seconds_count")
    return count - metric(text, "racelab_dns_udp_queue_wait_seconds_bucket", le=str(bound))
