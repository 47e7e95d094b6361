"""The cascade's twin and the what-if table: every row from the same core, its outage from where it says."""

from __future__ import annotations

import pytest

from services.core.fixes import Fix
from services.lab.twin.cascade import STEP, run_twin
from services.lab.report.fidelity import impact_minutes, what_if
from services.runtime.clock import parse_pdt
from services.runtime.scenario import load_scenario

SCENARIO = load_scenario("oct-2025").with_overrides(seed=2)


def at(pdt: str) -> float:
    return parse_pdt(pdt, SCENARIO.epoch)


def kinds(run, kind: str) -> list[tuple[float, dict]]:
    return [(t, a) for t, k, a in run.events if k == kind]


@pytest.fixture(scope="module")
def as_in_2025():
    return run_twin(SCENARIO)


def test_without_an_outage_nothing_downstream_fails():
    run = run_twin(SCENARIO, outages=[], until="04:00")
    assert not kinds(run, "dwfm.collapse") and not kinds(run, "nlb.flapping")
    for dependent in ("legacy", "lambda_update", "lambda_sqs", "sts", "ec2_launch"):
        assert impact_minutes(run.series[f"racelab_dependent_success_ratio:{dependent}"], STEP) == 0, dependent


def test_the_2025_outage_drives_the_cascade_in_its_order(as_in_2025):
    """Leases expire while DynamoDB is out; after the 02:25 repair DWFM collapses re-leasing the whole
    fleet, and recovers only after the operators' 04:14 throttle and restarts; NLBs flap after."""
    leases = kinds(as_in_2025, "dwfm.leases")
    collapse = kinds(as_in_2025, "dwfm.collapse")
    assert leases[0][1]["state"] == "expiring" and at("23:48") < leases[0][0] < at("02:25")
    assert [a["state"] for _, a in collapse] == ["collapsed", "progressing"]
    assert at("02:25") < collapse[0][0] < at("04:14") <= collapse[1][0]
    flapping = kinds(as_in_2025, "nlb.flapping")
    assert flapping and flapping[0][0] > collapse[1][0]
    operators = [(a["action"], a["result"]) for _, a in kinds(as_in_2025, "operator.action")]
    assert operators[:3] == [("restore-dns", "failed"), ("mitigate-internal", "done"), ("restore-dns", "done")]


def test_a_short_outage_costs_its_length_plus_at_most_the_negative_cache():
    run = run_twin(SCENARIO, outages=[(at("01:00"), at("01:02"))], until="03:00")
    minutes = impact_minutes(run.series["racelab_dependent_success_ratio:legacy"], STEP)
    assert 2 <= minutes <= 2 + SCENARIO.dns.soa_ttl_seconds / 60 + STEP / 60


def test_the_table_rows_come_from_the_race_twin_and_this_runs_outage():
    outage = [(at("23:41"), at("02:25"))]
    rows = {r.label.split(":")[0]: r for r in what_if(SCENARIO, outage, schedules=1)}
    assert rows["as in October 2025"].source == "this run's outage"
    later = what_if(SCENARIO, [(at("00:41"), at("02:25"))], schedules=1)[0]
    assert later.minutes["legacy"] == pytest.approx(rows["as in October 2025"].minutes["legacy"] - 60, abs=2)
    # heal-rollback alone still empties the name (it only heals it): not zero by construction.
    heal = rows["heal-rollback"]
    assert heal.source.startswith("race twin, seeds 2-2: the name emptied in 1 of 1")
    assert heal.minutes["legacy"] > 0
    for fix in ("fencing", "protect-active", "all race fixes"):
        assert "emptied in 0 of 1" in rows[fix].source and rows[fix].minutes["legacy"] == 0, fix
    without = rows["no DWFM throttle and restart"]
    assert not without.dwfm_recovered and without.never and "stuck for good from 02:" in without.source
    assert rows["as in October 2025"].dwfm_recovered and not rows["as in October 2025"].never


def test_the_other_dependents_fail_and_recover_by_their_mechanisms(as_in_2025):
    """Support Center serves invalid answers through the outage (no fallback) and is back once the
    cached NODATA runs out after the repair; IAM sign-in is back with the internal callers at 01:15;
    Redshift clusters stay modifying until replacement hosts launch after the lease recovery; ECS
    tasks fail while launches fail and while new instances lack network."""
    ratio = lambda d: as_in_2025.series[f"racelab_dependent_success_ratio:{d}"]  # noqa: E731
    bad = lambda d, a, b: [v for t, v in ratio(d) if at(a) <= t < at(b)]  # noqa: E731
    assert max(bad("support_center", "23:50", "02:25")) == 0
    assert min(v for t, v in ratio("support_center") if t >= at("02:25") + SCENARIO.dns.soa_ttl_seconds + STEP) == 1
    assert max(bad("iam_signin", "23:50", "01:15")) == 0 and min(bad("iam_signin", "01:15", "02:00")) == 1
    modifying = as_in_2025.series["racelab_redshift_clusters:modifying"]
    assert max(v for t, v in modifying if t < at("05:28")) > SCENARIO.dependents.redshift_clusters / 2
    assert max(bad("redshift", "01:00", "04:14")) < 0.9 and min(bad("redshift", "06:00", "14:00")) >= 0.9
    assert max(bad("ecs_task", "01:00", "04:14")) == 0
    ecs_after_network = [v for t, v in ratio("ecs_task") if t >= at("11:00")]
    assert ecs_after_network and min(ecs_after_network) == 1


