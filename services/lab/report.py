"""report.html: the run's key series on one simulated time axis, and the race drawn from its trace."""

from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from services.core.plans import LEGACY_ENDPOINT  # noqa: E402
from services.lab.otlpsink import read_spans  # noqa: E402
from services.lab.prometheus import alert_timeline_html, load_alert_timeline  # noqa: E402
from services.lab.scrape import Series  # noqa: E402
from services.runtime.clock import SimClock  # noqa: E402
from services.runtime.scenario import Scenario  # noqa: E402

RESULT_COLOURS = {"committed": "tab:green", "lock_lost": "tab:orange", "rejected": "tab:red",
                  "unavailable": "tab:gray"}


def write_report(run_dir: Path, scenario: Scenario, series: Series, summary: dict, wall_start: float,
                 what_if: list | None = None) -> Path:
    clock = SimClock(scenario.schedule, scenario.epoch, wall_start)
    figures = [
        _plot(run_dir / "endpoint_generation.png", "Active generation per endpoint (authority)",
              series.history("racelab_authority_endpoint_generation"), "endpoint", clock),
        _plot(run_dir / "endpoint_addresses.png", "Addresses each endpoint can answer with (A); 0 = empty",
              series.history("racelab_authority_endpoint_addresses", qtype="A"), "endpoint", clock),
        _plot(run_dir / "enactor_generation.png", "Plan generation each enactor is applying",
              series.history("racelab_enactor_plan_generation"), "enactor", clock),
        _plot(run_dir / "client_success.png", "Client success ratio (last 3 wall s)",
              series.history("racelab_client_success_ratio"), "client", clock),
    ]
    figures += [
        _plot(run_dir / "dependents.png", "Dependents' success ratio (last 3 wall s)",
              series.history("racelab_dependent_success_ratio"), "dependent", clock),
        _plot(run_dir / "dwfm.png", "DWFM: droplets by lease state, and lease work in flight",
              {**series.history("racelab_dwfm_droplets"),
               (("state", "work in flight"),): next(iter(series.history("racelab_dwfm_work_in_flight").values()), [])},
              "state", clock),
        _plot(run_dir / "netmgr.png", "Network Manager: wait for a new propagation (simulated s)",
              series.history("racelab_netmgr_delay_seconds"), "instance", clock),
        _plot(run_dir / "nlb.png", "NLB: healthy in-service capacity (share of registered targets)",
              series.history("racelab_nlb_healthy_capacity_ratio"), "nlb", clock),
    ]
    traces = run_dir / "traces.jsonl"
    race = _race_timeline(run_dir / "race_timeline.png", read_spans(traces), clock) if traces.exists() else None
    body = [f"<h1>racelab run: {html.escape(scenario.name)}</h1>",
            "<h2>Summary</h2><pre>" + html.escape(json.dumps(summary, indent=2)) + "</pre>"]
    for fig in figures:
        if fig:
            body.append(f'<img src="{fig.name}" width="900">')
    body += cascade_tables(scenario, series, summary, clock, what_if)
    body.append(alert_timeline_html(load_alert_timeline(run_dir)))
    body.append("<h2>The race, from the trace</h2>")
    body.append(f'<img src="{race.name}" width="900">' if race else
                "<p>No enactor batch spans for the legacy endpoint were recorded.</p>")
    path = run_dir / "report.html"
    path.write_text("<!doctype html><meta charset=utf-8><title>racelab report</title>"
                    "<body style='font-family:sans-serif;max-width:960px;margin:auto'>" + "\n".join(body))
    return path


# Timeouts are the replica's own limit (a wall-clock deadline on a loaded 2-core machine), not a
# mechanism of the incident: the fidelity table leaves them out and says how many there were.
NOT_THE_INCIDENT = ("timeout",)


