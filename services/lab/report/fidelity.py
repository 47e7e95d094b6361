"""How close a run came to INCIDENT.md §3, and what each remediation would have changed.

Both tables read time series by one naming scheme, "metric" or "metric:label
value" (e.g. "racelab_dependent_success_ratio:sts"), so they work on the live
run's scraped metrics and on the twin alike. Rows that people did (operators'
actions) are marked as inputs: the scenario sets their times.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from services.core.fixes import RACE_FIXES, Fix
from services.core.operators import Action
from services.core.plans import LEGACY_ENDPOINT
from services.runtime.clock import SimClock, parse_pdt
from services.runtime.scenario import Scenario

Points = list[tuple[float, float]]
Lookup = Callable[[str], Points]

OK = 0.9  # a dependent at or above this success ratio is counted as working
DEPENDENTS = ("legacy", "lambda_update", "lambda_sqs", "sts", "app", "ec2_launch", "iam_signin", "support_center",
              "redshift", "ecs_task")


@dataclass
class Row:
    real: str  # PDT, as in INCIDENT.md
    what: str
    reproduced: float | None  # simulated seconds since the epoch; None: not seen
    how: str  # "measured" | "operators (input)" | "not modelled"
    # A measured row is read from sampled series: it happened after this sample (the one before
    # `reproduced`) and by `reproduced`. None: exact (an operator's action, or the first sample).
    since: float | None = None
    key: str = ""  # what the scenario's `fitted:` entries call this row
    basis: str = ""  # a measured row: FITTED, FOLLOWS_OPERATORS or PREDICTED (see basis())

    def earliest(self) -> float | None:
        return self.reproduced if self.since is None else self.since


FITTED = "fitted"
FOLLOWS_OPERATORS = "arithmetic on the operators' input"
PREDICTED = "predicted"


def basis(scenario: Scenario, key: str) -> str:
    """Whether a measured figure was fitted (a knob was chosen to land it), is arithmetic on the
    operators' input (only their actions set it), or predicted (no knob was chosen for it)."""
    entries = scenario.fitted_for(key)
    if not entries:
        return PREDICTED
    return FOLLOWS_OPERATORS if all(e.operators_only for e in entries) else FITTED


def combined_basis(*bases: str) -> str:
    """A phase between two figures is only as predicted as the less predicted of its ends."""
    for b in (FITTED, FOLLOWS_OPERATORS):
        if b in bases:
            return b
    return PREDICTED


@dataclass
class Window:
    what: str
    real: tuple[str, str]
    reproduced: tuple[float | None, float | None]
    basis: str = ""

    def real_minutes(self, scenario: Scenario) -> float:
        a, b = (parse_pdt(t, scenario.epoch) for t in self.real)
        return (b - a) / 60

    def minutes(self) -> float | None:
        a, b = self.reproduced
        return None if a is None or b is None else (b - a) / 60

    def off(self, scenario: Scenario) -> float | None:
        """How far this run's duration is from 2025's, as a share of 2025's; None: not seen whole."""
        got, real = self.minutes(), self.real_minutes(scenario)
        return None if got is None else (got - real) / real


def _first(points: Points, pred, after: float = float("-inf")) -> float | None:
    return next((t for t, v in points if t >= after and pred(v)), None)


def _last(points: Points, pred, after: float = float("-inf")) -> float | None:
    found = None
    for t, v in points:
        if t >= after and pred(v):
            found = t
    return found


NEVER = float("inf")  # a condition that still held when the run ended


def _over(points: Points, pred, after: float) -> float | None:
    """When `pred` stopped holding for good after `after`: None if it never held, NEVER if it held to the end."""
    last = _last(points, pred, after)
    if last is None:
        return None
    return next((t for t, _ in points if t > last), NEVER)


def _latest(*ends: float | None) -> float | None:
    """The latest of several `_over` ends (None: none of them ever held)."""
    return max((e for e in ends if e is not None), default=None)


def _at(end: float | None) -> float | None:
    """An end as a time in the tables: a condition that never ended was not seen to end."""
    return None if end == NEVER else end


