"""The fidelity table's reading of time series: when EC2 counts as fully recovered, when the event is
over, and which measured rows came out of the incident's order."""

from pathlib import Path

from services.lab.report.fidelity import Row, fidelity, out_of_order
from services.runtime.clock import parse_pdt
from services.runtime.scenario import load_scenario

SC = load_scenario("oct-2025")


def at(hhmm: str) -> float:
    return parse_pdt(hhmm, SC.epoch)


def steps(*changes: tuple[str, float], until: str = "14:30") -> list[tuple[float, float]]:
    """A series sampled every 5 simulated minutes from 23:30, holding each value from its time on."""
    points, t, end = [], at("23:30"), at(until)
    marks = [(at(h), v) for h, v in changes]
    while t <= end:
        points.append((t, [v for s, v in marks if s <= t][-1]))
        t += 300
    return points


def table(series: dict[str, list[tuple[float, float]]]):
    rows, windows = fidelity(SC, lambda k: series.get(k, []), {}, (at("23:48"), at("02:25")))
    return {r.what.split(":")[0]: r for r in rows}, {w.what: w for w in windows}


THROTTLED_0414_TO_1350 = steps(("23:30", 0.0), ("04:14", 0.6), ("13:50", 0.0))


def test_ec2_is_fully_recovered_when_the_throttle_is_lifted_even_if_launches_worked_earlier():
    rows, windows = table({
        "racelab_dependent_success_ratio:ec2_launch": steps(("23:30", 1.0), ("05:30", 0.5), ("07:00", 1.0)),
        "racelab_dwfm_throttle_launches_per_second": THROTTLED_0414_TO_1350,
    })
    assert rows["EC2 fully recovered"].reproduced == at("13:50")
    assert rows["event over"].reproduced == at("13:50")
    assert windows["whole event"].minutes() == (at("13:50") - at("23:48")) / 60


def test_ec2_is_fully_recovered_when_launches_succeed_again_after_the_throttle_is_gone():
    rows, _ = table({
        "racelab_dependent_success_ratio:ec2_launch": steps(("23:30", 1.0), ("05:30", 0.5), ("14:00", 1.0)),
        "racelab_dwfm_throttle_launches_per_second": THROTTLED_0414_TO_1350,
    })
    assert rows["EC2 fully recovered"].reproduced == at("14:00")


def test_a_throttle_still_on_at_the_end_is_not_a_recovery_and_the_event_is_not_over():
    rows, windows = table({
        "racelab_dependent_success_ratio:ec2_launch": steps(("23:30", 1.0)),
        "racelab_dwfm_throttle_launches_per_second": steps(("23:30", 0.0), ("04:14", 0.6)),
        "racelab_dependent_success_ratio:sts": steps(("23:30", 1.0), ("08:30", 0.0), ("10:00", 1.0)),
    })
    assert rows["EC2 fully recovered"].reproduced is None
    assert rows["event over"].reproduced is None
    assert windows["whole event"].minutes() is None


def test_a_dependent_failing_to_the_end_leaves_the_event_not_over():
    rows, _ = table({"racelab_dependent_success_ratio:app": steps(("23:30", 1.0), ("09:00", 0.2))})
    assert rows["event over"].reproduced is None


def test_the_event_is_over_at_the_last_dependent_to_recover():
    rows, _ = table({
        "racelab_dependent_success_ratio:sts": steps(("23:30", 1.0), ("08:30", 0.0), ("10:00", 1.0)),
        "racelab_dependent_success_ratio:app": steps(("23:30", 1.0), ("09:00", 0.2), ("11:00", 1.0)),
    })
    assert rows["event over"].reproduced == at("11:00")
    assert rows["STS second window begins (via NLB)"].reproduced == at("08:30")


def test_out_of_order_names_the_measured_rows_that_swapped_and_ignores_operators_inputs():
    rows = [
        Row("23:48", "emptied", at("23:50"), "measured"),
        Row("06:21", "without network", at("06:10"), "measured"),
        Row("08:31", "STS second window", at("06:03"), "measured"),
        Row("09:36", "failover disabled", at("05:00"), "operators (input)"),
        Row("10:36", "propagation normal", at("11:00"), "measured"),
        Row("13:50", "EC2 fully recovered", at("13:50"), "measured (ramp)"),
        Row("14:20", "over", None, "measured"),
    ]
    assert [(a.what, b.what) for a, b in out_of_order(SC, rows)] == [("without network", "STS second window")]


def test_rows_seen_within_one_sample_of_each_other_are_not_called_swapped():
    # CI's seed-4 run: the dwfm's scrape at 05:34:38 still had 32 expired droplets, the next (05:38:57) none;
    # the nlb's scrape at 05:38:43 had the first unhealthy target. Either could have come first.
    leased = Row("05:28", "every droplet has a lease", at("05:38") + 57, "measured", since=at("05:34") + 38)
    failing = Row("05:30", "NLB health-check failures begin", at("05:38") + 43, "measured", since=at("05:34") + 38)
    assert out_of_order(SC, [leased, failing]) == []
    # Seen a whole sample before the droplets could all have been leased: swapped.
    failing.reproduced, failing.since = at("05:34") + 30, at("05:31")
    assert [(a.what, b.what) for a, b in out_of_order(SC, [leased, failing])] == [(leased.what, failing.what)]


