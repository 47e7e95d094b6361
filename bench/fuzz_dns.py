"""Fuzz the authority's DNS: a million generated packets and more, then ask it what it must still answer.

    PYTHONPATH=. python bench/fuzz_dns.py [--udp 1000000] [--tcp 100000] [--in-process 1000000] [--seed 1]

1. In process: AnswerCache.handle (the whole packet path minus the socket) on
   --in-process packets; every response must parse (dnspython) and echo the id;
   no internal error.
2. Over sockets: a real `python -m services.authority` process with a plan
   installed; --udp packets over UDP (in windows closed by a sentinel query, so
   the server reads every one) and --tcp over TCP (framed, 64 per connection,
   some with lying length prefixes). Then: the process is alive, its
   racelab_dns_internal_errors_total is 0, and it still answers correctly
   (harness.fuzz.check_answers) over UDP and TCP.
Packets are mutated valid queries, random bytes and structured malformations
in equal shares (tests/harness/fuzz.py). Reports packets/s and the RSS
before and after.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # the harnesses live in tests/harness

import dns.message  # noqa: E402

from harness import fuzz  # noqa: E402
from harness.authority import (AuthorityProcess, answer_cache_with_plan, fleet_planner,  # noqa: E402
                                        free_port, install_plan)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def udp_errors() -> dict[str, int]:
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Udp:")]
    return {k: int(v) for k, v in zip(lines[0][1:], lines[1][1:]) if k in ("InErrors", "RcvbufErrors")}


def metric(port: int, name: str) -> float:
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")
               or line.startswith(name + "{"))


def in_process(count: int, seed: int) -> dict:
    cache = answer_cache_with_plan()
    answered = unanswered = 0
    start = time.perf_counter()
    for i, packet in enumerate(fuzz.packets(seed, count)):
        resp = cache.handle(packet, i % 2 == 0)
        if resp is not None:
            answered += 1
            msg = dns.message.from_wire(resp)  # raises if we ever send something malformed
            assert msg.id == int.from_bytes(packet[:2], "big")
        elif fuzz.answerable(packet):
            unanswered += 1
    seconds = time.perf_counter() - start
    return {"packets": count, "answered": answered, "unanswered": unanswered, "seconds": round(seconds, 1),
            "packets_per_second": round(count / seconds), "internal_errors": cache.errors,
            "malformed_counted": cache.malformed}


def over_sockets(udp: int, tcp: int, seed: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="fuzz-dns-"))
    metrics_port = free_port()
    auth = AuthorityProcess(tmp / "state", metrics_port=metrics_port).start()
    try:
        plan = fleet_planner().next_plan(0.0)
        install_plan(auth, plan)
        lbs = {t.ipv4 for ep in plan.endpoints for t in ep.targets}
        before_problems = fuzz.check_answers(auth.dns, lbs)
        assert not before_problems, before_problems
        rss_before = rss_kib(auth.proc.pid)
        errors_before = udp_errors()
        print(f"authority pid {auth.proc.pid}, DNS 127.0.0.1:{auth.dns_port}, RSS {rss_before} KiB", flush=True)
        u = fuzz.fuzz_udp(auth.dns, seed, udp)
        print(f"UDP: {u.sent:,} packets in {u.seconds:.0f}s ({u.rate:,.0f}/s), {u.unanswered} unanswered", flush=True)
        t = fuzz.fuzz_tcp(auth.dns, seed + 1, tcp)
        print(f"TCP: {t.sent:,} packets in {t.seconds:.0f}s ({t.rate:,.0f}/s), {t.unanswered} unanswered", flush=True)
        alive = auth.proc.poll() is None
        problems = fuzz.check_answers(auth.dns, lbs) if alive else ["process exited"]
        rss_after = rss_kib(auth.proc.pid) if alive else 0
        internal = metric(metrics_port, "racelab_dns_internal_errors_total")
        malformed = metric(metrics_port, "racelab_dns_malformed_total")
        errors_after = udp_errors()
    finally:
        code = auth.stop()
    return {"udp": _stats(u), "tcp": _stats(t),
            "alive_after": alive, "answers_after": problems or "all correct", "internal_errors": internal,
            "malformed_counted": malformed, "rss_kib_before": rss_before, "rss_kib_after": rss_after,
            "kernel_udp_errors_during": {k: errors_after[k] - errors_before[k] for k in errors_after},
            "exit_code_on_sigterm": code}


def _stats(s: fuzz.FuzzStats) -> dict:
    return {"packets": s.sent, "seconds": round(s.seconds, 1), "packets_per_second": round(s.rate),
            "answerable": s.answerable, "answered": s.answered, "unanswered": s.unanswered, "rcodes": s.rcodes}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--udp", type=int, default=1_000_000)
    ap.add_argument("--tcp", type=int, default=100_000)
    ap.add_argument("--in-process", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    result = {"seed": args.seed}
    if args.in_process:
        result["in_process"] = in_process(args.in_process, args.seed)
        print(f"in process: {json.dumps(result['in_process'])}", flush=True)
    if args.udp or args.tcp:
        result["sockets"] = over_sockets(args.udp, args.tcp, args.seed)
    print(json.dumps(result, indent=2))
    s = result.get("sockets", {})
    ip = result.get("in_process", {})
    ok = (ip.get("internal_errors", 0) == 0 and ip.get("unanswered", 0) == 0
          and (not s or (s["alive_after"] and s["internal_errors"] == 0 and s["answers_after"] == "all correct"
                     and s["udp"]["unanswered"] == 0 and s["tcp"]["unanswered"] == 0)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