def _before(points: Points, t: float | None) -> float | None:
    """The sample of `points` just before `t`: a row seen at `t` happened in (that sample, t]."""
    if t is None:
        return None
    return next((u for u, _ in reversed(points) if u < t), None)


def _after_last(points: Points, pred, after: float) -> float | None:
    """The first sample after the last one where `pred` held (when it stopped holding); None if it
    never held or held to the end."""
    return _at(_over(points, pred, after))


def predicted_accuracy(scenario: Scenario, rows: list[Row]) -> list[tuple[Row, float | None]]:
    """The predicted rows, each with how many minutes off 2025 it came (None: not seen)."""
    return [(r, None if r.reproduced is None else (r.reproduced - parse_pdt(r.real, scenario.epoch)) / 60)
            for r in rows if r.basis == PREDICTED]


def out_of_order(scenario: Scenario, rows: list[Row]) -> list[tuple[Row, Row]]:
    """Measured rows that came in another order than in 2025: (earlier in 2025, later in 2025) pairs where
    the later one had surely happened before the earlier one could have. Rows read from samples are
    known only to within one sample, so two rows whose windows overlap are not called swapped.
    Operators' actions are inputs, so only measured rows count."""
    real = lambda r: parse_pdt(r.real, scenario.epoch)  # noqa: E731
    seen = [r for r in rows if r.how.startswith("measured") and r.reproduced is not None]
    return [(a, b) for i, a in enumerate(seen) for b in seen[i + 1:]
            if real(a) < real(b) and b.reproduced <= a.earliest() and b.reproduced < a.reproduced]


