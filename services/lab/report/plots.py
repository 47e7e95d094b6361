"""The report's plots: one interactive plotly figure of the night on a shared simulated-PDT axis
(the race's batches from the trace, the key series, the incident's moments and the operators'
actions), and the same series as PNGs for incident write-ups.

Times: series points and marks are simulated seconds since the scenario epoch; spans and alerts
are wall-clock, turned into simulated time through the run's schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
from plotly.subplots import make_subplots  # noqa: E402

from services.core.plans import LEGACY_ENDPOINT  # noqa: E402
from services.lab.live.scrape import Series  # noqa: E402
from services.runtime.clock import SimClock  # noqa: E402

RESULT_COLOURS = {"committed": "#2ca02c", "lock_lost": "#ff7f0e", "rejected": "#d62728", "unavailable": "#7f7f7f"}
History = dict[tuple[tuple[str, str], ...], list[tuple[float, float | None]]]


@dataclass(frozen=True)
class SeriesPlot:
    """One panel of key series: a metric, the label that names each line, and how to read it."""

    file: str  # the PNG's name in the run directory
    title: str
    metric: str
    label: str
    labels: tuple[tuple[str, str], ...] = ()
    idle_is_none: bool = False  # 0 means "no value" (an enactor with no plan in progress), not generation 0
    negative_is_none: bool = False  # -1 means "no tree" (deleted), drawn as a gap beside the deletion mark
    percent: bool = False


SERIES_PLOTS = (
    SeriesPlot("endpoint_generation.png", "Active generation per endpoint (authority); a gap: no tree",
               "racelab_authority_endpoint_generation", "endpoint", negative_is_none=True),
    SeriesPlot("endpoint_addresses.png", "Addresses each endpoint answers with (A); 0 = empty (NODATA)",
               "racelab_authority_endpoint_addresses", "endpoint", (("qtype", "A"),)),
    SeriesPlot("enactor_generation.png", "Plan generation each enactor is applying (none while idle)",
               "racelab_enactor_plan_generation", "enactor", idle_is_none=True),
    SeriesPlot("client_success.png", "DynamoDB clients' success ratio (last 3 wall s)",
               "racelab_client_success_ratio", "client", percent=True),
    SeriesPlot("dependents.png", "Dependents' success ratio (last 3 wall s)",
               "racelab_dependent_success_ratio", "dependent", percent=True),
    SeriesPlot("dwfm.png", "DWFM: droplets by lease state", "racelab_dwfm_droplets", "state"),
    SeriesPlot("netmgr.png", "Network Manager: wait for a new propagation (simulated s)",
               "racelab_netmgr_delay_seconds", "instance"),
    SeriesPlot("nlb.png", "NLB: healthy in-service capacity (share of registered targets)",
               "racelab_nlb_healthy_capacity_ratio", "nlb", percent=True),
)


@dataclass(frozen=True)
class Mark:
    """A moment on the timeline row: an incident moment, an operator's action or an alert."""

    sim: float
    text: str  # shown on hover
    kind: str  # "incident" | "operator" | "alert"


MARK_STYLE = {"incident": ("diamond", "#1f77b4", 2), "operator": ("square", "#9467bd", 1),
              "alert": ("triangle-up", "#d62728", 0)}


def scrape_times(series: Series) -> dict[str, list[float]]:
    """Each process's scrape times (what `with_gaps` needs; worth computing once for every plot)."""
    scrapes: dict[str, set[float]] = {}
    for (_, labels), points in series.points.items():
        instance = dict(labels).get("instance", "")
        scrapes.setdefault(instance, set()).update(t for t, _ in points)
    return {instance: sorted(times) for instance, times in scrapes.items()}


def with_gaps(series: Series, plot: SeriesPlot, scrapes: dict[str, list[float]]) -> History:
    """The plot's lines with None where there is no value: at a scrape of the line's process that
    did not carry it, and where the value means "none" (idle, no tree). A line whose process
    stopped ends; it never falls to 0 as if it had applied generation 0. `scrapes`: scrape_times(series)."""
    out: History = {}
    for labels, points in sorted(series.history(plot.metric, **dict(plot.labels)).items()):
        have = dict(points)
        first, last = points[0][0], points[-1][0]
        line: list[tuple[float, float | None]] = []
        for t in scrapes.get(dict(labels).get("instance", ""), [t for t, _ in points]):
            if first <= t <= last:
                v = have.get(t)
                if v is not None and ((plot.idle_is_none and v == 0) or (plot.negative_is_none and v < 0)):
                    v = None
                line.append((t, v))
        out[labels] = line
    return out