def success_ratio(series: Series, counter: str, *, result_label: str, window: int = 2,
                  ignore: tuple[str, ...] = (), **labels: str) -> list[tuple[float, float]]:
    """Share of requests that succeeded ("ok") between scrapes `window` apart, from a counter by
    result; results in `ignore` are left out altogether."""
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
            out.append((times[i], (oks[i] - oks[i - window]) / done))
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
                   what_if: list | None) -> list[str]:
    from services.lab.fidelity import fidelity, out_of_order
    empty = summary.get("empty_windows") or []
    window = (empty[0]["from_sim"], empty[0]["until_sim"]) if empty else (None, None)
    rows, windows = fidelity(scenario, live_lookup(series), summary.get("operator_times", {}), window)
    out = ["<h2>Fidelity: INCIDENT.md §3 against this run</h2>",
           "<table border=1 cellpadding=3><tr><th>real (PDT)</th><th>this run</th><th>what</th><th>how</th></tr>"]
    for r in rows:
        got = clock.pdt(r.reproduced)[:5] if r.reproduced is not None else "not seen"
        out.append(f"<tr><td>{r.real}</td><td>{got}</td><td>{html.escape(r.what)}</td><td>{html.escape(r.how)}</td></tr>")
    swapped = out_of_order(scenario, rows)
    out.append("</table><p><b>Order:</b> " + (
        "every measured row came in the incident's order (to within one scrape).</p>" if not swapped else
        "out of the incident's order here: " + "; ".join(
            f"{html.escape(b.what)} ({clock.pdt(b.reproduced)[:5]}, real {b.real}) before "
            f"{html.escape(a.what)} ({clock.pdt(a.reproduced)[:5]}, real {a.real})" for a, b in swapped) + ".</p>"))
    out.append("<h3>Phase durations (minutes)</h3><table border=1 cellpadding=3>"
               "<tr><th>phase</th><th>real</th><th>this run</th><th>off by</th></tr>")
    for w in windows:
        real, got = w.real_minutes(scenario), w.minutes()
        off = f"{(got - real) / real:+.0%}" if got is not None else "-"
        out.append(f"<tr><td>{html.escape(w.what)}</td><td>{real:.0f}</td>"
                   f"<td>{'-' if got is None else f'{got:.0f}'}</td><td>{off}</td></tr>")
    out.append("</table>")
    timeouts = sum(series.total("racelab_dependent_requests_total", result=r) +
                   series.total("racelab_client_requests_total", outcome=r) for r in NOT_THE_INCIDENT)
    if timeouts:
        out.append(f"<p>{timeouts:.0f} calls timed out in this run. A timeout here is the replica's own limit (a "
                   "wall-clock deadline on a loaded machine), not a mechanism of the incident, so the table above "
                   "leaves them out.</p>")
    if what_if:
        deps = list(what_if[0].minutes)
        out.append("<h2>What if: minutes of impact per dependent (the cascade's twin, same core objects)</h2>"
                   "<table border=1 cellpadding=3><tr><th>run</th>" + "".join(f"<th>{d}</th>" for d in deps)
                   + "<th>DWFM recovered</th></tr>")
        for w in what_if:
            out.append(f"<tr><td>{html.escape(w.label)}</td>" + "".join(f"<td>{w.minutes[d]:.0f}</td>" for d in deps)
                       + f"<td>{'yes' if w.dwfm_recovered else 'NEVER'}</td></tr>")
        out.append("</table><p>Impact: simulated minutes under a 90% success ratio, 23:30-14:30 PDT. "
                   "The twin takes the DNS outage as input (empty from 23:48 until the 02:25 repair) and runs "
                   "the same core objects as the live dwfm, netmgr, nlb and workload processes.</p>")
    return out


def _plot(path: Path, title: str, history: dict, label: str, clock: SimClock) -> Path | None:
    if not history:
        return None
    fig, ax = plt.subplots(figsize=(10, 3.2))
    for labels, points in sorted(history.items()):
        if not points:
            continue
        xs = [clock.datetime(t) for t, _ in points]
        ax.step(xs, [v for _, v in points], where="post", label=dict(labels).get(label, "?"))
    ax.set_title(title)
    ax.legend(fontsize=7, loc="best")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _race_timeline(path: Path, spans: list[dict], clock: SimClock) -> Path | None:
    """The minutes before the regional name's active tree was deleted: each enactor's batches on
    that zone as bars (by result), stale flips labelled, the fatal deletion as a red line."""
    batches = [s for s in spans if s.get("name") == "enactor.batch"
               and s["attrs"].get("racelab.zone") == LEGACY_ENDPOINT]
    if not batches:
        return None
    fatal = sorted(int(ev["timeUnixNano"]) for s in spans for ev in s.get("events", [])
                   if ev.get("name") == "invariant.violated"
                   and _event_attr(ev, "racelab.violation") == "active-tree-deleted"
                   and s["attrs"].get("racelab.zone") == LEGACY_ENDPOINT)

    def sim(ns: int) -> float:
        return clock.schedule.sim_at(ns / 1e9 - clock.wall_start)

    end = sim(fatal[0]) + 30 if fatal else max(sim(int(s["endTimeUnixNano"])) for s in batches)
    start = end - 330
    shown = [s for s in batches if start <= sim(int(s["startTimeUnixNano"])) <= end]
    lanes = sorted({s["attrs"].get("racelab.enactor.id", s["instance"]) for s in batches})
    fig, ax = plt.subplots(figsize=(10, 3.5))
    for s in shown:
        lane = lanes.index(s["attrs"].get("racelab.enactor.id", s["instance"]))
        x0, x1 = sim(int(s["startTimeUnixNano"])), sim(int(s["endTimeUnixNano"]))
        colour = RESULT_COLOURS.get(s["attrs"].get("racelab.batch.result"), "tab:blue")
        ax.barh(lane, max(x1 - x0, 0.3), left=x0, color=colour, height=0.6)
        gen, replaced = s["attrs"].get("racelab.plan.generation"), s["attrs"].get("racelab.endpoint.generation.replaced")
        if s["attrs"].get("racelab.batch.result") == "committed" and gen is not None and replaced is not None \
                and int(gen) < int(replaced):
            ax.annotate(f"stale: {gen} over {replaced}", (x0, lane + 0.35), color="darkred", fontsize=8)
    for ns in fatal[:1]:
        ax.axvline(sim(ns), color="red", linewidth=1.5)
        ax.annotate("active tree deleted: NODATA", (sim(ns), len(lanes) - 0.45), color="red", fontsize=8)
    ax.set_xlim(start, end)
    ticks = [t for t in range(int(start) // 60 * 60, int(end) + 1, 60) if t >= start]
    ax.set_xticks(ticks, [clock.pdt(t)[:5] for t in ticks])
    ax.set_yticks(range(len(lanes)), lanes)
    ax.set_xlabel("simulated time (PDT)")
    ax.set_title(f"Batches on {LEGACY_ENDPOINT}: green committed, orange lock lost, red rejected, grey unreachable",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _event_attr(event: dict, key: str) -> object:
    for a in event.get("attributes", []):
        if a.get("key") == key:
            return next(iter(a.get("value", {}).values()), None)
    return None