def fidelity(scenario: Scenario, read: Lookup, operator_times: dict[str, float],
             empty: tuple[float | None, float | None]) -> tuple[list[Row], list[Window]]:
    at = lambda hhmm: parse_pdt(hhmm, scenario.epoch)  # noqa: E731
    # The run's last scrape can land after the scenario's end, while processes are stopping: what
    # it counts is the shutdown, not the incident.
    get = lambda key: [(t, v) for t, v in read(key) if t <= scenario.end]  # noqa: E731
    ratio = lambda dep: get(f"racelab_dependent_success_ratio:{dep}")  # noqa: E731
    bad = lambda v: v < OK  # noqa: E731
    good = lambda v: v >= OK  # noqa: E731
    op = operator_times.get
    late = at("03:00")  # the cascade's second half: after the DNS repair
    sts, legacy = ratio("sts"), ratio("legacy")
    start_errors = min(filter(None, [_first(sts, bad), _first(ratio("lambda_update"), bad)]), default=None)
    sts1_end = _first(sts, good, op("mitigate-internal", late)) if start_errors is not None else None
    restored = op("restore-dns", empty[1])
    clients_back = _first(legacy, lambda v: v >= 0.99, restored) if restored is not None else None
    in_flight = get("racelab_dwfm_work_in_flight")
    collapse = _first(in_flight, lambda v: v > 0, restored) if restored is not None else None
    expired = get("racelab_dwfm_droplets:expired")
    all_leased = _first(expired, lambda v: v == 0, collapse) if collapse is not None else None
    unhealthy = get("racelab_nlb_targets:unhealthy")
    hc_fail = _first(unhealthy, lambda v: v > 0, late)
    nonet = get("racelab_netmgr_instances_without_network_total")
    base = next((v for t, v in nonet if t >= late), 0.0)
    no_network = _first(nonet, lambda v: v > base, late)
    delay = get("racelab_netmgr_delay_seconds")
    boot = scenario.netmgr.boot_seconds
    propagation_normal = _after_last(delay, lambda v: v > boot, late)
    sts2 = (_first(sts, bad, late), _after_last(sts, bad, late))
    # AWS: launches worked again once propagation did (10:36); EC2 was "fully recovered" at 13:50, when the
    # operators had finished relaxing the request throttle and every EC2 API worked. So: the throttle off
    # (the dwfm's own gauge; the ramp is the operators' input) and launches succeeding since.
    ec2_back = _latest(_over(ratio("ec2_launch"), lambda v: v < 0.99, late),
                       _over(get("racelab_dwfm_throttle_launches_per_second"), lambda v: v > 0, late))
    over = _latest(*(_over(ratio(d), bad, late) for d in DEPENDENTS), ec2_back)
    # The other dependents (INCIDENT.md §3, "Others"): each back when it works again after it first failed.
    iam = ratio("iam_signin")
    iam_back = _first(iam, good, _first(iam, bad)) if _first(iam, bad) is not None else None
    support = ratio("support_center")
    support_fails = _first(support, bad)
    support_back = _first(support, good, support_fails) if support_fails is not None else None
    redshift, ecs = ratio("redshift"), ratio("ecs_task")
    redshift_back = _at(_over(redshift, bad, float("-inf")))
    ecs_back = _at(_over(ecs, bad, float("-inf")))
    rows = [
        Row("23:48", "regional endpoint emptied", empty[0], "measured", key="emptied"),
        Row("23:51", "Lambda and STS errors begin", start_errors, "measured", key="errors-begin"),
        Row("00:38", "DNS identified as the source", None, "not modelled (people diagnosing)"),
        Row("01:15", "mitigations reconnect internal services", op("mitigate-internal"), "operators (input)"),
        Row("01:19", "STS recovers (first window)", sts1_end, "measured", _before(sts, sts1_end), key="sts-first-end"),
        Row("01:25", "IAM console sign-in recovers", iam_back, "measured", _before(iam, iam_back),
            key="iam-signin-back"),
        Row("23:48", "Support Center serves invalid responses (its fallback does not trigger)", support_fails,
            "measured", _before(support, support_fails), key="support-center-invalid"),
        Row("02:40", "Support Center recovers (clients' cached answers expired)", support_back, "measured",
            _before(support, support_back), key="support-center-back"),
        Row("02:25", "DNS restored by hand", restored, "operators (input)" if empty[0] is not None else "measured",
            key="" if empty[0] is not None else "dns-restored"),
        Row("02:40", "clients recovered (cached answers expired)", clients_back, "measured",
            _before(legacy, clients_back), key="clients-back"),
        Row("02:25", "DWFM re-leases the fleet: congestive collapse", collapse, "measured",
            _before(in_flight, collapse), key="collapse"),
        Row("04:14", "DWFM throttled, hosts restarted", op("throttle-dwfm"), "operators (input)"),
        Row("04:40", "Lambda SQS poller restored by hand", op("restart-sqs-poller"), "operators (input)"),
        Row("05:28", "every droplet has a lease", all_leased, "measured", _before(expired, all_leased),
            key="all-leased"),
        Row("05:28", "Redshift clusters leave \"modifying\" (replacement hosts launch)", redshift_back, "measured",
            _before(redshift, redshift_back), key="redshift-available"),
        Row("05:30", "NLB health-check failures begin", hc_fail, "measured", _before(unhealthy, hc_fail),
            key="hc-fail"),
        Row("05:38", "DNS automation disabled", op("disable-dns-automation"), "operators (input)"),
        Row("06:21", "new instances launch without network", no_network, "measured", _before(nonet, no_network),
            key="no-network"),
        Row("06:52", "NLB problem detected", None, "not modelled (people diagnosing)"),
        Row("08:31", "STS second window begins (via NLB)", sts2[0], "measured", _before(sts, sts2[0]),
            key="sts-second-begin"),
        Row("09:36", "NLB automatic failover disabled", op("disable-nlb-failover"), "operators (input)"),
        Row("09:59", "STS second window ends", sts2[1], "measured", _before(sts, sts2[1]), key="sts-second-end"),
        Row("10:36", "network propagation normal", propagation_normal, "measured",
            _before(delay, propagation_normal), key="propagation-normal"),
        Row("10:36", "ECS/EKS/Fargate tasks start again (new instances have network)", ecs_back, "measured",
            _before(ecs, ecs_back), key="ecs-tasks-start"),
        Row("11:23", "EC2 throttles begin to relax", op("relax-ec2-throttle"), "operators (input)"),
        Row("13:50", "EC2 fully recovered: launch throttle lifted, launches succeed", _at(ec2_back),
            "measured (the throttle's end follows the operators' ramp)", key="ec2-recovered"),
        Row("14:09", "NLB automatic failover re-enabled", op("enable-nlb-failover"), "operators (input)"),
        Row("14:20", "event over: every dependent working, EC2 fully recovered", _at(over), "measured",
            key="event-over"),
    ]
    for r in rows:
        if r.key:
            r.basis = basis(scenario, r.key)
    of = {r.key: r.basis for r in rows if r.key}
    windows = [
        Window("DynamoDB endpoint empty", ("23:48", "02:25"), empty, combined_basis(of["emptied"], FOLLOWS_OPERATORS)),
        Window("STS first window", ("23:51", "01:19"), (start_errors, sts1_end),
               combined_basis(of["errors-begin"], of["sts-first-end"])),
        Window("DWFM: restore to every droplet leased", ("02:25", "05:28"), (collapse, all_leased),
               combined_basis(of["collapse"], of["all-leased"])),
        Window("Support Center invalid responses", ("23:48", "02:40"), (support_fails, support_back),
               combined_basis(of["support-center-invalid"], of["support-center-back"])),
        Window("instances without network", ("06:21", "10:36"), (no_network, propagation_normal),
               combined_basis(of["no-network"], of["propagation-normal"])),
        Window("STS second window", ("08:31", "09:59"), sts2,
               combined_basis(of["sts-second-begin"], of["sts-second-end"])),
        Window("whole event", ("23:48", "14:20"), (empty[0], _at(over)),
               combined_basis(of["emptied"], of["event-over"])),
    ]
    return rows, windows


