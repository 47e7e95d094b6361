"""summary.json tells the incident's regional name apart from the other endpoints the race may empty."""

import json

from services.core.plans import LEGACY_ENDPOINT
from services.lab.live.run import build_summary
from services.lab.live.scrape import Series
from services.runtime.scenario import load_scenario

CELL = "cell-2.ddb.us-east-1.amazonaws.com"


def violation(sim: float, endpoint: str, kind: str) -> str:
    return json.dumps({"sim_time_seconds": sim, "kind": "authority.violation", "source": "authority",
                       "attributes": {"endpoint": endpoint, "violation": kind}})


def summary_of(tmp_path, events: list[str]) -> dict:
    (tmp_path / "state" / "director").mkdir(parents=True)
    (tmp_path / "state" / "director" / "events.jsonl").write_text("\n".join(events) + "\n")
    series = Series(tmp_path / "metrics.jsonl")
    series.add(10.0, "authority", {("racelab_invariant_violations_total", (("violation", "endpoint-empty"),)): 1.0})
    return build_summary(load_scenario("oct-2025"), series, tmp_path, wall_seconds=1.0, wall_start=0.0,
                         ready={}, rss={}, failure=None, spans=0)


def test_a_small_endpoint_emptied_is_not_the_regional_name(tmp_path):
    s = summary_of(tmp_path, [violation(5.0, CELL, "endpoint-empty"), violation(6.0, CELL, "generation-went-back")])
    assert s["endpoint_emptied"] and not s["regional_name_emptied"]
    assert s["emptied_endpoints"] == [CELL]


def test_the_regional_name_emptied(tmp_path):
    s = summary_of(tmp_path, [violation(5.0, LEGACY_ENDPOINT, "endpoint-empty"), violation(7.0, CELL, "endpoint-empty")])
    assert s["regional_name_emptied"]
    assert s["emptied_endpoints"] == sorted([CELL, LEGACY_ENDPOINT])


def test_the_verdict_says_why_a_run_as_in_2025_shows_no_outage(tmp_path):
    from services.lab.cli import _run_verdict
    s = summary_of(tmp_path, [violation(5.0, CELL, "endpoint-empty")])
    assert "the race did not empty the regional name this time" in _run_verdict(s)
    s = summary_of(tmp_path / "b", [violation(5.0, LEGACY_ENDPOINT, "endpoint-empty")])
    assert "did not empty" not in _run_verdict(s)


def event(sim: float, kind: str, **attributes: str) -> str:
    return json.dumps({"sim_time_seconds": sim, "kind": kind, "source": "enactor-az1", "attributes": attributes})


def test_each_emptying_names_the_stale_flip_that_made_the_deleted_tree_active(tmp_path):
    s = summary_of(tmp_path, [
        event(100.0, "enactor.flip", endpoint=LEGACY_ENDPOINT, generation="140", replaced_generation="139",
              stale="false"),
        event(200.0, "enactor.flip", endpoint=LEGACY_ENDPOINT, generation="110", replaced_generation="145",
              stale="true"),
        event(201.0, "enactor.cleanup", endpoint=LEGACY_ENDPOINT, generation="145", deleted_generations="110",
              deleted_active="true"),
        event(202.0, "enactor.cleanup", endpoint=CELL, generation="145", deleted_generations="120",
              deleted_active="false")])
    (story,) = s["emptyings"]
    assert (story["endpoint"], story["stale_generation"], story["over_generation"], story["behind"],
            story["cleaner_generation"]) == (LEGACY_ENDPOINT, 110, 145, 35, 145)
    assert story["at_pdt"].startswith("23:33:21")


def test_the_report_says_another_name_emptied_instead_or_too(tmp_path):
    """The report's first screen: a run that emptied only another endpoint says so ("instead"), not that
    the race "also" emptied it beside a regional name that kept its addresses."""
    from services.lab.report.page import story_html
    from services.runtime.clock import SimClock
    scenario = load_scenario("oct-2025")
    clock = SimClock(scenario.schedule, scenario.epoch, 0.0)
    only_cell = summary_of(tmp_path, [violation(5.0, CELL, "endpoint-empty")])
    text = story_html(only_cell, [], clock, [], [], scenario)
    assert f"The race emptied another name instead: {CELL}." in text and "also emptied" not in text
    both = {**only_cell, "regional_name_emptied": True, "emptied_endpoints": [CELL, LEGACY_ENDPOINT]}
    text = story_html(both, [], clock, [], [], scenario)
    assert f"The race also emptied: {CELL}." in text and "instead" not in text
