"""report.html: what happened in words, then the night on one zoomable simulated-PDT axis (plotly,
bundled into the page: it opens offline, from a file:// URL), the fidelity, what-if and alert
tables, and the same plots as PNGs for write-ups."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Callable

import plotly.offline

from services.core.plans import LEGACY_ENDPOINT
from services.lab.live.otlpsink import read_spans
from services.lab.report.plots import Mark, night_figure, race_batches, is_stale_flip, span_sim, tree_deletions, write_pngs
from services.lab.live.prometheus import alert_timeline_html, load_alert_timeline
from services.lab.live.scrape import Series
from services.runtime.clock import SimClock
from services.runtime.scenario import Scenario

STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:auto;padding:0 1em;color:#222}
.story{font-size:1.15em;line-height:1.5;border-left:5px solid #d62728;padding:.2em 1em;background:#fdf3f3}
.story.calm{border-color:#2ca02c;background:#f3fbf3} table{border-collapse:collapse;font-size:90%}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left} details{margin:1em 0}"""


def write_report(run_dir: Path, scenario: Scenario, series: Series, summary: dict, wall_start: float,
                 what_if: list | Callable[[], list | None] | None = None) -> Path:
    """`what_if`: the table's rows, or a function that waits for them, called once everything else is
    drawn (a live run's twins are still finishing in another process meanwhile)."""
    clock = SimClock(scenario.schedule, scenario.epoch, wall_start)
    traces = run_dir / "traces.jsonl"
    # The race: the enactors' batches, and the authority's record of what each batch deleted.
    spans = read_spans(traces, services={"racelab-enactor", "racelab-authority"}) if traces.exists() else []
    alerts = load_alert_timeline(run_dir)
    empty = summary.get("empty_windows") or []
    rows, windows = run_fidelity(scenario, series, summary)
    end = max((pts[-1][0] for pts in series.points.values() if pts), default=scenario.end)
    marks = [Mark(r.reproduced, f"{html.escape(r.what)} (2025: {r.real} PDT)", "incident")
             for r in rows if r.reproduced is not None]
    marks += [Mark(t, f"operators: {html.escape(action)}", "operator")
              for action, t in summary.get("operator_times", {}).items()]
    marks += [Mark(clock.schedule.sim_at(a["fired"] - wall_start), html.escape(a["alert"]), "alert") for a in alerts]
    figure = night_figure(series, spans, clock, marks, [(w["from_sim"], w["until_sim"]) for w in empty], end)
    pngs = write_pngs(run_dir, series, spans, clock)
    body = [f"<h1>racelab run: {html.escape(scenario.name)}, seed {summary.get('seed')}</h1>",
            story_html(summary, spans, clock, rows, windows, scenario)]
    if figure is not None:
        body.append("<h2>The night, on one axis</h2><p>Drag to zoom (double-click to zoom out), hover for values; "
                    "the buttons jump to the race and back. The shaded stretch: the regional name answered empty. "
                    "The camera icon saves the figure as PNG.</p>")
        body.append(figure.to_html(full_html=False, include_plotlyjs=False, div_id="night",
                                   config={"displaylogo": False, "responsive": True,
                                           "toImageButtonOptions": {"filename": "racelab-night"}}))
    if callable(what_if):
        what_if = what_if()
    body += cascade_tables(scenario, series, summary, clock, what_if, rows, windows)
    body.append(alert_timeline_html(alerts))
    body.append("<details><summary>Static plots (PNG, for write-ups)</summary>"
                + "".join(f'<p><img src="{p.name}" width="900" alt="{p.stem}"></p>' for p in pngs) + "</details>")
    body.append('<details><summary>summary.json (<a href="summary.json">download</a>)</summary><pre>'
                + html.escape(json.dumps(summary, indent=2)) + "</pre></details>")
    path = run_dir / "report.html"
    path.write_text("<!doctype html><html><head><meta charset=utf-8><title>racelab report</title>"
                    f"<style>{STYLE}</style><script>{plotly.offline.get_plotlyjs()}</script></head><body>"
                    + "\n".join(body) + "</body></html>")
    return path


def run_fidelity(scenario: Scenario, series: Series, summary: dict) -> tuple[list, list]:
    """The run's fidelity rows and phases (services/lab/report/fidelity.py), its DNS outage the first
    empty window its summary lists."""
    from services.lab.report.fidelity import fidelity
    empty = summary.get("empty_windows") or []
    window = (empty[0]["from_sim"], empty[0]["until_sim"]) if empty else (None, None)
    return fidelity(scenario, live_lookup(series), summary.get("operator_times", {}), window)


