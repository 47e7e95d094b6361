"""`racelab assert SPEC... [--traces FILE [--follow] | --live HOST:PORT]`: exit 0 when every check holds, 1 if any fails.

Sources:
- `--traces FILE`: an OTLP/JSON lines file (a run's traces.jsonl, a Collector file exporter's output), or a run
  directory. `--follow` keeps reading what is appended (a run still going) until it stops.
- `--live HOST:PORT`: an OTLP/gRPC receiver on that address. Point a Collector's otlp exporter at it, or a local
  run's sink (RACELAB_OTLP_FORWARD=HOST:PORT racelab run ...), or the processes themselves.

Following or live, checks are evaluated every few seconds; a check that fails is reported at once ("so far"),
and the full report comes when the source stops: --duration, --idle (no new spans for that long), Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path

from services.lab.assertions.checks import Status
from services.lab.assertions.clock import RunClock
from services.lab.assertions.report import Report, render_json, render_text, run_specs
from services.lab.assertions.selector import SpecError
from services.lab.assertions.spans import Span, SpanSet, TraceError, TraceFile, read_traces, spans_from_otlp
from services.lab.assertions.spec import Spec, builtin_packs, load_spec
from services.runtime.telemetry import split_hostport


class AssertError(Exception):
    """Bad input for `racelab assert`: one line, exit code 2."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("assert", help="check what the traces of a run show (trace-based assertions)",
                       description="Evaluate trace assertion specs (YAML files, or built-in packs: "
                       f"{', '.join(builtin_packs())}) over the spans of a run. Exit 0 when every check holds, "
                       "1 when any fails, 2 on bad input. A check SKIPs when the traces hold nothing it "
                       "could judge.")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="a YAML spec file or a built-in pack name")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--traces", type=Path, metavar="FILE",
                        help="OTLP/JSON lines file (a run's traces.jsonl, a Collector file exporter's) or a run "
                        "directory")
    source.add_argument("--live", metavar="HOST:PORT",
                        help="receive spans over OTLP/gRPC on this address (a Collector's otlp exporter, or a "
                        "run started with RACELAB_OTLP_FORWARD=HOST:PORT)")
    p.add_argument("--follow", action="store_true", help="with --traces FILE: keep reading what is appended")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="following or live: stop after this long")
    p.add_argument("--idle", type=float, metavar="SECONDS",
                   help="following or live: stop once no new span has come for this long (after the first)")
    p.add_argument("--interval", type=float, default=5.0, metavar="SECONDS",
                   help="following or live: evaluate this often (default 5)")
    p.add_argument("--run-dir", type=Path, metavar="DIR",
                   help="the run directory, for simulated PDT times (default: the directory of --traces)")
    p.add_argument("--check", action="append", default=[], metavar="NAME", help="only this check (repeatable)")
    p.add_argument("--max-spans", type=int, default=3, metavar="N", help="spans shown per failed check (default 3)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    try:
        specs = [load_spec(s) for s in args.specs]
        _check_names(specs, args.check)
        if args.follow and args.traces is None:
            raise AssertError("--follow reads a file: use it with --traces")
        traces = _traces_file(args.traces) if args.traces is not None else None
        run_dir = args.run_dir or (traces.parent if traces is not None else None)
        if traces is not None and not args.follow:
            return _finish(args, specs, read_traces(traces), run_dir)
        spans = asyncio.run(_watch(args, specs, traces, run_dir))
        return _finish(args, specs, spans, run_dir)
    except (SpecError, TraceError, AssertError, OSError) as exc:
        print(f"racelab assert: error: {exc}", file=sys.stderr)
        return 2


def _check_names(specs: list[Spec], wanted: list[str]) -> None:
    known = {c.name for s in specs for c in s.checks}
    for name in wanted:
        if name not in known:
            raise AssertError(f"no check named {name!r} in {', '.join(s.name for s in specs)}")


def _traces_file(path: Path) -> Path:
    if path.is_dir():
        path = path / "traces.jsonl"
    if not path.is_file():
        raise AssertError(f"{path}: no such file")
    return path


def _clock(run_dir: Path | None) -> RunClock | None:
    return RunClock.for_run(run_dir) if run_dir is not None else None


def _finish(args: argparse.Namespace, specs: list[Spec], spans: SpanSet, run_dir: Path | None) -> int:
    if not spans:  # nothing checked is not a pass
        raise AssertError(f"no spans {'received on ' + args.live if args.live else 'in ' + str(args.traces)}")
    report = run_specs(specs, spans, _clock(run_dir), args.check)
    if args.json:
        print(json.dumps(render_json(report), indent=2))
    else:
        print(render_text(report, args.max_spans), end="")
    return 0 if report.ok else 1


async def _watch(args: argparse.Namespace, specs: list[Spec], traces: Path | None, run_dir: Path | None) -> SpanSet:
    """Collect spans from a growing file or a receiver until told to stop; report failures as they appear."""
    received: list[Span] = []
    last_span = [0.0]

    def take(spans: list[Span]) -> None:
        if spans:
            received.extend(spans)
            last_span[0] = time.monotonic()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = None
    if args.live:
        from services.lab.live.otlpsink import start_sink
        try:
            split_hostport(args.live)
        except ValueError as exc:
            raise AssertError(f"--live: {exc}") from None
        try:
            server, _ = await start_sink(args.live, None, lambda data: take(list(spans_from_otlp(data))), forward=())
        except (OSError, RuntimeError) as exc:
            raise AssertError(f"cannot receive OTLP on {args.live}: {exc}") from None
        _say(args, f"receiving OTLP/gRPC on {args.live}")
    source = TraceFile(traces) if traces is not None else None

    def poll() -> None:  # a receiver's spans arrive through the server; a file's are read here
        if source is not None:
            for batch in source.read_new():
                take(batch)
    started = time.monotonic()
    reported: set[str] = set()
    next_eval = started
    try:
        while not stop.is_set():
            poll()
            now = time.monotonic()
            if args.duration is not None and now - started >= args.duration:
                break
            if args.idle is not None and last_span[0] and now - last_span[0] >= args.idle:
                break
            if now >= next_eval and received:
                # In a thread, so the receiver keeps taking exports; never more than a third of the
                # time, so watching a run on a small machine does not starve the run itself.
                snapshot = list(received)
                report = await asyncio.to_thread(
                    lambda: run_specs(specs, SpanSet(snapshot), _clock(run_dir), args.check))
                _early_failures(args, report, reported)
                took = time.monotonic() - now
                next_eval = time.monotonic() + max(args.interval, 2 * took)
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
        poll()
    finally:
        if server is not None:
            await server.stop(grace=1.0)
        if source is not None:
            source.close()
    return SpanSet(received)


def _early_failures(args: argparse.Namespace, report: Report, reported: set[str]) -> None:
    for o in report.outcomes:
        if o.status is Status.FAIL and o.check.name not in reported:
            reported.add(o.check.name)
            first = o.findings[0].message if o.findings else o.reason
            _say(args, f"FAIL so far  {o.check.name}: {first}")


def _say(args: argparse.Namespace, text: str) -> None:
    # Progress goes to stderr when the report is JSON, so stdout stays one JSON document.
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr if args.json else sys.stdout, flush=True)