def impact_minutes(points: Points, step: float) -> float:
    """Simulated minutes a dependent spent under the OK ratio."""
    return sum(step for _, v in points if v < OK) / 60


@dataclass
class WhatIf:
    label: str
    minutes: dict[str, float]  # dependent -> minutes of impact (a mean, over the race twin's schedules)
    dwfm_recovered: bool  # in every schedule the row ran
    source: str  # where the row's outage came from
    never: bool = False  # DWFM was left in a collapse that would never end by itself (Fleet.stuck)


RACE_TWIN_SCHEDULES = 3  # per race-fix row: the run's seed and the next ones


def race_outages(scenario: Scenario, fixes: frozenset[Fix], seeds: range) -> list[list[tuple[float, float | None]]]:
    """The regional name's empty windows in the race twin (services/lab/twin/sim.py, the same enactor
    core as the live run) with `fixes`, one list per seed. A window still open when the race twin
    stops has no end: it lasts until the operators' repair."""
    return [_race_outage(scenario, fixes, seed) for seed in seeds]


def _race_outage(scenario: Scenario, fixes: frozenset[Fix], seed: int) -> list[tuple[float, float | None]]:
    from services.lab.twin.sim import run_schedule, world_from_scenario
    r = run_schedule(seed, world_from_scenario(scenario), fixes)
    return [(a, None if b >= r.ended_at else b) for endpoint, a, b in r.empty_windows if endpoint == LEGACY_ENDPOINT]


def _cascade_minutes(sc: Scenario, outages, end: str | float) -> tuple[dict[str, float], bool, float | None]:
    """Minutes of impact per dependent, whether every droplet was leased again by the end, and since
    when DWFM's collapse had been a fixed point (Fleet.stuck) if it still was at the end."""
    from services.lab.twin.cascade import STEP, run_twin
    out = run_twin(sc, outages=outages, until=end)
    minutes = {d: impact_minutes(out.series.get(f"racelab_dependent_success_ratio:{d}", []), STEP)
               for d in DEPENDENTS}
    expired = out.series.get("racelab_dwfm_droplets:expired", [])
    return minutes, bool(expired) and expired[-1][1] == 0, out.stuck_since


def what_if(scenario: Scenario, outage: list[tuple[float, float | None]] | None = None, *, until: str = "14:30",
            schedules: int = RACE_TWIN_SCHEDULES, workers: int = 1) -> list[WhatIf]:
    """Minutes of impact per dependent, every row from the same core (WhatIfJobs), all at once:
    `workers` processes share the twins' runs."""
    import concurrent.futures
    pool = concurrent.futures.ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        jobs = WhatIfJobs(scenario, pool.submit if pool else _Now, until=until, schedules=schedules)
        jobs.start_outage_rows(outage)  # the long ones first
        jobs.start_race_rows()
        return jobs.rows()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


