"""`racelab run`: start the replica, run a scenario, watch it, write the run directory.

The run directory holds: scenario.yaml (what ran), traces.jsonl (every span, in
the Collector's file-exporter format), metrics.jsonl (every racelab_* sample,
scraped each half second), events.jsonl (the director's event log, under
state/director), logs/, summary.json and report.html.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from rich.console import Console
from rich.live import Live
from rich.markup import escape

from racelab.v1 import director_pb2, director_pb2_grpc
from services.core.invariants import Emptying
from services.core.plans import LEGACY_ENDPOINT
from services.lab.live.chaos import Kill, run_chaos
from services.lab.report.fidelity import WhatIfJobs, operator_times
from services.lab.live.otlpsink import FORWARD_TIMEOUT_SECONDS, start_sink
from services.lab.live.prometheus import INSTALL_HINT, PrometheusError, RunPrometheus, binary
from services.lab.live.scrape import Series, scrape
from services.lab.live.supervisor import ProcessFailed, Supervisor
from services.lab.live.topology import ProcessSpec, Topology, local_topology
from services.lab.live.view import Event, ViewState, render
from services.runtime.auth import bearer_interceptors, read_token
from services.runtime.clock import SimClock
from services.runtime.credentials import write_credentials
from services.runtime.scenario import Scenario
from services.runtime.service import ConfigError, check_port_free

# The what-if table runs the race twin (3 schedules per race fix) and the cascade twin in a
# background process from the repair on; on 2 loaded cores it can outlast the run by a minute or two.
WHAT_IF_TIMEOUT = 600.0  # wall seconds after the run


@dataclass
class RunOptions:
    scenario: Scenario
    out: Path
    base_port: int = 17000
    interactive: bool = True
    scenario_text: str = ""
    chaos: tuple[Kill, ...] = ()  # processes to kill -9 and restart mid-run
    what_if: bool = True
    prometheus: bool = True


def lowest_priority() -> None:
    """Nice 19 that holds against the replica's processes (for the what-if workers). Each process of the
    replica runs in its own session, and with the kernel's autogroups (sched_autogroup_enabled, the default
    on most distributions) CPU is shared between sessions first: a nice value only ranks processes within
    one session, so a nice-19 worker in the command's session still took a whole session's share from the
    authority. The worker leaves that session and sets its own session's autogroup to nice 19. Where the
    kernel has it, the worker is also SCHED_IDLE: it runs only on a core nothing else wants, and a
    replica's process that wakes takes that core from it at once."""
    os.nice(19)
    if hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError:
            pass  # not allowed here (a seccomp profile): nice 19 and the autogroup still hold
    try:
        os.setsid()
        fd = os.open("/proc/self/autogroup", os.O_WRONLY)
    except OSError:
        return  # no autogroups (not Linux, or built without them): the plain nice value is all there is
    try:
        for _ in range(10):
            try:
                os.write(fd, b"19")
                return
            except BlockingIOError:  # unprivileged writes are rate-limited machine-wide
                time.sleep(0.1)
    except OSError:
        pass
    finally:
        os.close(fd)


