"""The other dependents of INCIDENT.md §3 as core objects: Redshift stuck modifying while launches
fail, Support Center's fallback that does not see invalid answers, ECS tasks that need network."""

import random

import pytest

from services.core.dependents import (
    AVAILABLE,
    FAILED,
    INVALID,
    MODIFYING,
    OK_RESPONSE,
    RedshiftClusters,
    SupportCenter,
    TaskLaunches,
    backend_response,
    internal_reachable,
)
from services.core.leases import LeaseItem


def test_redshift_clusters_stay_modifying_while_replacement_launches_fail_and_recover_when_they_work():
    clusters = RedshiftClusters(40, 0.5, 10, random.Random(1))
    t = 0.0
    while t < 3 * 3600:  # launches refused for three hours: nothing ends a modification
        t += 30
        clusters.advance(t)
    stuck = clusters.count - clusters.available()
    assert stuck > 20
    t += 30
    for batch in clusters.advance(t):  # launches work again: every asking cluster gets its host
        assert len(batch) <= 10
        for cluster in batch:
            clusters.launched(cluster)
    assert clusters.available() == clusters.count
    assert clusters.replaced_total == stuck


def test_a_modifying_cluster_asks_again_only_after_a_launch_period():
    clusters = RedshiftClusters(1, 3600.0, 10, random.Random(1))  # its host fails at once
    assert clusters.advance(1.0) == [[0]]
    assert clusters.advance(10.0) == []
    assert clusters.advance(40.0) == [[0]]
    assert clusters.describe(0) == MODIFYING
    with pytest.raises(ValueError, match="no cluster 1"):
        clusters.describe(1)


def test_bad_redshift_settings_are_clear_errors():
    with pytest.raises(ValueError, match="redshift_clusters"):
        RedshiftClusters(0, 0.5, 10, random.Random(1))
    with pytest.raises(ValueError, match="launch_batch"):
        RedshiftClusters(4, 0.5, 0, random.Random(1))


@pytest.mark.parametrize("outcome, response", [("ok", OK_RESPONSE), ("dns_nodata", INVALID),
                                               ("connect_error", FAILED), ("timeout", FAILED)])
def test_a_nodata_answer_comes_back_as_an_invalid_response_not_a_failure(outcome, response):
    assert backend_response(outcome) == response


def test_support_centers_fallback_triggers_on_failed_responses_only_unless_it_validates():
    as_built, fixed = SupportCenter(), SupportCenter(validates=True)
    assert as_built.falls_back(FAILED) and not as_built.falls_back(INVALID)
    assert fixed.falls_back(FAILED) and fixed.falls_back(INVALID)
    assert not as_built.falls_back(OK_RESPONSE) and not fixed.falls_back(OK_RESPONSE)


def test_tasks_start_if_their_target_is_healthy_when_the_grace_period_ends():
    tasks = TaskLaunches(300.0)
    tasks.launched(["i-1", "i-2", "i-3"], 0.0)
    assert tasks.due(299.0) == []
    health = {"i-1": True, "i-2": False}  # i-3 scaled in before it started: no longer a task
    assert tasks.settle(tasks.due(300.0), health.get) == (1, 1)
    assert tasks.pending == {}


def test_internal_callers_reach_dynamodb_another_way_once_mitigated():
    assert not internal_reachable(False, lambda: False)
    assert internal_reachable(True, lambda: False)


@pytest.mark.parametrize("sort_key, attributes, words", [
    ("lease", {"expires_at": "1", "state": "renewed"}, "not droplet-<number>"),
    ("droplet-00001", {"state": "renewed"}, "expires_at"),
    ("droplet-00001", {"expires_at": "x", "state": "renewed"}, "expires_at"),
    ("droplet-00001", {"expires_at": "1", "state": "held"}, "state 'held'"),
])
def test_a_malformed_lease_item_is_a_clear_error(sort_key, attributes, words):
    with pytest.raises(ValueError, match=words):
        LeaseItem.parse("dwfm-1", sort_key, attributes)
