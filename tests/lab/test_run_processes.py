"""A run's processes: the supervisor stops them in the reverse of their start order (a process gets SIGTERM
only once everything that depends on it has exited, so none records a dependency's shutdown as its own
failure: CI saw a DWFM state check fail against a DynamoDB fleet that had already exited), and the what-if
workers beside them run at the lowest priority in fact, not only in name."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.lab.live.run import lowest_priority
from services.lab.live.supervisor import Running, Supervisor
from services.lab.live.topology import ProcessSpec, Topology, local_topology

# Exits 0.3 s after SIGTERM (a process flushing its last spans), writing when it got the signal.
SLOW_TO_STOP = """
import signal, sys, time
def stop(*_):
    t = time.monotonic()
    time.sleep(0.3)
    open(sys.argv[1], "w").write(repr(t))
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
while True:
    time.sleep(0.05)
"""


def test_layers_put_every_process_after_what_it_depends_on():
    topology = local_topology(30500)
    layers = topology.layers()
    position = {p.instance: i for i, layer in enumerate(layers) for p in layer}
    assert set(position) == {p.instance for p in topology.processes}
    for p in topology.processes:
        assert all(position[d] < position[p.instance] for d in p.depends_on), p.instance
    # The clients held back until the regional name answers are left out and count as started.
    held = topology.layers(exclude=("dwfm", "workload"))
    assert {p.instance for layer in held for p in layer} == set(position) - {"dwfm", "workload"}


def test_stop_all_stops_dependents_before_what_they_depend_on(tmp_path):
    specs = (ProcessSpec("fleet", "x", {}, None, ""), ProcessSpec("checker", "x", {}, None, "", ("fleet",)),
             ProcessSpec("client", "x", {}, None, "", ("checker", "fleet")))
    supervisor = Supervisor(Topology(0, specs, "", "", ""), tmp_path, {})
    for spec in specs:
        popen = subprocess.Popen([sys.executable, "-c", SLOW_TO_STOP, str(tmp_path / spec.instance)])
        supervisor.running[spec.instance] = Running(spec, popen, tmp_path / "log", time.monotonic())
    time.sleep(0.5)  # the handlers are installed
    codes = supervisor.stop_all(timeout=10)
    assert codes == {"client": 0, "checker": 0, "fleet": 0}
    signalled = {name: float((tmp_path / name).read_text()) for name in codes}
    # Each got its signal only after the one depending on it had finished stopping (0.3 s).
    assert signalled["client"] + 0.3 <= signalled["checker"]
    assert signalled["checker"] + 0.3 <= signalled["fleet"]


def _in_an_autogroup() -> bool:
    # The file is empty when the process's CPU share is set by a cgroup instead (a container, a CI runner's
    # slice): there the autogroup's nice has no effect and the plain nice value is what ranks the workers.
    path = Path("/proc/self/autogroup")
    return path.exists() and " nice " in path.read_text()


@pytest.mark.skipif(not _in_an_autogroup(), reason="this process is not scheduled by an autogroup")
def test_what_if_workers_run_in_their_own_autogroup_at_nice_19():
    # With autogroups, nice only ranks processes within a session; the replica's processes each have their
    # own session, so the what-if workers must lower their session's autogroup, not only themselves.
    with concurrent.futures.ProcessPoolExecutor(1, initializer=lowest_priority) as pool:
        worker_group, worker_nice, worker_sid = pool.submit(_scheduling).result()
        policy = pool.submit(os.sched_getscheduler, 0).result()
    mine = _scheduling()
    assert worker_sid != mine[2] and worker_group != mine[0]
    assert worker_nice == 19
    # They start while the race runs: only a core nothing else wants may run them.
    assert policy == os.SCHED_IDLE
    assert os.sched_getscheduler(0) != os.SCHED_IDLE


def _scheduling() -> tuple[str, int, int]:
    group, nice = Path("/proc/self/autogroup").read_text().split(" nice ")
    return group, int(nice), os.getsid(0)