async def run(opts: RunOptions, console: Console) -> dict:
    scenario = opts.scenario
    # Absolute from here on: Prometheus resolves a relative path in its config against the config
    # file's folder, and the processes, the report and the printed commands must not depend on
    # where the user stands.
    run_dir = opts.out.absolute()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "scenario.yaml").write_text(opts.scenario_text)
    topology = local_topology(opts.base_port)
    began = time.time()
    # Simulated time starts once every process is up: a few seconds from now.
    wall_start = began + 4.0
    common = {"RACELAB_SCENARIO": str(run_dir / "scenario.yaml"), "RACELAB_WALL_START": f"{wall_start:.3f}",
              "RACELAB_SEED": str(scenario.seed), "RACELAB_FIXES": ",".join(sorted(f.value for f in scenario.fixes)),
              "RACELAB_OTLP_ENDPOINT": topology.otlp, "PYTHONUNBUFFERED": "1"}
    clock = SimClock(scenario.schedule, scenario.epoch, wall_start)
    sink_server, sink = await start_sink(topology.otlp, run_dir / "traces.jsonl")
    credentials = write_credentials(run_dir / "credentials", scenario)
    supervisor = Supervisor(topology, run_dir, common, credentials)
    series = Series(run_dir / "metrics.jsonl")
    fixes = ", ".join(sorted(f.value for f in scenario.fixes)) or "none (as in October 2025)"
    state = ViewState(f"{scenario.name} · seed {scenario.seed} · fixes: {fixes}",
                      endpoints=tuple(e.name for e in scenario.endpoints))
    failure: ProcessFailed | None = None
    ready: dict[str, float] = {}
    rss: dict[str, int] = {}
    events_task = chaos_task = None
    # The what-if table comes from the twins, in worker processes at the lowest priority (SCHED_IDLE): the
    # race-fix rows once the schedule's slow part (the race) is over, the rows that take this run's outage
    # once the operators' repair has settled. Not before: the race leaves a core about half idle, but with
    # workers on it the enactors' calls were slower and the live cascade came out further from 2025 in
    # every run tried (bench/RESULTS-fidelity.md, tenth session). Started only when the run goes that far,
    # so a short run never waits for them at exit.
    race_over, outage_known = scenario.schedule.points[1][1], repair_settled(scenario)
    executor = jobs = None
    if opts.what_if and scenario.end >= outage_known:
        executor = concurrent.futures.ProcessPoolExecutor(max_workers=os.cpu_count() or 1,
                                                          initializer=lowest_priority)
        jobs = WhatIfJobs(scenario, executor.submit)
    prometheus = None
    # SIGTERM or Ctrl-C end the run early but cleanly: processes stopped, summary and report written.
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop_requested.set)
    try:
        console.print(f"[dim]run directory: {escape(str(run_dir))}[/dim]")
        prometheus = _start_prometheus(opts, run_dir, topology, console)
        ready = await supervisor.start_all(hold=("dwfm", "workload"))
        # DynamoDB's clients (DWFM's hosts and the workload) start once the regional name answers: one
        # started earlier would cache NODATA for the SOA's 15 minutes before the race even began.
        await _wait_for_addresses(topology, supervisor, LEGACY_ENDPOINT)
        ready["dwfm"] = await supervisor.start_one("dwfm")
        ready["workload"] = await supervisor.start_one("workload")
        console.print(f"[dim]{len(ready)} processes ready in {max(ready.values()):.1f}s; "
                      f"DNS on {topology.dns} (dig @{topology.dns.split(':')[0]} -p {topology.dns.split(':')[1]} "
                      f"{LEGACY_ENDPOINT} A)[/dim]")
        if prometheus:
            console.print(f"[dim]Prometheus: {prometheus.url} (alerts: {prometheus.url}/alerts); Grafana: "
                          f"grafana/provisioning with RACELAB_PROMETHEUS_URL={prometheus.url}[/dim]")
        events_task = asyncio.ensure_future(_follow_events(topology, clock, state, console, opts.interactive,
                                                           read_token(credentials / "lab.token")))
        def start_what_if(now: float) -> None:
            if jobs is None or now < race_over:
                return
            jobs.start_race_rows()
            jobs.poll()
            if now >= outage_known and not jobs.started:  # the director's log is read once
                jobs.start_outage_rows(_empty_windows(series, LEGACY_ENDPOINT, read_events(
                    run_dir / "state" / "director" / "events.jsonl")))
        if opts.chaos:
            chaos_task = asyncio.ensure_future(run_chaos(list(opts.chaos), supervisor, clock, console.print))
        await _watch(opts, topology, supervisor, series, state, clock, console, stop_requested,
                     chaos_task, on_tick=start_what_if)
        rss = supervisor.rss_bytes()
    except ProcessFailed as exc:
        failure = exc
        console.print(f"[bold red]{exc.instance} died (exit code {exc.code}); stopping the run.[/bold red]\n"
                      f"{escape(exc.log_tail)}")
    finally:
        ended = time.time()
        for task in (events_task, chaos_task):
            if task and not task.done():
                task.cancel()
        # In a thread: the OTLP sink serves on this event loop, and processes flush their last spans
        # to it as they stop. Waiting for them here blocked the loop: every process's final export
        # timed out (10 s) and its last spans were lost.
        await asyncio.to_thread(supervisor.stop_all)
        # A forward receiver (RACELAB_OTLP_FORWARD) gets as long as one forward may take for the last exports.
        await sink_server.stop(grace=FORWARD_TIMEOUT_SECONDS + 1.0 if sink.forwarding else 1.0)
        sink.close()
        if prometheus:
            await asyncio.to_thread(prometheus.finish, run_dir, topology, clock, ended, console)
    # The replica's wall time: from the command's start until every process has stopped.
    summary = build_summary(scenario, series, run_dir, wall_seconds=time.time() - began, wall_start=wall_start,
                            ready=ready, rss=rss,
                            failure=failure, spans=sink.spans)
    if sink.forwarding:
        summary["spans_not_forwarded"] = sink.spans_not_forwarded
        if sink.spans_not_forwarded:
            console.print(f"[yellow]{sink.spans_not_forwarded} of {sink.spans} spans did not reach "
                          f"RACELAB_OTLP_FORWARD (its receiver was down, slow or stopping)[/yellow]")
    if opts.chaos:
        summary["chaos"] = chaos_task.result() if chaos_task and chaos_task.done() and not chaos_task.cancelled() \
            and not chaos_task.exception() else "not completed"
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    def what_if_rows() -> list | None:
        """The what-if table, waited for only once the rest of the report is drawn (in parallel with it)."""
        if jobs is None or not jobs.started:  # the run stopped before the repair: no outage to compare
            return None
        try:
            console.print("[dim]finishing the what-if table (the race twin and the cascade twin)...[/dim]")
            return jobs.rows(timeout=WHAT_IF_TIMEOUT)
        except Exception as exc:  # the table is extra; the run's own outcome stands
            console.print(f"[red]what-if table failed: {escape(str(exc))}[/red]")
            return None

    try:
        from services.lab.report.page import write_report
        await asyncio.to_thread(write_report, run_dir, scenario, series, summary, wall_start, what_if_rows)
    except Exception as exc:  # the report must never hide the run's own outcome
        console.print(f"[red]report failed: {escape(str(exc))}[/red]")
    finally:
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
    return summary