def load_run(run_dir: Path) -> tuple[dict, Scenario, Series]:
    """A finished run's summary, scenario and scraped metrics. ValueError: not a finished run directory."""
    from services.lab.live.scrape import load_series
    from services.runtime.scenario import ScenarioError, parse_scenario
    missing = [n for n in ("scenario.yaml", "summary.json", "metrics.jsonl") if not (run_dir / n).is_file()]
    if missing:
        raise ValueError(f"not a finished run directory (no {', '.join(missing)})")
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        scenario = parse_scenario((run_dir / "scenario.yaml").read_text(), str(run_dir / "scenario.yaml"))
    except (json.JSONDecodeError, ScenarioError) as exc:
        raise ValueError(str(exc)) from None
    return summary, scenario, load_series(run_dir / "metrics.jsonl")


def rewrite_report(run_dir: Path, what_if: bool = False) -> Path:
    """report.html again, from the files the run wrote. ValueError: not a run directory."""
    from services.lab.report.fidelity import what_if as twin
    summary, scenario, series = load_run(run_dir)
    windows = [(w["from_sim"], w["until_sim"]) for w in summary.get("empty_windows", [])]
    rows = twin(scenario.with_overrides(seed=summary.get("seed")), windows) if what_if else None
    return write_report(run_dir, scenario, series, summary, summary["wall_start"], rows)