def _pdt(clock: SimClock, sim: float) -> datetime:
    """Naive simulated PDT: plotly and matplotlib then label the axis in PDT, not UTC."""
    return clock.datetime(sim).replace(tzinfo=None)


def span_sim(clock: SimClock, unix_nano: int | str) -> float:
    return clock.schedule.sim_at(int(unix_nano) / 1e9 - clock.wall_start)


def race_batches(spans: list[dict]) -> list[dict]:
    return [s for s in spans if s.get("name") == "enactor.batch" and s["attrs"].get("racelab.zone") == LEGACY_ENDPOINT]


def is_stale_flip(span: dict) -> bool:
    a = span["attrs"]
    gen, replaced = a.get("racelab.plan.generation"), a.get("racelab.endpoint.generation.replaced")
    return a.get("racelab.batch.result") == "committed" and gen is not None and replaced is not None \
        and int(gen) < int(replaced)


def tree_deletions(spans: list[dict]) -> list[int]:
    """Unix nanoseconds of each clean-up that deleted the regional name's active tree."""
    return sorted(int(ev["timeUnixNano"]) for s in spans for ev in s.get("events", [])
                  if ev.get("name") == "invariant.violated"
                  and event_attr(ev, "racelab.violation") == "active-tree-deleted"
                  and s["attrs"].get("racelab.zone") == LEGACY_ENDPOINT)


def event_attr(event: dict, key: str) -> object:
    for a in event.get("attributes", []):
        if a.get("key") == key:
            return next(iter(a.get("value", {}).values()), None)
    return None


def race_window(spans: list[dict], clock: SimClock) -> tuple[float, float] | None:
    """The minutes before the active tree was deleted (or the last batches, if it never was)."""
    batches = race_batches(spans)
    if not batches:
        return None
    fatal = tree_deletions(spans)
    end = span_sim(clock, fatal[0]) + 30 if fatal else max(span_sim(clock, s["endTimeUnixNano"]) for s in batches)
    return end - 330, end


# ---- the interactive figure ----

def night_figure(series: Series, spans: list[dict], clock: SimClock, marks: list[Mark],
                 empty: list[tuple[float, float | None]], end: float) -> go.Figure | None:
    """Every panel on one zoomable simulated-PDT axis: the race's batches on the regional name from
    the trace (stale flips and the deletion marked), the incident's moments, the operators' actions
    and the alerts, then the key series. Buttons jump between the race and the night."""
    scrapes = scrape_times(series)
    lines = [(p, with_gaps(series, p, scrapes)) for p in SERIES_PLOTS]
    lines = [(p, h) for p, h in lines if any(v is not None for pts in h.values() for _, v in pts)]
    batches = race_batches(spans)
    if not lines and not batches:
        return None
    titles = [f"Batches on {LEGACY_ENDPOINT} (from the trace): green committed, orange lock lost, red rejected",
              "The incident's moments (this run), the operators' actions, alerts firing"] + [p.title for p, _ in lines]
    heights = [1.3, 0.8] + [1.0] * len(lines)
    fig = make_subplots(rows=len(titles), cols=1, shared_xaxes=True, vertical_spacing=0.35 / len(titles),
                        subplot_titles=titles, row_heights=heights)
    x = lambda sim: _pdt(clock, sim)  # noqa: E731
    _race_row(fig, batches, spans, clock, x)
    _marks_row(fig, marks, x)
    for row, (plot, history) in enumerate(lines, start=3):
        for labels, points in history.items():
            name = dict(labels).get(plot.label, "?")
            fig.add_trace(go.Scatter(
                x=[x(t) for t, _ in points], y=[v for _, v in points], mode="lines", name=name,
                line={"shape": "hv", "width": 1.5}, connectgaps=False, legendgroup=plot.file,
                legendgrouptitle_text=plot.title.split(":")[0].split(" (")[0],
                hovertemplate=f"{name}: %{{y}}<br>%{{x|%H:%M:%S}} PDT<extra></extra>"), row=row, col=1)
        if plot.percent:
            fig.update_yaxes(range=[-0.05, 1.05], tickformat=".0%", row=row, col=1)
    for a, b in empty:
        fig.add_vrect(x0=x(a), x1=x(end if b is None else b), fillcolor="#d62728", opacity=0.08, line_width=0,
                      layer="below", row="all", col=1)
    start = min([t for _, h in lines for pts in h.values() for t, _ in pts[:1]] or [end])
    night = [x(start), x(end)]
    race = race_window(spans, clock)
    def jump(label: str, a: float, b: float) -> dict:
        return {"label": label, "method": "relayout", "args": [{"xaxis.range": [x(a), x(b)]}]}
    buttons = [jump("the night", start, end)]
    if race:
        buttons.insert(0, jump("the race", *race))
    if empty:
        a, b = empty[0]
        buttons.append(jump("the empty window", a - 600, (end if b is None else b) + 600))
    fig.update_layout(
        height=260 * len(titles) + 80, template="plotly_white", hovermode="closest", barmode="overlay",
        margin={"l": 70, "r": 20, "t": 90, "b": 40}, legend={"groupclick": "toggleitem", "font": {"size": 10}},
        updatemenus=[{"type": "buttons", "direction": "right", "x": 0, "y": 1.0, "xanchor": "left",
                      "yanchor": "bottom", "pad": {"b": 30}, "buttons": buttons}])
    fig.update_xaxes(type="date", tickformat="%H:%M\n%b %d", showticklabels=True)
    fig.update_xaxes(title_text="simulated time (PDT)", row=len(titles), col=1)
    fig.update_layout(xaxis={"range": night})
    return fig


