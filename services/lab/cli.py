"""The `racelab` command."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from services.core.fixes import RACE_FIXES, Fix, UnknownFix, parse_fixes
from services.core.plans import LEGACY_ENDPOINT
from services.lab.twin import explore
from services.lab.live import follow
from services.lab.assertions import command as assert_command
from services.lab.twin.sim import WorldConfig, run_schedule, with_overrides
from services.runtime.service import OneLineParser


class CliError(Exception):
    """A usage or configuration error: one clear line, exit code 2."""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (CliError, UnknownFix) as exc:
        print(f"racelab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="racelab", description="A live replica of the us-east-1 "
                                     "DynamoDB DNS race of October 2025.")
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("explore", help="search schedules of planner, enactors and zones for invariant violations",
                        description="Drive the core Planner, three Enactors and the zones under a deterministic "
                        "scheduler, one schedule per seed, and check: applied generation never goes back, the "
                        "active tree is never deleted, no endpoint resolves empty, the automation keeps making "
                        "progress. Exit 1 if any schedule violates one, 0 if none does.")
    ex.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    ex.add_argument("--schedules", type=_positive, default=20000, help="schedules to try at most (default 20000)")
    ex.add_argument("--fix", action="append", default=[], metavar="NAME",
                    help=f"turn a fix on (repeatable): {', '.join(f.value for f in Fix)}, or all")
    ex.add_argument("--until", choices=["first", "all", "none"], default="all",
                    help="stop at the first violation, once all four kinds are seen (default), or never")
    ex.add_argument("--matrix", action="store_true",
                    help="run every fix alone, none and all over the same seeds and tabulate what each blocks")
    ex.add_argument("--workers", type=_positive, default=explore.default_workers(),
                    help="processes (default: the cores available)")
    ex.add_argument("--full", action="store_true", help="print every event of the schedule, not just the story")
    ex.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    ex.add_argument("--scenario", metavar="NAME",
                    help="explore a scenario's night instead of the small default world: its endpoints, fleet, "
                    "enactor settings and conditions, through the operators' 02:25 repair and half an hour after "
                    "(a re-race after the repair is emptied-after-repair); slow: seconds per schedule")
    ex.add_argument("--plans", type=_positive, help="plans the planner publishes per schedule (default 6)")
    ex.add_argument("--threshold", type=_positive,
                    help="clean-up deletes trees this many generations older than the applied plan (default 2)")
    ex.add_argument("--stall-probability", type=_probability,
                    help="chance that one enactor is stalled for a while in a schedule (default 0.5)")
    ex.set_defaults(func=_explore)

    run = sub.add_parser("run", help="run the live replica on a scenario and watch it",
                         description="Start every process of the replica on loopback (authority, planner, three "
                         "enactors, the DynamoDB LB fleet, clients, director) plus an OTLP sink, run the scenario "
                         "and show it live; write traces, metrics, summary.json and report.html to the run "
                         "directory.")
    run.add_argument("--scenario", default="oct-2025", help="built-in name or YAML path (default oct-2025)")
    run.add_argument("--seed", type=int, help="override the scenario's seed")
    run.add_argument("--fix", action="append", default=None, metavar="NAME",
                     help=f"turn a fix on (repeatable): {', '.join(f.value for f in Fix)}, or all")
    run.add_argument("--out", type=Path, help="run directory (default runs/<time>-<scenario>-seed<N>)")
    run.add_argument("--base-port", type=_positive, default=17000, help="first of the ports the run uses")
    run.add_argument("--until", metavar="HH:MM", help="end the run at this PDT time instead of the scenario's end")
    run.add_argument("--no-what-if", action="store_true",
                     help="skip the report's what-if table (the cascade's twin once per remediation)")
    run.add_argument("--chaos", action="append", default=[], metavar="kill:INSTANCE@HH:MM",
                     help="kill -9 a process at a simulated time (PDT) and restart it (repeatable), "
                     "e.g. kill:authority@23:40")
    run.add_argument("--no-tty", action="store_true",
                     help="plain line output instead of the live view (the default when not on a terminal or CI)")
    run.add_argument("--prometheus", action=argparse.BooleanOptionalAction, default=True,
                     help="start a Prometheus with deploy/prometheus/ on base port + 990 when one is installed "
                     "(default: yes)")
    run.set_defaults(func=_run)

    report = sub.add_parser("report", help="write a run directory's report.html again from its files",
                            description="Rebuild report.html from what a finished run wrote (scenario.yaml, "
                            "summary.json, metrics.jsonl, traces.jsonl, alerts.json), e.g. after upgrading racelab.")
    report.add_argument("run_dir", type=Path, help="a run directory written by `racelab run`")
    report.add_argument("--what-if", action="store_true",
                        help="also compute the what-if table (the cascade's twin once per remediation)")
    report.set_defaults(func=_report)
    assert_command.add_parser(sub)
    follow.register(sub)
    return parser


def _run(args: argparse.Namespace) -> int:
    import asyncio
    import os
    import time

    from rich.console import Console

    from services.lab.live.chaos import ChaosError, parse_chaos
    from services.lab.live.run import RunOptions, default_out, ensure_ports_free, run
    from services.lab.live.topology import local_topology
    from services.runtime.scenario import ScenarioError, parse_scenario, scenario_text
    try:
        text, source = scenario_text(args.scenario)  # the run directory keeps exactly what ran
        scenario = parse_scenario(text, source)
    except ScenarioError as exc:
        raise CliError(str(exc)) from None
    scenario = scenario.with_overrides(seed=args.seed,
                                       fixes=parse_fixes(args.fix) if args.fix is not None else None)
    if args.until:
        from dataclasses import replace

        from services.runtime.clock import ScheduleError, parse_pdt
        try:
            scenario = replace(scenario, end=parse_pdt(args.until, scenario.epoch))
        except ScheduleError as exc:
            raise CliError(f"--until: {exc}") from None
    out = args.out or default_out(scenario)
    topology = local_topology(args.base_port)
    try:
        chaos = tuple(parse_chaos(spec, scenario, [p.instance for p in topology.processes]) for spec in args.chaos)
    except ChaosError as exc:
        raise CliError(str(exc)) from None
    try:
        ensure_ports_free(topology)
    except OSError as exc:
        raise CliError(str(exc)) from None
    interactive = Console().is_terminal and not args.no_tty and not os.environ.get("CI")
    # Plain output (a pipe, CI, --no-tty) is a log: one event per line, never wrapped, so grep works.
    console = Console(soft_wrap=not interactive)
    began = time.monotonic()
    summary = asyncio.run(run(RunOptions(scenario, out, args.base_port, interactive, text, chaos,
                                          what_if=not args.no_what_if, prometheus=args.prometheus), console))
    console.print(_run_verdict(summary, time.monotonic() - began), markup=False, highlight=False, soft_wrap=True)  # paths stay whole
    return 3 if summary["failed_process"] else 0


def _report(args: argparse.Namespace) -> int:
    from services.lab.report.page import rewrite_report
    try:
        path = rewrite_report(args.run_dir, what_if=args.what_if)
    except (OSError, ValueError) as exc:
        raise CliError(f"{args.run_dir}: cannot rebuild its report: {exc}") from None
    print(f"wrote {path}")
    return 0


def _run_verdict(summary: dict, command_seconds: float | None = None) -> str:
    lines = [f"\nrun directory: {summary['run_dir']}  (summary.json, report.html, traces.jsonl, metrics.jsonl)",
             f"stale apply: {summary['stale_apply']}   regional name emptied: {summary['regional_name_emptied']}   "
             f"enactors stuck: {summary['enactors_stuck']}"]
    others = [e for e in summary.get("emptied_endpoints", []) if e != LEGACY_ENDPOINT]
    if others:
        lines.append("the race also (or instead) emptied: " + ", ".join(others))
    for w in summary["empty_windows"]:
        until = w["until_pdt"] or "the end of the run"
        lines.append(f"{w['endpoint']} answered no address from {w['from_pdt']} until {until}")
    if not summary["regional_name_emptied"] and not summary.get("fixes") and not summary["failed_process"]:
        lines.append("the race did not empty the regional name this time, so nothing downstream failed: it emerges "
                     "from timing, in most runs but not all (bench/RESULTS-race.md); run again, or with another --seed")
    report = f" (with the report: {command_seconds:.1f}s)" if command_seconds is not None else ""
    lines.append(f"wall time {summary['wall_seconds']}s{report}, startup {summary['startup_seconds']}s, "
                 f"memory {(summary['memory_rss_bytes'] or 0) / 2**20:.0f} MiB, {summary['spans']} spans")
    return "\n".join(lines)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {value}")
    return value


def _world(args: argparse.Namespace) -> WorldConfig:
    if args.scenario:
        from services.lab.twin.sim import world_from_scenario
        from services.runtime.scenario import ScenarioError, parse_scenario, scenario_text
        try:
            text, source = scenario_text(args.scenario)
            config = world_from_scenario(parse_scenario(text, source), through_repair=True)
        except ScenarioError as exc:
            raise CliError(str(exc)) from None
    else:
        config = WorldConfig()
    if args.plans:
        config = replace(config, plans=args.plans)
    if args.stall_probability is not None:
        config = replace(config, stall_probability=args.stall_probability)
    if args.threshold:
        config = with_overrides(config, cleanup_threshold_generations=args.threshold)
    return config


def _fix_label(fixes: frozenset[Fix]) -> str:
    if not fixes:
        return "none (as in 2025)"
    if fixes == RACE_FIXES:
        return "all"
    return ", ".join(sorted(f.value for f in fixes))


def _explore(args: argparse.Namespace) -> int:
    config = _world(args)
    fixes = parse_fixes(args.fix)
    if args.matrix:
        return _matrix(args, config)
    found = explore.search(args.seed, args.schedules, config, fixes, until=args.until, workers=args.workers)
    worst = run_schedule(found.worst.seed, config, fixes) if found.worst else None
    if args.json:
        print(json.dumps(_summary(found, args), indent=2))
    else:
        if worst is not None:
            print(explore.format_schedule(worst, full=args.full))
            print()
        _print_search(found, args)
        if worst is not None:
            flags = "".join(f" --fix {f.value}" for f in sorted(fixes, key=lambda f: f.value))
            flags += f" --scenario {shlex.quote(args.scenario)}" if args.scenario else ""
            print(f"\nreproduce: racelab explore --seed {worst.seed} --schedules 1{flags}")
    return 1 if found.worst else 0


def _print_search(found: explore.Search, args: argparse.Namespace) -> None:
    print(f"fixes: {_fix_label(found.fixes)}")
    print(f"searched {found.schedules} schedules (seeds {args.seed}..{args.seed + found.schedules - 1}) in "
          f"{found.seconds:.2f}s: {found.rate:.0f} schedules/s, {found.events} events")
    for v in found.kinds:
        first = found.first_seed.get(v)
        where = f"first at seed {first}" if first is not None else "never"
        print(f"  {v.value:<22} {found.counts[v]:>7} schedules   {where}")
    if found.first_violation_after is not None:
        print(f"first violation after {found.first_violation_after} schedules")
    else:
        print("no violation")


def _summary(found: explore.Search, args: argparse.Namespace) -> dict:
    return {
        "fixes": sorted(f.value for f in found.fixes),
        "first_seed": args.seed,
        "schedules": found.schedules,
        "seconds": round(found.seconds, 3),
        "schedules_per_second": round(found.rate, 1),
        "events": found.events,
        "violations": {v.value: found.counts[v] for v in found.kinds},
        "first_violation_seed": {v.value: s for v, s in found.first_seed.items()},
        "schedules_to_first_violation": found.first_violation_after,
        "worst_seed": found.worst.seed if found.worst else None,
    }


def _matrix(args: argparse.Namespace, config: WorldConfig) -> int:
    rows = [frozenset()] + [frozenset({f}) for f in Fix if f in RACE_FIXES] + [RACE_FIXES]
    results = [explore.search(args.seed, args.schedules, config, fixes, until="none", workers=args.workers)
               for fixes in rows]
    if args.json:
        print(json.dumps([_summary(r, args) for r in results], indent=2))
    else:
        kinds = explore.possible(config)
        head = f"{'fixes':<20}" + "".join(f"{v.value:>22}" for v in kinds) + f"{'sched/s':>10}"
        print(f"{args.schedules} schedules per row, seeds {args.seed}..{args.seed + args.schedules - 1}")
        print(head)
        for r in results:
            cells = "".join(f"{r.counts[v]:>22}" for v in kinds)
            print(f"{_fix_label(r.fixes):<20}{cells}{r.rate:>10.0f}")
    return 1 if results[-1].worst else 0


if __name__ == "__main__":
    sys.exit(main())
