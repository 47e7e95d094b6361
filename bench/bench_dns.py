"""DNS throughput: the racelab authority against NSD, both measured with dnsperf.

    PYTHONPATH=. python bench/bench_dns.py [--seconds 20] [--scenario oct-2025-scale] [--write bench/RESULTS-dns.md]

Starts the authority (a real `python -m services.authority` process, fresh
state dir), installs and activates a plan of 6 load balancers on every
endpoint through the control API, and runs dnsperf against it with a query
file of endpoint names (A/AAAA mix, the account CNAME, some NXDOMAIN). Then
the same query file against NSD serving zone files with the same names and
answers, on another loopback port. Needs `apt-get install -y dnsperf nsd`.
With --scenario oct-2025-scale the authority holds that scenario's zones (100,000 account CNAMEs):
the query file then asks 200 account names spread over all of them, and NSD loads the same 100,000.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # the harnesses live in tests/harness

from harness.authority import AuthorityProcess, fleet_planner, free_port, install_plan  # noqa: E402
from services.core.plans import ACCOUNT_ZONE, account_ids  # noqa: E402
from services.core.records import RRType  # noqa: E402
from services.core.resolve import resolve  # noqa: E402
from services.core.zone import HostedZone, ZoneSet  # noqa: E402
from services.runtime.scenario import load_scenario  # noqa: E402
from services.runtime.wire import snapshot_from_wire  # noqa: E402

DNSPERF_ARGS = ["-c", "4", "-T", "1", "-q", "200", "-t", "2"]


def query_lines(scenario) -> list[str]:
    lines = []
    for ep in scenario.endpoints:
        lines += [f"{ep.name} A"] * 4
        if ep.dual_stack:
            lines += [f"{ep.name} AAAA"] * 4
        else:
            lines.append(f"{ep.name} AAAA")  # NODATA on an IPv4-only endpoint
    accounts = list(scenario.workload.accounts)
    if scenario.dns.account_endpoints:  # spread over the whole zone, not only the workload's accounts
        every = account_ids(scenario.workload.accounts, scenario.dns.account_endpoints)
        accounts += every[::max(1, len(every) // 200)]
    for account in accounts:
        lines += [f"{account}.{ACCOUNT_ZONE} A"] * 2
    lines += [f"missing-{i}.{scenario.endpoints[i % len(scenario.endpoints)].name} A" for i in range(3)]  # NXDOMAIN
    return lines


def dnsperf(port: int, query_file: Path, seconds: int) -> dict[str, float | str]:
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(query_file), "-l", str(seconds), *DNSPERF_ARGS]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout

    def grab(label: str) -> float:
        m = re.search(rf"{label}:\s+([\d.]+)", out)
        return float(m.group(1)) if m else float("nan")
    return {"command": " ".join(cmd), "sent": grab("Queries sent"), "completed": grab("Queries completed"),
            "lost": grab("Queries lost"), "qps": grab("Queries per second"),
            "latency": grab("Average Latency \\(s\\)"), "raw": out}


def zone_files(auth: AuthorityProcess, scenario, directory: Path) -> list[tuple[str, Path]]:
    """The authority's current answers as NSD zone files: for every owner name and type, the records
    the authority answers with (for weighted sets, the first LB: one address, as the authority answers)."""
    zones = ZoneSet()
    for origin in [ep.zone for ep in scenario.endpoints] + [ACCOUNT_ZONE]:
        snap = snapshot_from_wire(origin, auth.list(origin))
        zones.add(HostedZone(origin, snap.records.values(), snap.version))
    out = []
    for origin, zone in zones.zones.items():
        snap = zone.snapshot
        lines = [f"$ORIGIN {origin}.", ""]
        for name in sorted({n for n, _, _ in snap.records}):
            for rtype in (RRType.SOA, RRType.NS, RRType.TXT, RRType.CNAME, RRType.A, RRType.AAAA):
                if not snap.rrsets(name, rtype) and name != "*." + origin:
                    continue
                if name.startswith("*.") and rtype is not RRType.CNAME:
                    continue
                response = resolve(zones, name, rtype).choices[0][1]
                for rr in response.answer:
                    if rr.name != name:
                        continue  # chased CNAME targets live in their own zone file
                    value = rr.value
                    if rr.rtype is RRType.TXT:
                        value = '"' + value + '"'
                    elif rr.rtype in (RRType.CNAME, RRType.NS):
                        value = value.rstrip(".") + "."
                    elif rr.rtype is RRType.SOA:
                        m, r, *nums = value.split()
                        value = f"{m}. {r}. {' '.join(nums)}"
                    lines.append(f"{name}. {rr.ttl} IN {rr.rtype.value} {value}")
        path = directory / f"{origin}.zone"
        path.write_text("\n".join(lines) + "\n")
        out.append((origin, path))
    return out


def start_nsd(directory: Path, port: int, zones: list[tuple[str, Path]]) -> subprocess.Popen:
    conf = directory / "nsd.conf"
    conf.write_text(f"""server:
    ip-address: 127.0.0.1@{port}
    port: {port}
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{directory}"
    database: ""
    zonelistfile: "{directory}/zone.list"
    xfrdfile: "{directory}/xfrd.state"
    xfrdir: "{directory}"
    pidfile: "{directory}/nsd.pid"
    logfile: "{directory}/nsd.log"
    verbosity: 0
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
    hide-version: yes
remote-control:
    control-enable: no