class WhatIfJobs:
    """The what-if table's twin runs, started in two waves on `submit` (a process pool's, or _Now).

    The race-fix rows run the race twin with that fix over `schedules` seeds from the run's, and
    feed the cascade twin the outages each schedule produced: nothing there depends on this run, so
    a live run starts them once its race is over (`start_race_rows`) and `poll`s to start each
    outage's cascade as soon as the race twin has produced it. The other rows run the cascade twin
    on the outage this run measured (`outage`; None: 2025's 23:48-02:25), known only after the
    operators' repair (`start_outage_rows`). Every row covers the same night, to `until`; the row
    without the operators' DWFM throttle and restarts says whether DWFM was left in a collapse that
    is a fixed point (Fleet.stuck: it would never end), not merely unfinished at `until`. The twins
    are deterministic: the same outages are run through the cascade twin once."""

    def __init__(self, scenario: Scenario, submit, *, until: str = "14:30",
                 schedules: int = RACE_TWIN_SCHEDULES) -> None:
        self.scenario = scenario
        self.base = scenario.with_overrides(fixes=frozenset())
        self.seeds = range(scenario.seed, scenario.seed + schedules)
        self.until = until
        self._submit = submit
        self._cascades: dict[tuple, object] = {}
        self._race: dict[str, list] | None = None
        self._outage_rows: list | None = None
        self._measured = ""

    def _cascade(self, sc: Scenario, outages):
        key = (sc.fixes, sc.operators, tuple(outages) if outages is not None else None)
        if key not in self._cascades:  # the twin is deterministic: the same outages give the same minutes
            self._cascades[key] = self._submit(_cascade_minutes, sc, outages, self.until)
        return self._cascades[key]

    def start_race_rows(self) -> None:
        if self._race is None:
            self._race = {label: [self._submit(_race_outage, self.base, fixes, seed) for seed in self.seeds]
                          for label, fixes in RACE_ROWS}

    def poll(self) -> None:
        """Start the cascade twin for every outage the race twin has produced so far; never blocks."""
        for futures in (self._race or {}).values():
            for f in futures:
                if f.done() and not f.exception():
                    self._cascade(self.base, f.result())  # race fixes change nothing downstream of DNS

    def start_outage_rows(self, outage: list[tuple[float, float | None]] | None) -> None:
        if self._outage_rows is not None:
            return
        self._measured = "this run's outage" if outage is not None else "2025's outage (23:48-02:25)"
        without = dataclasses.replace(self.base, operators=tuple(o for o in self.base.operators if o.action not in (
            Action.THROTTLE_DWFM, Action.RESTART_DWFM_HOSTS)))
        self._outage_rows = [self._cascade(sc, outage) for sc in (
            self.base, self.base.with_overrides(fixes=frozenset({Fix.QUEUE_THROTTLE})),
            self.base.with_overrides(fixes=frozenset({Fix.NLB_VELOCITY})), without)]

    @property
    def started(self) -> bool:
        return self._race is not None and self._outage_rows is not None

    def rows(self, timeout: float | None = None) -> list[WhatIf]:
        """The table; waits up to `timeout` seconds in all for what is still running (TimeoutError)."""
        assert self.started, "start both waves first"
        deadline = None if timeout is None else time.monotonic() + timeout

        def result(future):
            return future.result(None if deadline is None else max(0.0, deadline - time.monotonic()))
        measured = self._measured
        minutes, recovered, _ = result(self._outage_rows[0])
        rows = [WhatIf("as in October 2025", minutes, recovered, measured)]
        produced = {label: [result(f) for f in futures] for label, futures in self._race.items()}
        cascades = {label: [self._cascade(self.base, o) for o in windows] for label, windows in produced.items()}
        for label, _ in RACE_ROWS:
            windows = produced[label]
            runs = [result(f) for f in cascades[label]]
            emptied = sum(1 for o in windows if o)
            rows.append(WhatIf(label, {d: sum(m[d] for m, _, _ in runs) / len(runs) for d in DEPENDENTS},
                               all(ok for _, ok, _ in runs),
                               f"race twin, seeds {self.seeds.start}-{self.seeds.stop - 1}: the name emptied in "
                               f"{emptied} of {len(windows)} ({sum(len(o) for o in windows)} windows)"))
        for fix, future in zip((Fix.QUEUE_THROTTLE, Fix.NLB_VELOCITY), self._outage_rows[1:3]):
            minutes, recovered, _ = result(future)
            rows.append(WhatIf(f"{fix.value}: {fix.summary}", minutes, recovered, measured))
        minutes, recovered, stuck_since = result(self._outage_rows[3])
        sc = self.scenario
        stuck = "" if stuck_since is None else (
            f"; stuck for good from {SimClock(sc.schedule, sc.epoch, 0).pdt(stuck_since)[:5]} PDT: every busy DWFM host "
            f"had more lease work in flight than can finish inside the timeout, retried in place, so it never shrinks")
        rows.append(WhatIf("no DWFM throttle and restart", minutes, recovered, measured + stuck,
                           never=stuck_since is not None))
        return rows