def test_support_center_with_a_validating_fallback_never_fails():
    fixed = SCENARIO.with_overrides(fixes=frozenset({Fix.VALIDATING_FALLBACK}))
    run = run_twin(fixed, until="03:00")
    assert impact_minutes(run.series["racelab_dependent_success_ratio:support_center"], STEP) == 0


def test_without_launch_failures_redshift_and_ecs_never_fail():
    run = run_twin(SCENARIO, outages=[], until="04:00")
    for dependent in ("redshift", "ecs_task", "support_center", "iam_signin"):
        assert impact_minutes(run.series[f"racelab_dependent_success_ratio:{dependent}"], STEP) == 0, dependent


def test_the_table_started_in_waves_as_a_live_run_does_is_the_table_computed_at_once():
    """A live run starts the race-fix rows when its race is over and polls them, and the rows that take
    its outage after the repair; the table must not depend on that order."""
    import concurrent.futures

    from services.lab.report.fidelity import WhatIfJobs
    outage = [(at("23:41"), at("02:25"))]
    at_once = what_if(SCENARIO, outage, until="00:30", schedules=1)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        jobs = WhatIfJobs(SCENARIO, pool.submit, until="00:30", schedules=1)
        assert not jobs.started
        jobs.start_race_rows()
        jobs.poll()  # never blocks, whatever is done or not
        jobs.start_outage_rows(outage)
        jobs.start_outage_rows([(at("23:50"), at("02:25"))])  # the first outage given is the one used
        in_waves = jobs.rows(timeout=600)
    assert [(r.label, r.minutes, r.dwfm_recovered, r.source, r.never) for r in in_waves] == \
        [(r.label, r.minutes, r.dwfm_recovered, r.source, r.never) for r in at_once]
    assert in_waves[0].minutes["legacy"] > 0


def test_the_twin_reaches_the_same_moments_with_the_live_services_coarser_ticks(as_in_2025):
    """Live, the services tick every 0.2-0.25 wall seconds: 77-190 simulated seconds in the cascade's
    hours, against the twin's 30 s step. Stepped at 150 s, the twin must reach every named moment
    (leases, collapse, flapping, the first NLB failover) within the tolerances the live comparison
    uses (tests/integration/test_live_cascade.py), or that comparison measures the step, not the
    incident. Before the core objects took each event at its own time, the first failover came
    80-90 minutes earlier at 150 s."""
    from services.lab.report.fidelity import KNIFE_EDGE, cascade_moments, twin_agreement

    fine = cascade_moments(as_in_2025.events)
    coarse = cascade_moments(run_twin(SCENARIO, step=150.0).events)
    rows = twin_agreement(fine, coarse)
    assert set(KNIFE_EDGE) <= {r.moment for r in rows}, "\n".join(map(str, rows))
    assert all(r.agrees for r in rows), "\n".join(map(str, rows))


def test_the_twin_launches_each_group_s_instances_into_its_group(monkeypatch):
    """The general customers' terminations pick from the fleet's "" group (Fleet.pick, as the live DWFM
    does): by the end of a night the apps' targets and the Redshift replacement hosts must be in their
    own groups, never in the general customers' pool."""
    import services.lab.twin.cascade as twin
    from services.core.dependents import REDSHIFT, RedshiftClusters
    built, replaced = [], []
    build, launched = twin.Cascade.build.__func__, RedshiftClusters.launched

    def keep(cls, *args, **kwargs):
        built.append(build(cls, *args, **kwargs))
        return built[-1]
    monkeypatch.setattr(twin.Cascade, "build", classmethod(keep))
    monkeypatch.setattr(RedshiftClusters, "launched", lambda self, cluster: (replaced.append(cluster),
                                                                               launched(self, cluster))[1])
    run_twin(SCENARIO, until="09:00")
    c = built[0]
    groups = c.fleet.group_of
    assert replaced and sum(g == REDSHIFT for g in groups.values()) == len(replaced)  # none terminated
    for name, targets in c.customers.targets.items():
        assert targets and all(groups[i] == name for i in targets)
    general = [i for i in c.fleet.instances if groups[i] == ""]
    assert len(general) == len(c.fleet.instances) - len(replaced) - sum(map(len, c.customers.targets.values()))