STALE_LABEL_GAP = 3 * 3600.0  # simulated seconds: at the night's zoom a label is about 2.5 h wide; closer ones overlap


def _race_row(fig: go.Figure, batches: list[dict], spans: list[dict], clock: SimClock, x) -> None:
    lanes = sorted({s["attrs"].get("racelab.enactor.id", s["instance"]) for s in batches})
    by_result: dict[str, list[dict]] = {}
    for s in batches:
        by_result.setdefault(s["attrs"].get("racelab.batch.result", "?"), []).append(s)
    for result, group in sorted(by_result.items()):
        starts = [span_sim(clock, s["startTimeUnixNano"]) for s in group]
        ends = [span_sim(clock, s["endTimeUnixNano"]) for s in group]
        fig.add_trace(go.Bar(
            base=[x(a) for a in starts], x=[max(b - a, 0.3) * 1000 for a, b in zip(starts, ends)],
            y=[s["attrs"].get("racelab.enactor.id", s["instance"]) for s in group], orientation="h",
            marker_color=RESULT_COLOURS.get(result, "#1f77b4"), name=f"batch {result}", legendgroup="race",
            legendgrouptitle_text="Batches", width=0.6,
            customdata=[[s["attrs"].get("racelab.plan.generation"), s["attrs"].get("racelab.endpoint.generation.replaced"),
                         clock.pdt(a), f"{b - a:.1f}"] for s, a, b in zip(group, starts, ends)],
            hovertemplate="%{y}: " + result + " plan %{customdata[0]} over %{customdata[1]}<br>"
                          "%{customdata[2]}, %{customdata[3]} simulated s<extra></extra>"), row=1, col=1)
    stale = [s for s in batches if is_stale_flip(s)]
    if stale:
        at = [span_sim(clock, s["startTimeUnixNano"]) for s in stale]
        lane = [s["attrs"].get("racelab.enactor.id", s["instance"]) for s in stale]
        said = [f"stale: {s['attrs'].get('racelab.plan.generation')} over "
                f"{s['attrs'].get('racelab.endpoint.generation.replaced')}" for s in stale]
        # Written beside the star, unless the lane's last written label is too close to read (hover still tells).
        order = sorted(range(len(stale)), key=at.__getitem__)
        shown, last = [], {}
        for i in order:
            near = lane[i] in last and at[i] - last[lane[i]] < STALE_LABEL_GAP
            shown.append("" if near else said[i])
            if not near:
                last[lane[i]] = at[i]
        fig.add_trace(go.Scatter(
            x=[x(at[i]) for i in order], y=[lane[i] for i in order], mode="markers+text",
            marker={"symbol": "star", "size": 12, "color": "#8c1a1a"}, name="stale flip", legendgroup="race",
            text=shown, customdata=[said[i] for i in order], textposition="top right",
            hovertemplate="%{customdata}<br>%{x|%H:%M:%S} PDT<extra></extra>"), row=1, col=1)
    for ns in tree_deletions(spans)[:1]:
        fig.add_vline(x=x(span_sim(clock, ns)), line_color="#d62728", line_width=2, row="all", col=1)
        fig.add_trace(go.Scatter(
            x=[x(span_sim(clock, ns))], y=[lanes[-1]], mode="markers+text", name="active tree deleted",
            marker={"symbol": "x", "size": 12, "color": "#d62728"}, legendgroup="race",
            text=["clean-up deleted the active tree: NODATA"], textposition="bottom right",
            hovertemplate="clean-up deleted the active tree<br>%{x|%H:%M:%S} PDT<extra></extra>"), row=1, col=1)
    fig.update_yaxes(categoryorder="array", categoryarray=lanes, row=1, col=1)


