"""The pytest plugin, as a user's test suite sees it (the pytest11 entry point loads it)."""

from __future__ import annotations

from spanfactory import span, write_traces

pytest_plugins = ["pytester"]

USER_TESTS = '''
def test_no_stale_flip(assert_traces):
    assert_traces("""
- name: no-stale-flip
  select: {name: flip}
  monotonic: {value: racelab.plan.generation}
""")

def test_spans_are_there(racelab_spans):
    assert len(racelab_spans) == 3
'''


def test_fixtures_give_the_run_spans_and_assert_traces_fails_with_the_report(pytester, tmp_path):
    pytester.makepyfile(USER_TESTS)
    good = write_traces(tmp_path / "good.jsonl", [span("flip", i, attrs={"racelab.plan.generation": g})
                                                  for i, g in enumerate((110, 111, 112))])
    bad = write_traces(tmp_path / "bad.jsonl", [span("flip", i, attrs={"racelab.plan.generation": g})
                                                for i, g in enumerate((110, 145, 111))])
    pytester.runpytest_subprocess(f"--racelab-traces={good}").assert_outcomes(passed=2)
    result = pytester.runpytest_subprocess(f"--racelab-traces={bad}")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*FAIL  no-stale-flip*", "*racelab.plan.generation went back*"])


def test_without_a_run_the_tests_that_need_one_skip(pytester, monkeypatch):
    monkeypatch.delenv("RACELAB_TRACES", raising=False)
    pytester.makepyfile(USER_TESTS)
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*pass --racelab-traces PATH*"])