def repair_settled(scenario: Scenario) -> float:
    """When this run's outage is known: half an hour after the operators' last DNS repair (a name
    emptied again after it would show by then)."""
    return max((o.at for o in scenario.operators if o.action == "restore-dns"), default=0.0) + 1800


def _start_prometheus(opts: RunOptions, run_dir: Path, topology: Topology, console: Console) -> RunPrometheus | None:
    if not opts.prometheus:
        return None
    if binary() is None:
        console.print(f"[yellow]Prometheus not installed; running without it ({INSTALL_HINT}).[/yellow]")
        return None
    try:
        return RunPrometheus.start(run_dir, topology)
    except PrometheusError as exc:
        console.print(f"[yellow]Prometheus did not start; running without it: {escape(str(exc))}[/yellow]")
        return None


async def _watch(opts: RunOptions, topology: Topology, supervisor: Supervisor, series: Series,
                 state: ViewState, clock: SimClock, console: Console, stop_requested: asyncio.Event,
                 chaos_task: asyncio.Future | None = None, on_tick=lambda now: None) -> None:
    live = Live(render(state, series), console=console, refresh_per_second=4, transient=False) \
        if opts.interactive else None
    last_line = 0.0
    try:
        if live:
            live.start()
        while clock.now() < opts.scenario.end and not stop_requested.is_set():
            supervisor.check()
            if chaos_task is not None and chaos_task.done() and chaos_task.exception():
                raise chaos_task.exception()  # a process that did not come back
            on_tick(clock.now())
            # Every process at once: one after another, a round took seconds of wall time under
            # load, half an hour of simulated time in the fast hours.
            await asyncio.gather(*(_scrape_into(series, clock, spec) for spec in topology.processes))
            state.pdt, state.speed = clock.pdt(), clock.schedule.rate_at(time.time() - clock.wall_start)
            phase = [dict(ls).get("phase", "") for ls, v in series.values("racelab_phase_info").items() if v == 1]
            state.phase = phase[0] if phase else state.phase
            if live:
                live.update(render(state, series))
            elif time.monotonic() - last_line > 5:
                last_line = time.monotonic()
                console.print(_status_line(state, series), markup=False, highlight=False)
            await asyncio.sleep(0.5)
    finally:
        if live:
            live.stop()