RACE_ROWS = [(f.value, frozenset({f})) for f in sorted(RACE_FIXES, key=lambda f: f.value)] + \
    [("all race fixes", RACE_FIXES)]


class _Now:
    """A future already done: what submit gives without a pool."""

    def __init__(self, fn, *args):
        self._value = fn(*args)

    def result(self, timeout: float | None = None):
        return self._value

    def done(self) -> bool:
        return True

    def exception(self) -> None:
        return None


# The cascade's named moments both the live run and the twin record (core/detectors.py), with how far
# apart they may fall, in simulated minutes: the live run reads them from events scraped and
# published a wall second apart (minutes in the fast hours), the twin steps every 30 simulated s.
TWIN_MOMENTS = {
    "dwfm.leases:expiring": 8, "dwfm.leases:none": 8, "dwfm.collapse:collapsed": 25,
    "dwfm.collapse:progressing": 15, "dwfm.leases:all": 15, "nlb.flapping:flapping": 20,
}
KNIFE_EDGE = {"nlb.failover:remove": 60}  # compared when both had it: health-check lateness sits on a knife edge


@dataclass
class Agreement:
    moment: str
    live: float | None
    twin: float | None
    tolerance_minutes: float

    @property
    def agrees(self) -> bool:
        if self.live is None or self.twin is None:
            return self.live is None and self.twin is None
        return abs(self.twin - self.live) <= self.tolerance_minutes * 60

    def __str__(self) -> str:
        show = lambda t: "-" if t is None else f"{t / 60:6.0f}"  # noqa: E731
        off = "" if self.live is None or self.twin is None else f"{(self.twin - self.live) / 60:+.0f} min"
        return (f"{self.moment:28} live {show(self.live)}  twin {show(self.twin)}  {off:>9} "
                f"(within {self.tolerance_minutes:g}) {'ok' if self.agrees else 'DISAGREE'}")


def cascade_moments(events: Iterable[tuple[float, str, dict]]) -> dict[str, float]:
    """The first time of each named moment (`kind:state`), from the director's log or the twin's events."""
    out: dict[str, float] = {}
    for sim, kind, attrs in events:
        if kind in ("dwfm.leases", "dwfm.collapse", "nlb.flapping", "nlb.failover"):
            out.setdefault(f"{kind}:{attrs.get('state') or attrs.get('action')}", sim)
    return out


def twin_agreement(live: dict[str, float], twin: dict[str, float]) -> list[Agreement]:
    """Each named moment of the live run beside the twin's (minutes since the epoch)."""
    rows = [Agreement(m, live.get(m), twin.get(m), tol) for m, tol in TWIN_MOMENTS.items()]
    rows += [Agreement(m, live.get(m), twin.get(m), tol) for m, tol in KNIFE_EDGE.items()
             if m in live and m in twin]
    return rows


def operator_times(events: Iterable[tuple[float, str, dict]]) -> dict[str, float]:
    """The first time each operator action was performed, from (sim, kind, attributes) events."""
    times: dict[str, float] = {}
    for sim, kind, attrs in events:
        if kind == "operator.action" and attrs.get("action") and attrs.get("result") in ("done", "restored", None):
            times.setdefault(attrs["action"], sim)
    return times
