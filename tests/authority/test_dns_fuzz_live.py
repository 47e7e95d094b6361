"""A real authority takes generated garbage over UDP and TCP, answers every packet it should, and then
still answers correctly (bench/fuzz_dns.py does the same with a million packets)."""

from __future__ import annotations

import pytest

from procs import metric, scrape
from harness import fuzz
from harness.authority import AuthorityProcess, fleet_planner, free_port, install_plan

pytestmark = pytest.mark.integration


def test_fuzzed_authority_stays_up_and_correct(tmp_path):
    metrics_port = free_port()
    auth = AuthorityProcess(tmp_path / "state", metrics_port=metrics_port).start()
    try:
        plan = fleet_planner().next_plan(0.0)
        install_plan(auth, plan)
        lbs = {t.ipv4 for ep in plan.endpoints for t in ep.targets}
        assert fuzz.check_answers(auth.dns, lbs) == []
        udp = fuzz.fuzz_udp(auth.dns, seed=11, count=15_000)
        tcp = fuzz.fuzz_tcp(auth.dns, seed=12, count=3_000)
        assert auth.proc.poll() is None
        assert udp.unanswered == 0 and tcp.unanswered == 0, (udp, tcp)
        assert udp.answerable > 9_000 and {"FORMERR", "NOTIMP", "REFUSED", "NOERROR"} <= set(udp.rcodes)
        assert fuzz.check_answers(auth.dns, lbs) == []
        text = scrape(metrics_port)
        assert metric(text, "racelab_dns_internal_errors_total") == 0
        assert metric(text, "racelab_dns_malformed_total") > 5_000
    finally:
        assert auth.stop() == 0