async def _scrape_into(series: Series, clock: SimClock, spec: ProcessSpec) -> None:
    try:
        samples = await asyncio.to_thread(scrape, f"http://{spec.metrics}/metrics")
    except OSError:
        return
    # Stamped when the reply is in, not when the round began, so that a sample never looks older
    # than the state it shows (the tests compare samples with the operators' actions).
    series.add(clock.now(), spec.instance, samples)


async def _wait_for_addresses(topology: Topology, supervisor: Supervisor, endpoint: str,
                              timeout: float = 30.0) -> None:
    metrics = topology.spec("authority").metrics
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        supervisor.check()
        try:
            samples = await asyncio.to_thread(scrape, f"http://{metrics}/metrics")
        except OSError:
            samples = {}
        if samples.get(("racelab_authority_endpoint_addresses", (("endpoint", endpoint), ("qtype", "A"))), 0) > 0:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{endpoint} had no address {timeout:.0f}s after start: the enactors never installed a plan")


def _status_line(state: ViewState, series: Series) -> str:
    gen = series.value("racelab_authority_endpoint_generation", endpoint=LEGACY_ENDPOINT)
    addrs = series.value("racelab_authority_endpoint_addresses", endpoint=LEGACY_ENDPOINT, qtype="A")
    ratios = {dict(ls).get("client"): v for ls, v in series.values("racelab_client_success_ratio").items()}
    clients = " ".join(f"{k}={v:.0%}" for k, v in sorted(ratios.items()))
    num = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
    return (f"{state.pdt}  [in 2025: {state.phase}]  regional name: generation {num(gen)}, {num(addrs)} addresses"
            f"  clients {clients}")


async def _follow_events(topology: Topology, clock: SimClock, state: ViewState, console: Console,
                         interactive: bool, token: str) -> None:
    while True:
        try:
            async with grpc.aio.insecure_channel(topology.director, interceptors=bearer_interceptors(token)) as ch:
                stream = director_pb2_grpc.DirectorStub(ch).WatchEvents(director_pb2.WatchEventsRequest())
                async for ev in stream:
                    event = Event(clock.pdt(ev.sim_time_seconds), ev.source, ev.kind, ev.message)
                    state.events.append(event)
                    if not interactive:
                        console.print(f"{event.pdt}  {event.source:<12} {event.message}", markup=False,
                                      highlight=False)
        except grpc.RpcError:
            await asyncio.sleep(0.5)


def build_summary(scenario: Scenario, series: Series, run_dir: Path, *, wall_seconds: float, wall_start: float,
                  ready: dict[str, float], rss: dict[str, int], failure: ProcessFailed | None,
                  spans: int) -> dict:
    clock = SimClock(scenario.schedule, scenario.epoch, 0.0)
    violations = {dict(ls).get("violation"): v for ls, v in
                  series.values("racelab_invariant_violations_total").items()}
    events = read_events(run_dir / "state" / "director" / "events.jsonl")
    windows = _empty_windows(series, LEGACY_ENDPOINT, events)
    last_sample = max((points[-1][0] for points in series.points.values() if points), default=0.0)
    clock_pdt_end = clock.pdt(last_sample)
    stale = series.total("racelab_enactor_stale_flips_total") > 0 or violations.get("generation-went-back", 0) > 0
    rejected_while_empty = series.total("racelab_enactor_endpoints_abandoned_total", endpoint=LEGACY_ENDPOINT)
    return {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "fixes": sorted(f.value for f in scenario.fixes) or [],
        "stale_apply": bool(stale),
        "endpoint_emptied": bool(windows) or violations.get("endpoint-empty", 0) > 0,  # any endpoint
        "regional_name_emptied": bool(windows),  # the incident's: the legacy regional name
        "emptied_endpoints": _emptied_endpoints(events),
        "emptyings": emptyings(events, clock),
        "active_tree_deleted": violations.get("active-tree-deleted", 0) > 0,
        "enactors_stuck": bool(windows) and rejected_while_empty > 0,
        "invariant_violations": violations,
        "empty_windows": [{"endpoint": LEGACY_ENDPOINT, "from_pdt": clock.pdt(a),
                           "until_pdt": clock.pdt(b) if b is not None else None, "from_sim": a, "until_sim": b,
                           "sim_seconds": (b - a) if b is not None else None} for a, b in windows],
        "operator_times": operator_times(events),
        "ended_at_pdt": clock_pdt_end,
        "wall_seconds": round(wall_seconds, 1),
        "wall_start": wall_start,
        "startup_seconds": round(max(ready.values()), 2) if ready else None,
        "memory_rss_bytes": sum(rss.values()) if rss else None,
        "memory_rss_bytes_by_process": dict(sorted(rss.items())),
        "spans": spans,
        "failed_process": failure.instance if failure else None,
        "run_dir": str(run_dir),
    }


