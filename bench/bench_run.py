"""The whole event, end to end: wall time of `racelab run` on oct-2025 (target: at most 3 minutes on
this 2-core machine), processes' startup and memory, and how many INCIDENT.md §3 rows it reproduced.

    .venv/bin/python bench/bench_run.py [--runs N] [--first-seed S] [--base-port P] [--fix NAME ...] [--keep DIR]
                                        [--scenario NAME] [--no-what-if]

While it runs, a probe asks the authority for the regional name's A record every 0.2 s (UDP, 0.5 s
timeout) and reports its answer times (p50 / p99 / max) and how many went unanswered while the
authority was listening (queries after it stopped, in the run's teardown, are counted apart). Where
the time went: the kernel stamps the answer as it arrives (SO_TIMESTAMPNS), so each answer time splits
into the answer's arrival (the authority's part: its socket queue, its work, the loopback) and the
probe's own wake-up after it (this process waiting for a CPU); and the authority's
racelab_dns_udp_queue_wait_seconds says how long queries sat in its socket before it read them.

Each run is a separate `racelab run --no-tty` in a temporary directory (or DIR/seedN with --keep); the
figures come from its summary.json and report (fidelity table and phase durations), and the wall clock
of the command itself.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import dns.exception
import dns.message

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from services.authority.dnsserver import (QUEUE_WAIT_BUCKETS, STAMP_SPACE, enable_receive_stamps,  # noqa: E402
                                          received_at)
from services.lab.live.scrape import Series  # noqa: E402
from services.lab.report.page import load_run, run_fidelity  # noqa: E402

REGIONAL = "dynamodb.us-east-1.amazonaws.com"


class Probe(threading.Thread):
    """The regional name's A record every 0.2 s from the run's authority: answer times, and misses."""

    def __init__(self, address: str, port: int):
        super().__init__(daemon=True)
        self.address, self.port = address, port
        self.times: list[float] = []
        self.unanswered = 0
        self.missed_at: list[float] = []  # monotonic seconds of each unanswered query
        self.after_stop = 0  # queries sent once the authority's port was closed: not counted as unanswered
        self.stop = threading.Event()

    def run(self) -> None:
        started = False
        self.arrivals: list[float] = []  # query sent -> answer stamped by the kernel
        self.wakeups: list[float] = []  # answer stamped -> this thread read it
        while not self.stop.wait(0.2):
            query = dns.message.make_query(REGIONAL, "A")
            try:
                answer = self.ask(query)
            except TimeoutError:
                if not udp_port_bound(self.port):
                    self.after_stop += 1  # the authority has stopped (the run's teardown): nobody to answer
                elif started:
                    self.unanswered += 1
                    self.missed_at.append(time.monotonic())
                continue
            except OSError:
                continue  # not listening yet, or gone: not a query the authority dropped
            started = True
            seen, arrived = answer
            self.times.append(seen)
            if arrived is not None:
                self.arrivals.append(arrived)
                self.wakeups.append(seen - arrived)

    def ask(self, query: dns.message.Message) -> tuple[float, float | None]:
        """(answer time as this thread saw it, answer time by the kernel's arrival stamp)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            stamped = enable_receive_stamps(sock)
            sock.connect((self.address, self.port))
            sent = time.time()
            sock.send(query.to_wire())
            deadline = sent + 0.5
            while True:
                left = deadline - time.time()
                if left <= 0 or not select.select([sock], [], [], left)[0]:
                    raise TimeoutError
                data, ancdata, _, _ = sock.recvmsg(4096, STAMP_SPACE)
                seen = time.time() - sent
                try:
                    reply = dns.message.from_wire(data)
                except dns.exception.DNSException:
                    continue
                if reply.id == query.id:
                    arrived = received_at(ancdata) if stamped else None
                    return seen, None if arrived is None else arrived - sent

    def summary(self, started: float) -> dict:
        t = sorted(self.times)
        if not t:
            return {"answered": 0, "unanswered": self.unanswered, "after_the_authority_stopped": self.after_stop}
        per_10s: dict[int, int] = {}  # when in the run (wall seconds, by tens) the misses came
        for m in self.missed_at:
            per_10s[int((m - started) // 10) * 10] = per_10s.get(int((m - started) // 10) * 10, 0) + 1
        return {"answered": len(t), "unanswered": self.unanswered, "misses_by_wall_10s": per_10s,
                "after_the_authority_stopped": self.after_stop, **_quantiles_ms("", t),
                **_quantiles_ms("arrived_", sorted(self.arrivals)), **_quantiles_ms("probe_wakeup_", sorted(self.wakeups))}


def _quantiles_ms(prefix: str, t: list[float]) -> dict:
    if not t:
        return {}
    return {f"{prefix}p50_ms": round(statistics.median(t) * 1e3, 2),
            f"{prefix}p99_ms": round(t[int(0.99 * (len(t) - 1))] * 1e3, 2), f"{prefix}max_ms": round(t[-1] * 1e3, 2)}


def one(base_port: int, seed: int, fixes: list[str], out: Path, scenario: str, what_if: bool) -> dict:
    cmd = [sys.executable, "-m", "services.lab.cli", "run", "--no-tty", "--seed", str(seed), "--out", str(out),
           "--base-port", str(base_port), "--scenario", scenario] + [f"--fix={f}" for f in fixes] + \
        ([] if what_if else ["--no-what-if"])
    probe = Probe("127.0.0.1", base_port + 53)
    udp_before = udp_counters()
    probe.start()
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - started
    udp_after = udp_counters()
    probe.stop.set()
    probe.join()
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    # The fidelity rows and phases as the report computes them (one loader, services/lab/report/page.py).
    _, run_scenario, series = load_run(out)
    rows, windows = run_fidelity(run_scenario, series, summary)
    measured = [r for r in rows if r.how == "measured"]
    seen = sum(r.reproduced is not None for r in measured)
    phases = {}
    for w in windows:
        real, minutes, off = w.real_minutes(run_scenario), w.minutes(), w.off(run_scenario)
        off = "-" if off is None else f"{off:+.0%}"
        phases[w.what] = f"{'-' if minutes is None else round(minutes)} / {round(real)} ({off}, {w.basis})"
    return {"scenario": scenario, "seed": seed, "fixes": fixes, "command_wall_seconds": round(wall, 1),
            "replica_wall_seconds": summary.get("wall_seconds"), "dns_probe": probe.summary(started),
            "kernel_udp_drops": {k: udp_after[k] - udp_before[k] for k in ("RcvbufErrors", "InErrors")},
            "startup_seconds": summary.get("startup_seconds"), "memory_rss_mib": round(
                (summary.get("memory_rss_bytes") or 0) / 2**20),
            "authority_rss_mib": round((summary.get("memory_rss_bytes_by_process") or {}).get("authority", 0) / 2**20),
            "spans": summary.get("spans"),
            "regional_name_emptied": summary.get("regional_name_emptied"),
            "emptied_endpoints": summary.get("emptied_endpoints"), "ended_at_pdt": summary.get("ended_at_pdt"),
            "measured_rows_reproduced": f"{seen}/{len(measured)}", "phase_minutes_run_over_real": phases,
            "authority_loop_lag": loop_lag(series), "authority_udp_queue_wait": queue_wait(series)}


def udp_port_bound(port: int) -> bool:
    """Whether anything listens on this UDP port (IPv4, /proc/net/udp): an unanswered query to a closed
    port is the authority gone, not the authority slow (UDP to a closed port on loopback just times out)."""
    suffix = f":{port:04X}"
    with open("/proc/net/udp") as f:
        return any(line.split()[1].endswith(suffix) for line in list(f)[1:])


def udp_counters() -> dict[str, int]:
    """The kernel's UDP counters (/proc/net/snmp): a datagram dropped because a socket's receive
    buffer was full counts in RcvbufErrors (and InErrors), whoever's socket it was."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Udp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:])))


def loop_lag(series: Series) -> dict:
    """The authority's event-loop lag at the last scrape: its 50 ms wake-ups, their mean lateness, and
    how many came more than 100 / 500 ms late (a DNS query arriving then waited at least that long)."""
    count = series.total("racelab_authority_event_loop_lag_seconds_count")
    total = series.total("racelab_authority_event_loop_lag_seconds_sum")
    return {"wakeups": int(count), "mean_ms": round(total / count * 1e3, 2) if count else None,
            **{f"over_{int(float(t) * 1000)}ms": int(series.total("racelab_authority_event_loop_stalls_total", over=t))
               for t in ("0.1", "0.5")}}


def queue_wait(series: Series) -> dict:
    """The authority's UDP queue wait at the last scrape: wake-ups measured, and how many found their
    oldest query waiting more than 10 / 50 / 100 ms (the buckets' bounds)."""
    name = "racelab_dns_udp_queue_wait_seconds"
    count = series.total(f"{name}_count")
    if not count:
        return {"wakeups": 0}
    over = {f"over_{int(b * 1000)}ms": int(count - series.total(f"{name}_bucket", le=str(b)))
            for b in QUEUE_WAIT_BUCKETS if b in (0.01, 0.05, 0.1)}
    return {"wakeups": int(count), "mean_ms": round(series.total(f"{name}_sum") / count * 1e3, 2), **over}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--base-port", type=int, default=28000)
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--fix", action="append", default=[])
    p.add_argument("--keep", type=Path, help="keep each run's directory here (DIR/seedN)")
    p.add_argument("--scenario", default="oct-2025")
    p.add_argument("--no-what-if", action="store_true", help="skip the what-if table (the twins)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first_seed, args.first_seed + args.runs):
            out = (args.keep or Path(tmp)) / f"seed{seed}"
            print(json.dumps(one(args.base_port, seed, args.fix, out, args.scenario, not args.no_what_if)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