""" + "".join(f'zone:\n    name: "{origin}"\n    zonefile: "{path}"\n' for origin, path in zones))
    check = subprocess.run(["nsd-checkconf", str(conf)], capture_output=True, text=True)
    if check.returncode:
        raise RuntimeError(f"nsd-checkconf: {check.stderr or check.stdout}")
    proc = subprocess.Popen(["nsd", "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    time.sleep(1.0)
    if proc.poll() is not None:
        raise RuntimeError(f"nsd exited: {(directory / 'nsd.log').read_text() if (directory / 'nsd.log').exists() else ''}")
    return proc


def rss_kib(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
    return rss, hwm


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--write", type=Path, help="write the results as Markdown here")
    ap.add_argument("--scenario", default="oct-2025", help="the scenario whose zones the authority holds")
    args = ap.parse_args()
    for tool in ("dnsperf", "nsd"):
        if not shutil.which(tool):
            print(f"{tool} not found: apt-get install -y dnsperf nsd", file=sys.stderr)
            return 2
    scenario = load_scenario(args.scenario)
    tmp = Path(tempfile.mkdtemp(prefix="bench-dns-"))
    query_file = tmp / "queries.txt"
    query_file.write_text("\n".join(query_lines(scenario)) + "\n")
    auth = AuthorityProcess(tmp / "state", env={"RACELAB_LOG_LEVEL": "WARNING",
                                                "RACELAB_SCENARIO": args.scenario}).start(timeout=300)
    nsd = None
    try:
        planner = fleet_planner(scenario.endpoints)
        previous = None
        for _ in range(3):  # some history in every zone, as after a few enactor runs
            plan = planner.next_plan(0.0)
            install_plan(auth, plan, previous)
            previous = plan
        rss_before = rss_kib(auth.proc.pid)
        print(f"authority pid {auth.proc.pid} DNS on 127.0.0.1:{auth.dns_port}; {rss_before[0]} KiB RSS", flush=True)
        ours = dnsperf(auth.dns_port, query_file, args.seconds)
        rss_after = rss_kib(auth.proc.pid)
        print(f"authority: {ours['qps']:.0f} q/s, lost {ours['lost']:.0f}", flush=True)
        nsd_dir = tmp / "nsd"
        nsd_dir.mkdir()
        nsd_port = free_port()
        nsd = start_nsd(nsd_dir, nsd_port, zone_files(auth, scenario, nsd_dir))
        theirs = dnsperf(nsd_port, query_file, args.seconds)
        print(f"nsd: {theirs['qps']:.0f} q/s, lost {theirs['lost']:.0f}", flush=True)
    finally:
        auth.stop()
        if nsd is not None:
            nsd.terminate()
            nsd.wait(10)
    ratio = ours["qps"] / theirs["qps"] if theirs["qps"] else float("nan")
    print(f"ratio authority/nsd = {ratio:.2f}; authority RSS {rss_after[0]} KiB (peak {rss_after[1]} KiB)")
    if args.write:
        nsd_version = subprocess.run(["nsd", "-v"], capture_output=True, text=True)
        nsd_version = (nsd_version.stdout or nsd_version.stderr).splitlines()[0]
        dnsperf_version = subprocess.run(["dnsperf", "-h"], capture_output=True, text=True)
        dnsperf_version = next((line for line in (dnsperf_version.stdout + dnsperf_version.stderr).splitlines()
                                if "DNS Performance" in line or "dnsperf" in line.lower()), "dnsperf")
        args.write.write_text(report(ours, theirs, ratio, rss_before, rss_after, query_lines(scenario),
                                     args.seconds, nsd_version, dnsperf_version))
        print(f"wrote {args.write}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def report(ours, theirs, ratio, rss_before, rss_after, lines, seconds, nsd_version, dnsperf_version) -> str:
    def row(name, r):
        return (f"| {name} | {r['qps']:,.0f} | {r['sent']:,.0f} | {r['completed']:,.0f} | {r['lost']:,.0f} | "
                f"{r['latency'] * 1000:.2f} |")
    return f"""# DNS throughput: racelab authority vs NSD

Measured {time.strftime('%Y-%m-%d %H:%M %Z')} on this machine ({os.cpu_count()} cores, shared with other
work: dnsperf, the server and anything else running compete for the same cores; treat the numbers as
orders of magnitude, the ratio as the result).

Command: `PYTHONPATH=. /tmp/probe-venv/bin/python bench/bench_dns.py --seconds {seconds} --write bench/RESULTS-dns.md`

| server | queries/s | sent | completed | lost | avg latency (ms) |
| --- | ---: | ---: | ---: | ---: | ---: |
{row("racelab authority (python -m services.authority, 1 process)", ours)}
{row("NSD (server-count 1, RRL off)", theirs)}

**Ratio authority / NSD: {ratio:.2f}.**
Authority RSS: {rss_before[0]:,} KiB before the run, {rss_after[0]:,} KiB after (peak {rss_after[1]:,} KiB).

## Setup

- Authority: fresh state dir; three plans of 6 LBs installed and activated on all 5 endpoints through
  the control API (trees of 3 generations in every zone, weighted sets answering one LB at random).
- NSD: {nsd_version}; zone files with the same names and TTLs, generated from the authority's records
  (`resolve()` per name and type; a weighted set becomes its first LB's address, so both answer with
  one address), `server-count: 1`, `rrl-ratelimit: 0`, on another loopback port.
- dnsperf: {dnsperf_version.strip()}; both runs used the same query file and options:
  `{ours['command']}` (then the same against NSD's port).
- Query file ({len(lines)} lines, cycled): every endpoint A (x4), the dual-stack endpoint AAAA (x4), AAAA on
  IPv4-only endpoints (NODATA), the account name (CNAME chased to the legacy name), 3 NXDOMAIN names.

```
{chr(10).join(lines)}
```

## dnsperf output, authority

```
{ours['raw'].strip()}
```

## dnsperf output, NSD

```
{theirs['raw'].strip()}
```
"""


if __name__ == "__main__":
    sys.exit(main())
