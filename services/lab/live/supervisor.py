"""Start every process of a local run, watch them, stop them.

The supervisor restarts nothing on its own: a process that exits while the run
is going is a failure, reported with the tail of its log, and the run stops.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.lab.live.topology import ProcessSpec, Topology


class ProcessFailed(Exception):
    def __init__(self, instance: str, code: int | None, log_tail: str):
        self.instance, self.code, self.log_tail = instance, code, log_tail
        super().__init__(f"{instance} exited with code {code}:\n{log_tail}")


@dataclass
class Running:
    spec: ProcessSpec
    popen: subprocess.Popen
    log: Path
    started: float


class Supervisor:
    def __init__(self, topology: Topology, run_dir: Path, common_env: dict[str, str],
                 credentials: Path | None = None):
        self.topology = topology
        self.run_dir = run_dir
        self.common_env = common_env
        self.credentials = credentials  # DIR/<instance>.token and DIR/acl.yaml (services.runtime.credentials)
        self.running: dict[str, Running] = {}
        self.restarting: set[str] = set()  # killed on purpose (chaos), being started again
        self.stopping = False
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)

    def start(self, spec: ProcessSpec) -> Running:
        log = self.run_dir / "logs" / f"{spec.instance}.log"
        env = {**os.environ, **self.common_env, **spec.env,
               "RACELAB_STATE_DIR": str(self.run_dir / "state" / spec.instance)}
        if self.credentials is not None:  # each process's identity is its instance name
            env.update(RACELAB_TOKEN_FILE=str(self.credentials / f"{spec.instance}.token"),
                       RACELAB_ACL_FILE=str(self.credentials / "acl.yaml"))
        Path(env["RACELAB_STATE_DIR"]).mkdir(parents=True, exist_ok=True)
        out = log.open("ab")
        popen = subprocess.Popen([sys.executable, "-m", f"services.{spec.service}"], env=env,
                                 stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
        out.close()
        running = Running(spec, popen, log, time.monotonic())
        self.running[spec.instance] = running
        return running

    async def start_all(self, timeout: float = 30.0, hold: tuple[str, ...] = ()) -> dict[str, float]:
        """Start in dependency order (all but `hold`); wait until each answers.
        Returns seconds to ready per instance."""
        ready: dict[str, float] = {}
        for batch in self.topology.layers(exclude=hold):
            for spec in batch:
                self.start(spec)
            results = await asyncio.gather(*(self._wait_ready(s, timeout) for s in batch))
            ready.update(zip((s.instance for s in batch), results))
        return ready

    async def start_one(self, instance: str, timeout: float = 30.0) -> float:
        spec = self.topology.spec(instance)
        self.start(spec)
        return await self._wait_ready(spec, timeout)

    async def restart(self, instance: str, timeout: float = 30.0) -> float:
        """SIGKILL one process (no clean shutdown) and start it again; seconds until it answers."""
        running = self.running[instance]
        self.restarting.add(instance)
        try:
            os.killpg(running.popen.pid, signal.SIGKILL)
            await asyncio.to_thread(running.popen.wait)
            return await self.start_one(instance, timeout)
        finally:
            self.restarting.discard(instance)

    async def _wait_ready(self, spec: ProcessSpec, timeout: float) -> float:
        running = self.running[spec.instance]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            if running.popen.poll() is not None:  # (check() skips a process being restarted)
                raise ProcessFailed(spec.instance, running.popen.returncode, tail(running.log))
            if await _answers(spec):
                return time.monotonic() - running.started
            await asyncio.sleep(0.1)
        raise ProcessFailed(spec.instance, None, f"not ready after {timeout:.0f}s\n{tail(running.log)}")

    def check(self) -> None:
        """Raise ProcessFailed if any process has exited."""
        for instance, r in self.running.items():
            code = r.popen.poll()
            if code is not None and not self.stopping and instance not in self.restarting:
                raise ProcessFailed(instance, code, tail(r.log))

    def stop_all(self, timeout: float = 10.0) -> dict[str, int | None]:
        """SIGTERM in the reverse of the start order, layer by layer: a process stops only once every process
        that depends on it has exited, so nothing records a dependency's shutdown as a failure of its own
        (a DWFM state check against a fleet already gone). Blocks: call it from a thread."""
        self.stopping = True
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for layer in reversed(self.topology.layers()):
            stopping = [self.running[s.instance] for s in layer if s.instance in self.running]
            for r in stopping:
                if r.popen.poll() is None:
                    r.popen.send_signal(signal.SIGTERM)
            for r in stopping:
                try:
                    codes[r.spec.instance] = r.popen.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(r.popen.pid, signal.SIGKILL)
                    codes[r.spec.instance] = r.popen.wait()
        return codes

    def rss_bytes(self) -> dict[str, int]:
        out = {}
        for instance, r in self.running.items():
            try:
                for line in Path(f"/proc/{r.popen.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        out[instance] = int(line.split()[1]) * 1024
            except OSError:
                pass
        return out


async def _answers(spec: ProcessSpec) -> bool:
    if spec.grpc:
        try:
            async with grpc.aio.insecure_channel(spec.grpc) as ch:
                reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                return reply.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.RpcError:
            return False
    try:
        await asyncio.to_thread(urllib.request.urlopen, f"http://{spec.metrics}/metrics", timeout=0.5)
        return True
    except OSError:
        return False


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