def _minutes(seconds: float) -> str:
    h, m = divmod(round(seconds / 60), 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"


def story_html(summary: dict, spans: list[dict], clock: SimClock, rows: list, windows: list,
               scenario: Scenario) -> str:
    """The first screen: what happened, in sentences, and how it compares with 2025."""
    said: list[str] = []
    stale = [s for s in race_batches(spans) if is_stale_flip(s)]
    deleted = tree_deletions(spans)
    if deleted:  # the stale flip that set the deletion up: the last one before it
        stale = [s for s in stale if int(s["startTimeUnixNano"]) <= deleted[0]] or stale
    if stale:
        fatal = stale[-1] if deleted else stale[0]
        a = fatal["attrs"]
        said.append(f"At {clock.pdt(span_sim(clock, fatal['startTimeUnixNano']))} enactor "
                    f"{html.escape(str(a.get('racelab.enactor.id', fatal['instance'])))} applied a stale plan to "
                    f"{LEGACY_ENDPOINT}: generation {a.get('racelab.plan.generation')} over "
                    f"{a.get('racelab.endpoint.generation.replaced')}"
                    + (f" ({len(stale)} stale flips on the name before it)." if len(stale) > 1 and deleted else "."))
    elif summary.get("stale_apply"):
        said.append("An enactor applied a stale plan.")
    if deleted:
        said.append(f"At {clock.pdt(span_sim(clock, deleted[0]))} another enactor's clean-up deleted that plan as "
                    "old, while the name pointed at it: the name answered with no address (NODATA). "
                    "In 2025 this happened at 23:48 PDT.")
    for w in summary.get("empty_windows", []):
        until = w["until_pdt"] or "the end of the run"
        length = f" ({_minutes(w['sim_seconds'])})" if w.get("sim_seconds") else ""
        said.append(f"<b>{html.escape(w['endpoint'])} answered empty from {w['from_pdt']} until {until}{length}.</b>")
    others = [e for e in summary.get("emptied_endpoints", []) if e != LEGACY_ENDPOINT]
    if others:
        names = ", ".join(html.escape(e) for e in others)
        said.append(f"The race also emptied: {names}." if summary.get("regional_name_emptied")
                    else f"The race emptied another name instead: {names}.")
    if summary.get("enactors_stuck"):
        said.append("The automation got stuck: the enactors could not apply any new plan to the name (the "
                    "rollback record pointed at a deleted tree) until the operators repaired it by hand.")
    elif summary.get("regional_name_emptied"):
        said.append("The automation did not get stuck this time.")
    if not summary.get("regional_name_emptied"):
        fixes = ", ".join(summary.get("fixes") or [])
        said.append(f"The race did not empty the regional name in this run{f' (fixes: {fixes})' if fixes else ''}, so "
                    "nothing downstream failed." if not summary.get("failed_process") else "")
    measured = [r for r in rows if r.reproduced is not None]
    if rows:
        said.append(f"Against 2025 (INCIDENT.md §3): {len(measured)} of {len(rows)} of the incident's moments happened "
                    "in this run.")
    durations = [(w.what, w.real_minutes(scenario), w.minutes()) for w in windows if w.minutes() is not None]
    if durations:
        said.append("Phases, this run against 2025: " + "; ".join(
            f"{html.escape(what)} {_minutes(got * 60)} (2025: {_minutes(real * 60)})" for what, real, got in durations)
            + ".")
    if summary.get("failed_process"):
        said.append(f"<b>A process failed: {html.escape(summary['failed_process'])}</b> (see logs/).")
    said.append(f"<small>Simulated until {summary.get('ended_at_pdt')}; {summary.get('wall_seconds')} s of wall time, "
                f"{summary.get('spans')} spans.</small>")
    calm = "" if summary.get("regional_name_emptied") else " calm"
    return f'<div class="story{calm}" id="story"><p>' + "</p><p>".join(s for s in said if s) + "</p></div>"


# Timeouts are the replica's own limit (a wall-clock deadline on a loaded 2-core machine), not a
# mechanism of the incident: the fidelity table leaves them out and says how many there were.
NOT_THE_INCIDENT = ("timeout",)


def success_ratio(series: Series, counter: str, *, result_label: str,
                  ignore: tuple[str, ...] = (), **labels: str) -> list[tuple[float, float]]:
    """Share of requests that succeeded ("ok") over two scrape intervals, from a counter by result,
    stamped at the scrape between them; results in `ignore` are left out altogether.

    Two intervals, because one in the fast hours holds as few as one or two calls of a dependent.
    Stamped in the middle, because that is the moment the window describes: stamped at its end, every
    recovery read from it came about two intervals late (it turns good only once both intervals are
    nearly all successes), and in the fast hours an interval is 5-14 simulated minutes. Over the ten
    runs of bench/RESULTS-fidelity.md ("2026-12-07, eleventh session") STS's first recovery moved from
    +12 to +4 minutes off 2025's 01:19; the onsets, which a window shows as soon as its newest interval
    fails, moved by under a minute."""
    window = 2
    by_result = {k: v for k, v in series.history(counter, **labels).items() if dict(k).get(result_label) not in ignore}
    times = sorted({t for points in by_result.values() for t, _ in points})
    if not times:
        return []
    totals, oks = [0.0] * len(times), [0.0] * len(times)
    for key, points in by_result.items():
        ok = dict(key).get(result_label) == "ok"
        last, values = 0.0, dict(points)
        for i, t in enumerate(times):  # a series missing from a scrape keeps its last value
            last = values.get(t, last)
            totals[i] += last
            if ok:
                oks[i] += last
    out = []
    for i in range(window, len(times)):
        done = totals[i] - totals[i - window]
        if done > 0:
            out.append((times[i - 1], (oks[i] - oks[i - window]) / done))
    return out


def live_lookup(series: Series):
    """fidelity.Lookup over the live run's scraped metrics ("metric" or "metric:label value")."""
    label_of = {"racelab_dependent_success_ratio": "dependent", "racelab_dwfm_droplets": "state",
                "racelab_nlb_targets": "state", "racelab_client_success_ratio": "client"}

    def get(key: str):
        name, _, value = key.partition(":")
        if name == "racelab_dependent_success_ratio" and value:
            # From the request counters, not the processes' own ratio gauges: their window is a few wall
            # seconds, half an hour of simulated time in the fast hours, which would blur every edge.
            if value == "legacy":
                return success_ratio(series, "racelab_client_requests_total", client="legacy", result_label="outcome",
                                     ignore=NOT_THE_INCIDENT)
            return success_ratio(series, "racelab_dependent_requests_total", dependent=value, result_label="result",
                                 ignore=NOT_THE_INCIDENT)
        history = series.history(name, **({label_of[name]: value} if value else {}))
        if not history:
            return []
        if len(history) == 1:
            return next(iter(history.values()))
        merged: dict[float, float] = {}  # several label sets (e.g. one per NLB): their sum
        for points in history.values():
            for t, v in points:
                merged[t] = merged.get(t, 0.0) + v
        return sorted(merged.items())
    return get


def cascade_tables(scenario: Scenario, series: Series, summary: dict, clock: SimClock,
                   what_if: list | None, rows: list, windows: list) -> list[str]:
    from services.lab.report.fidelity import PREDICTED, out_of_order, predicted_accuracy
    out = ["<h2>Fidelity: INCIDENT.md §3 against this run</h2>",
           "<table><tr><th>real (PDT)</th><th>this run</th><th>what</th><th>how</th><th>fitted or predicted</th></tr>"]
    for r in rows:
        got = clock.pdt(r.reproduced)[:5] if r.reproduced is not None else "not seen"
        why = "; ".join(f"{', '.join(f.knobs)}: {f.how}" for f in scenario.fitted_for(r.key)) if r.key else ""
        cell = (f'<span title="{html.escape(why)}">{html.escape(r.basis)}</span>' if why else html.escape(r.basis))
        out.append(f"<tr><td>{r.real}</td><td>{got}</td><td>{html.escape(r.what)}</td><td>{html.escape(r.how)}</td>"
                   f"<td class=\"basis-{r.basis.split()[0] if r.basis else 'none'}\">{cell}</td></tr>")
    swapped = out_of_order(scenario, rows)
    out.append("</table><p><b>Order:</b> " + (
        "every measured row came in the incident's order (to within one scrape).</p>" if not swapped else
        "out of the incident's order here: " + "; ".join(
            f"{html.escape(b.what)} ({clock.pdt(b.reproduced)[:5]}, real {b.real}) before "
            f"{html.escape(a.what)} ({clock.pdt(a.reproduced)[:5]}, real {a.real})" for a, b in swapped) + ".</p>"))
    out.append("<h3>Phase durations (minutes)</h3><table>"
               "<tr><th>phase</th><th>real</th><th>this run</th><th>off by</th><th>fitted or predicted</th></tr>")
    for w in windows:
        real, got, off = w.real_minutes(scenario), w.minutes(), w.off(scenario)
        off = "-" if off is None else f"{off:+.0%}"
        out.append(f"<tr><td>{html.escape(w.what)}</td><td>{real:.0f}</td>"
                   f"<td>{'-' if got is None else f'{got:.0f}'}</td><td>{off}</td><td>{html.escape(w.basis)}</td></tr>")
    out.append("</table>")
    acc = predicted_accuracy(scenario, rows)
    if acc:
        out.append(f"<p><b>The {PREDICTED} rows alone</b> (no knob was chosen to land them; the scenario's "
                   f"<code>fitted:</code> names the rest): " + "; ".join(
                       f"{html.escape(r.what)} {'not seen' if off is None else f'{off:+.0f} min'}" for r, off in acc)
                   + ".</p>")
    timeouts = sum(series.total("racelab_dependent_requests_total", result=r) +
                   series.total("racelab_client_requests_total", outcome=r) for r in NOT_THE_INCIDENT)
    if timeouts:
        out.append(f"<p>{timeouts:.0f} calls timed out in this run. A timeout here is the replica's own limit (a "
                   "wall-clock deadline on a loaded machine), not a mechanism of the incident, so the table above "
                   "leaves them out.</p>")
    if what_if:
        deps = list(what_if[0].minutes)
        out.append("<h2>What if: minutes of impact per dependent (the race twin and the cascade twin, the same "
                   "core as this run)</h2><table><tr><th>run</th>" + "".join(f"<th>{d}</th>" for d in deps)
                   + "<th>DWFM recovered</th><th>outage from</th></tr>")
        for w in what_if:
            out.append(f"<tr><td>{html.escape(w.label)}</td>" + "".join(f"<td>{w.minutes[d]:.0f}</td>" for d in deps)
                       + f"<td>{'yes' if w.dwfm_recovered else 'NEVER (stuck)' if w.never else 'not by 14:30'}</td>"
                       f"<td>{html.escape(w.source)}</td></tr>")
        out.append("</table><p>Impact: simulated minutes under a 90% success ratio, 23:30-14:30 PDT. The cascade's "
                   "twin (services/lab/twin/cascade.py) runs the same core objects as the live dwfm, netmgr, nlb and "
                   "workload processes, built by services/core/cascade.py, and takes the regional name's outage as "
                   "input: this run's measured window for the cascade rows; for each race-fix row, the windows the "
                   "race twin (services/lab/twin/sim.py, the live enactors' core) produced with that fix, averaged over "
                   "its schedules. A window the race twin leaves open lasts until the operators' 02:25 repair.</p>")
    return out