def test_a_measured_row_happened_between_the_sample_before_and_its_own():
    rows, _ = fidelity(SC, lambda name: {"racelab_dwfm_work_in_flight": [(at("02:20"), 0), (at("02:30"), 5)],
                                         "racelab_dwfm_droplets:expired": [(at("05:20"), 3), (at("05:31"), 0)]}.get(name, []),
                       {"restore-dns": at("02:25")}, (at("23:48"), at("02:25")))
    leased = next(r for r in rows if r.what == "every droplet has a lease")
    assert (leased.since, leased.reproduced) == (at("05:20"), at("05:31"))


def test_the_night_is_ordered_across_midnight():
    rows = [Row("23:48", "emptied", at("23:48"), "measured"), Row("00:38", "after midnight", at("00:40"), "measured"),
            Row("14:20", "afternoon", at("14:20"), "measured")]
    assert out_of_order(SC, rows) == []
    rows[0].reproduced = at("01:00")
    assert [(a.what, b.what) for a, b in out_of_order(SC, rows)] == [("emptied", "after midnight")]


def test_samples_after_the_scenarios_end_are_the_shutdown_not_the_incident():
    # A live run's last scrape can come minutes (simulated) after 14:30, while processes stop.
    sts = steps(("23:30", 1.0), ("08:30", 0.0), ("10:00", 1.0)) + [(SC.end + 60, 0.8)]
    rows, windows = table({"racelab_dependent_success_ratio:sts": sts})
    assert rows["STS second window ends"].reproduced == at("10:00")
    assert rows["event over"].reproduced == at("10:00")


# ---- fitted or predicted ----

def test_every_fitted_figure_in_the_builtin_scenarios_names_a_row_of_the_table():
    from services.runtime.scenario import builtin_names
    rows, _ = fidelity(SC, lambda k: [], {}, (at("23:48"), at("02:25")))
    keys = {r.key for r in rows if r.key}
    for name in builtin_names():
        sc = load_scenario(name)
        assert sc.fitted, name
        assert {f.figure for f in sc.fitted} <= keys, name


def test_rows_are_fitted_arithmetic_on_operators_input_or_predicted_as_the_scenario_says():
    from services.lab.report.fidelity import FITTED, FOLLOWS_OPERATORS, PREDICTED
    rows, windows = table({})
    assert rows["regional endpoint emptied"].basis == FITTED  # schedule, conditions, clean-up threshold
    assert rows["STS second window begins (via NLB)"].basis == FITTED  # failover_after_seconds
    assert rows["every droplet has a lease"].basis == FOLLOWS_OPERATORS  # the DWFM throttle's rate
    assert rows["EC2 fully recovered"].basis == FOLLOWS_OPERATORS  # the relaxation ramp
    assert rows["clients recovered (cached answers expired)"].basis == PREDICTED  # Route 53's TTLs, no knob
    assert rows["NLB health-check failures begin"].basis == PREDICTED
    assert rows["mitigations reconnect internal services"].basis == ""  # an operator's action is input, not a row
    assert windows["instances without network"].basis == FITTED
    assert windows["DWFM: restore to every droplet leased"].basis == FOLLOWS_OPERATORS


def test_a_scenario_without_fitted_entries_calls_every_measured_row_predicted():
    import dataclasses
    from services.lab.report.fidelity import PREDICTED
    bare = dataclasses.replace(SC, fitted=())
    rows, windows = fidelity(bare, lambda k: [], {}, (at("23:48"), at("02:25")))
    assert {r.basis for r in rows if r.how.startswith("measured")} == {PREDICTED}


def test_a_fitted_knob_that_is_not_a_setting_is_a_clear_error():
    import pytest
    from services.runtime.scenario import ScenarioError, parse_scenario
    for knob, problem in (("nlb.failover_after_minutes", "nlb.failover_after_minutes"),
                          ("operators.reboot-everything", "operators.reboot-everything"),
                          ("operators.throttle-dwfm.speed", "operators.throttle-dwfm.speed")):
        text = f"extends: oct-2025\nfitted:\n  - {{figure: emptied, knobs: [{knob}], how: x}}\n"
        with pytest.raises(ScenarioError, match=problem.replace(".", r"\.")):
            parse_scenario(text, "test.yaml")


def test_a_live_success_ratio_is_stamped_in_the_middle_of_its_window():
    """Counters scraped every 10 simulated minutes, one call a minute, failing from 23:52 until 01:15: each
    two-interval ratio is stamped at the scrape between its intervals. The first window at >= 90 % is
    (01:20, 01:40], so the recovery reads 01:30 (stamped at the window's end it read 01:40); the first
    failing window is (23:40, 00:00], so the onset reads 23:50, the start of the interval it fell in."""
    from services.lab.live.scrape import Series
    from services.lab.report.page import success_ratio
    series = Series(Path("/dev/null"))
    ok = failed = 0
    start, down, back = at("23:30"), at("23:52"), at("01:15")
    for minute in range(0, 4 * 60):
        t = start + 60 * minute + 30
        if down <= t < back:
            failed += 1
        else:
            ok += 1
        if minute % 10 == 9:
            scrape = start + 60 * (minute + 1)
            series.add(scrape, "workload-1", {("racelab_dependent_requests_total", (("dependent", "sts"), ("result", "ok"))): ok,
                                              ("racelab_dependent_requests_total", (("dependent", "sts"), ("result", "error"))): failed})
    points = success_ratio(series, "racelab_dependent_requests_total", dependent="sts", result_label="result")
    first_good = next(t for t, v in points if t > back and v >= 0.9)
    first_bad = next(t for t, v in points if v < 0.9)
    assert first_good == at("01:30")
    assert first_bad == at("23:50")
