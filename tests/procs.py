"""Starting racelab processes for tests: free ports, a fast scenario, readiness, clean stops."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import grpc

from harness.authority import tester_credentials
from services.runtime.auth import read_token, sync_channel

ROOT = Path(__file__).resolve().parents[1]
_credentials: Path | None = None


def credentials() -> Path:
    """One set of credentials for the test session: a run's identities plus "tester" (may do anything)."""
    global _credentials
    if _credentials is None:
        top = Path(tempfile.mkdtemp(prefix="racelab-test-credentials-"))
        atexit.register(shutil.rmtree, top, True)
        _credentials = tester_credentials(top / "credentials")
    return _credentials


def token(identity: str = "tester") -> str:
    return read_token(credentials() / f"{identity}.token")


def channel(target: str, identity: str = "tester") -> grpc.Channel:
    """A blocking channel that authenticates as `identity`."""
    return sync_channel(target, token(identity))


def auth_env(identity: str = "tester") -> dict[str, str]:
    """The settings that give a process `identity` and the session's ACL."""
    return {"RACELAB_TOKEN_FILE": str(credentials() / f"{identity}.token"),
            "RACELAB_ACL_FILE": str(credentials() / "acl.yaml")}

# 60x: ten wall seconds are ten simulated minutes.
FAST_SCENARIO = """\
name: test-fast
seed: 7
epoch: "2025-10-19T23:30:00-07:00"
schedule:
  - {{wall: 0, pdt: "23:30"}}
  - {{wall: 10, pdt: "23:40"}}
end: "23:59"
fleet:
  load_balancers: {load_balancers}
  availability_zones: [use1-az1, use1-az2, use1-az4]
planner:
  start_generation: 110
  plan_interval_seconds: {plan_interval}
"""


def write_scenario(path: Path, plan_interval: float = 30.0, load_balancers: int = 3, extra: str = "") -> Path:
    path.write_text(FAST_SCENARIO.format(plan_interval=plan_interval, load_balancers=load_balancers) + extra)
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def env_for(scenario: Path, wall_start: float | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RACELAB_")}
    env.update(PYTHONPATH=str(ROOT), RACELAB_SCENARIO=str(scenario),
               RACELAB_WALL_START=str(wall_start if wall_start is not None else time.time()),
               RACELAB_LOG_LEVEL="WARNING", **auth_env())
    env.update(extra)
    return env


def start(module: str, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    out = open(log, "ab")
    return subprocess.Popen([sys.executable, "-m", module, *args], env=env, cwd=ROOT, stdout=out,
                            stderr=subprocess.STDOUT)


def wait_serving(target: str, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until something accepts gRPC connections on `target`.

    (Not the gRPC health service: services/runtime registers the sync
    HealthServicer on an aio server, and its Check fails under the aio
    interceptor - reported to the lead.)
    """
    deadline = time.monotonic() + timeout
    while True:
        with grpc.insecure_channel(target) as ch:
            try:
                grpc.channel_ready_future(ch).result(timeout=0.2)
                return
            except grpc.FutureTimeoutError:
                pass
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before serving on {target}")
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing serving on {target} after {timeout}s")


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        return r.read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def run_to_exit(module: str, args: list[str], env: dict[str, str], timeout: float = 15.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def require_binary(name: str, package: str) -> str:
    """The path of a Debian tool a test needs: skipped where it is missing, a failure under CI (which installs it)."""
    import pytest
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is missing: .ci/run installs {package}")
        pytest.skip(f"{name} not installed (apt-get install {package})")
    return path


def event_time(span: dict, name: str, **attrs: str) -> int | None:
    """Wall time (ns) of the span's first event `name` whose attributes include `attrs`."""
    for ev in span.get("events", []):
        values = {a["key"]: next(iter(a["value"].values()), None) for a in ev.get("attributes", [])}
        if ev["name"] == name and all(values.get(k) == v for k, v in attrs.items()):
            return int(ev["timeUnixNano"])
    return None