Events = list[tuple[float, str, dict]]  # (simulated time, kind, attributes) from the director's event log


def read_events(path: Path) -> Events:
    events: Events = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            events.append((float(ev.get("sim_time_seconds", 0.0)), ev.get("kind", ""), ev.get("attributes", {})))
    return events


def _emptied_endpoints(events: Events) -> list[str]:
    """Every endpoint the authority saw answer empty (the race may empty a name other than the regional one)."""
    return sorted({a.get("endpoint", "?") for _, kind, a in events
                   if kind == "authority.violation" and a.get("violation") == "endpoint-empty"})


def emptyings(events: Events, clock: SimClock) -> list[dict]:
    """Each clean-up that deleted an endpoint's active tree, with the stale flip that made it active
    (core Emptying, as the race twin records them), for summary.json."""
    last_stale: dict[str, tuple[float, int, int]] = {}
    found = []
    for at, kind, a in sorted(events, key=lambda e: e[0]):
        endpoint = a.get("endpoint", "")
        if kind == "enactor.flip" and a.get("stale") == "true":
            last_stale[endpoint] = (at, int(a["generation"]), int(a["replaced_generation"] or 0))
        elif kind == "enactor.cleanup" and a.get("deleted_active") == "true":
            flip_at, stale, over = last_stale.get(endpoint, (None, None, None))
            e = Emptying(endpoint, at, stale, over, flip_at, int(a.get("generation", 0)))
            found.append({
                "endpoint": e.endpoint, "at_pdt": clock.pdt(e.at), "at_sim": e.at,
                "stale_generation": e.stale_generation, "over_generation": e.over_generation, "behind": e.behind,
                "stale_flip_at_pdt": clock.pdt(e.stale_flip_at) if e.stale_flip_at is not None else None,
                "cleaner_generation": e.cleaner_generation})
    return found


def empty_windows(series: Series, endpoint: str, events: Path | None = None) -> list[tuple[float, float | None]]:
    """Simulated intervals during which the endpoint could answer no A address.

    The authority's own events say exactly when (the simulated time of the batch); scrapes every
    half second are the fallback, coarse when simulated time runs hundreds of times faster."""
    return _empty_windows(series, endpoint, read_events(events) if events is not None else [])


def _empty_windows(series: Series, endpoint: str, events: Events) -> list[tuple[float, float | None]]:
    windows = windows_from_events(events, endpoint)
    if windows:
        return windows
    points = next(iter(series.history("racelab_authority_endpoint_addresses", endpoint=endpoint,
                                      qtype="A").values()), [])
    start = None
    seen_nonzero = False
    for sim, value in points:
        if value > 0:
            seen_nonzero = True
            if start is not None:
                windows.append((start, sim))
                start = None
        elif seen_nonzero and start is None:
            start = sim
    if start is not None:
        windows.append((start, None))
    return windows


def windows_from_events(events: Events, endpoint: str) -> list[tuple[float, float | None]]:
    windows: list[tuple[float, float | None]] = []
    start = None
    for at, kind, attrs in events:
        if attrs.get("endpoint") != endpoint:
            continue
        if kind == "authority.violation" and attrs.get("violation") == "endpoint-empty" and start is None:
            start = at
        elif start is not None and (kind == "operator.action" and attrs.get("result") == "restored"
                                    or kind == "enactor.flip"):
            windows.append((start, at))
            start = None
    if start is not None:
        windows.append((start, None))
    return windows


def default_out(scenario: Scenario) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{scenario.name}-seed{scenario.seed}"


def ensure_ports_free(topology: Topology) -> None:
    for spec in topology.processes:
        for addr in filter(None, (spec.grpc, spec.metrics)):
            try:
                check_port_free(addr, spec.instance)
            except ConfigError as exc:
                raise OSError(f"{exc}; pick another --base-port") from None
