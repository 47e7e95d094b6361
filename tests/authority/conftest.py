"""Fixtures: a real authority process on free ports with a temporary state dir."""

from __future__ import annotations

import pytest

from harness.authority import AuthorityProcess, fleet_planner, install_plan


@pytest.fixture
def authority(tmp_path):
    """A fresh authority; stopped (SIGTERM) at the end of the test."""
    procs: list[AuthorityProcess] = []

    def start(state_dir=None, **kw) -> AuthorityProcess:
        auth = AuthorityProcess(state_dir or tmp_path / "state", **kw).start()
        procs.append(auth)
        return auth

    yield start
    for p in procs:
        p.stop()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One authority for a module, with plan 110 installed and active on every endpoint."""
    planner = fleet_planner()
    plan = planner.next_plan(0.0)
    auth = AuthorityProcess(tmp_path_factory.mktemp("served") / "state").start()
    install_plan(auth, plan)
    auth.plan = plan
    auth.planner = planner
    yield auth
    auth.stop()
