"""The live terminal view of a run, drawn from scraped metrics and the director's events."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Group
from rich.table import Table
from rich.text import Text

from services.lab.live.scrape import Series
from services.lab.live.topology import ENACTORS


@dataclass
class Event:
    pdt: str
    source: str
    kind: str
    message: str


@dataclass
class ViewState:
    title: str
    pdt: str = "--:--:--"
    phase: str = ""
    speed: float = 0.0
    endpoints: tuple[str, ...] = ()
    events: list[Event] = field(default_factory=list)


ALARMING = ("violation", "stuck", "errors")


def render(state: ViewState, series: Series) -> Group:
    head = Text.assemble((f"racelab  {state.title}", "bold"), "   ", (state.pdt, "bold cyan"),
                         f"  x{state.speed:.0f}  ", ("in 2025: ", "dim"), (state.phase, "yellow"))
    return Group(head, _endpoints(state, series), _enactors(series), _clients(series), _ec2(series),
                 _events(state))


def _endpoints(state: ViewState, series: Series) -> Table:
    t = Table(title="endpoints (the authority)", title_justify="left", expand=True)
    for col in ("endpoint", "active generation", "A addresses", "AAAA addresses"):
        t.add_column(col)
    for ep in state.endpoints:
        gen = series.value("racelab_authority_endpoint_generation", endpoint=ep)
        a = series.value("racelab_authority_endpoint_addresses", endpoint=ep, qtype="A")
        aaaa = series.value("racelab_authority_endpoint_addresses", endpoint=ep, qtype="AAAA")
        gen_text = "-" if gen is None else ("tree missing" if gen < 0 else f"{gen:.0f}")
        style = "bold red" if a == 0 else ""
        t.add_row(ep, gen_text, _num(a), _num(aaaa), style=style)
    return t


def _enactors(series: Series) -> Table:
    t = Table(title="enactors", title_justify="left", expand=True)
    for col in ("enactor", "plan in progress", "applied", "phase", "lock busy / lost", "batches ok / rejected"):
        t.add_column(col)
    for e in ENACTORS:
        phases = series.values("racelab_enactor_phase", enactor=e)
        phase = next((dict(ls).get("phase", "") for ls, v in phases.items() if v == 1), "")
        busy = sum(series.total("racelab_enactor_lock_contention_total", enactor=e, outcome=o)
                   for o in ("busy", "zone_changing"))
        lost = series.total("racelab_enactor_lock_contention_total", enactor=e, outcome="lost")
        ok = series.total("racelab_enactor_batches_total", enactor=e, result="committed")
        bad = series.total("racelab_enactor_batches_total", enactor=e, result="rejected")
        t.add_row(e, _num(series.value("racelab_enactor_plan_generation", enactor=e)),
                  _num(series.value("racelab_enactor_applied_generation", enactor=e)), phase,
                  f"{busy:.0f} / {lost:.0f}", f"{ok:.0f} / {bad:.0f}", style="red" if bad and phase else "")
    return t


def _clients(series: Series) -> Table:
    t = Table(title="clients", title_justify="left", expand=True)
    for col in ("client", "success (last 3 s)", "requests", "errors"):
        t.add_column(col)
    ratios = series.values("racelab_client_success_ratio")
    for labels, ratio in sorted(ratios.items()):
        client = dict(labels).get("client", "?")
        total = series.total("racelab_client_requests_total", client=client)
        ok = series.total("racelab_client_requests_total", client=client, outcome="ok")
        t.add_row(client, f"{ratio:.0%}", f"{total:.0f}", f"{total - ok:.0f}",
                  style="bold red" if ratio < 0.5 else "")
    for labels, ratio in sorted(series.values("racelab_dependent_success_ratio").items()):
        dependent = dict(labels).get("dependent", "?")
        total = series.total("racelab_dependent_requests_total", dependent=dependent)
        ok = series.total("racelab_dependent_requests_total", dependent=dependent, result="ok")
        t.add_row(dependent, f"{ratio:.0%}", f"{total:.0f}", f"{total - ok:.0f}",
                  style="bold red" if ratio < 0.5 else "")
    return t


def _ec2(series: Series) -> Table:
    """The EC2 side of the cascade: leases, lease work, propagation, NLB capacity."""
    t = Table(title="EC2 and NLB", title_justify="left", expand=True)
    for col in ("leased droplets", "lease work in flight", "work timeouts", "propagation wait (s)",
                "NLB capacity", "failovers"):
        t.add_column(col)
    capacity = series.values("racelab_nlb_healthy_capacity_ratio")
    t.add_row(_num(series.value("racelab_dwfm_droplets", state="leased")),
              _num(series.value("racelab_dwfm_work_in_flight")),
              _num(series.total("racelab_dwfm_work_timeouts_total")),
              _num(series.value("racelab_netmgr_delay_seconds")),
              " ".join(f"{dict(k).get('nlb', '?')}={v:.0%}" for k, v in sorted(capacity.items())) or "-",
              _num(series.total("racelab_nlb_failovers_total")))
    return t


def _events(state: ViewState, rows: int = 12) -> Table:
    t = Table(title="what happened", title_justify="left", expand=True, show_header=False)
    t.add_column("time", width=12)
    t.add_column("who", width=12)
    t.add_column("event")
    for ev in state.events[-rows:]:
        t.add_row(ev.pdt, ev.source, ev.message,
                  style="bold red" if any(word in ev.kind for word in ALARMING) else "")
    return t


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"