def _marks_row(fig: go.Figure, marks: list[Mark], x) -> None:
    names = {"incident": "INCIDENT.md §3 moment", "operator": "operators' action", "alert": "alert fired"}
    for kind, (symbol, colour, level) in MARK_STYLE.items():
        mine = sorted((m for m in marks if m.kind == kind), key=lambda m: m.sim)
        if mine:
            fig.add_trace(go.Scatter(
                x=[x(m.sim) for m in mine], y=[level] * len(mine), mode="markers", name=names[kind],
                marker={"symbol": symbol, "size": 10, "color": colour}, text=[m.text for m in mine],
                legendgroup="marks", legendgrouptitle_text="Moments",
                hovertemplate="%{text}<br>%{x|%H:%M:%S} PDT<extra></extra>"), row=2, col=1)
    fig.update_yaxes(tickvals=[0, 1, 2], ticktext=["alerts", "operators", "incident"], range=[-0.6, 2.6],
                     row=2, col=1)


# ---- the PNGs ----

def write_pngs(run_dir: Path, series: Series, spans: list[dict], clock: SimClock) -> list[Path]:
    """The same series (and the race) as static images to paste into a write-up; PDT axes, gaps kept."""
    scrapes = scrape_times(series)
    out = [path for plot in SERIES_PLOTS
           if (path := _png(run_dir / plot.file, plot, with_gaps(series, plot, scrapes), clock))]
    race = _race_png(run_dir / "race_timeline.png", spans, clock)
    return out + ([race] if race else [])


def _png(path: Path, plot: SeriesPlot, history: History, clock: SimClock) -> Path | None:
    if not any(v is not None for pts in history.values() for _, v in pts):
        return None
    fig, ax = plt.subplots(figsize=(10, 3.2))
    for labels, points in history.items():
        ax.step([_pdt(clock, t) for t, _ in points], [float("nan") if v is None else v for _, v in points],
                where="post", label=dict(labels).get(plot.label, "?"))
    ax.set_title(plot.title)
    ax.legend(fontsize=7, loc="best")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.set_xlabel("simulated time (PDT)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _race_png(path: Path, spans: list[dict], clock: SimClock) -> Path | None:
    window = race_window(spans, clock)
    if window is None:
        return None
    start, end = window
    batches = race_batches(spans)
    lanes = sorted({s["attrs"].get("racelab.enactor.id", s["instance"]) for s in batches})
    fig, ax = plt.subplots(figsize=(10, 3.5))
    for s in batches:
        x0, x1 = span_sim(clock, s["startTimeUnixNano"]), span_sim(clock, s["endTimeUnixNano"])
        if not start <= x0 <= end:
            continue
        lane = lanes.index(s["attrs"].get("racelab.enactor.id", s["instance"]))
        ax.barh(lane, max(x1 - x0, 0.3), left=x0, height=0.6,
                color=RESULT_COLOURS.get(s["attrs"].get("racelab.batch.result"), "#1f77b4"))
        if is_stale_flip(s):
            ax.annotate(f"stale: {s['attrs']['racelab.plan.generation']} over "
                        f"{s['attrs']['racelab.endpoint.generation.replaced']}", (x0, lane + 0.35),
                        color="darkred", fontsize=8)
    for ns in tree_deletions(spans)[:1]:
        ax.axvline(span_sim(clock, ns), color="red", linewidth=1.5)
        ax.annotate("active tree deleted: NODATA", (span_sim(clock, ns), len(lanes) - 0.45), color="red", fontsize=8)
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

