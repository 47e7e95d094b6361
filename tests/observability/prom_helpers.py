"""Prometheus for the tests, and runs started the way a user starts them.

A user types `make run` (or `racelab run`) in a shell: from wherever they stand, with the default
run directory or a relative --out, on a terminal and without CI set. The tests that check what
Prometheus saw start their runs that way too, and open the run's TSDB afterwards with the very
command the run printed; an absolute --out once hid that a plain `make run` scraped nothing.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import re
import select
import shlex
import struct
import subprocess
import termios
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import procs

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\r")


def require_binary(name: str, package: str = "prometheus") -> str:
    """The path of a Debian tool the test needs (promtool and prometheus come in `prometheus`)."""
    return procs.require_binary(name, package)


def user_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: this one without CI (which the run reads) and without the
    virtual environment's activation (make finds .venv itself)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "VIRTUAL_ENV", "PYTEST_CURRENT_TEST")}
    return {**env, **extra}


@dataclass
class UserRun:
    output: str  # what the user saw, escape codes removed
    run_dir: Path  # as the run printed it
    browse: list[str]  # the printed "to look at this run again" command, split as a shell would

    def open_tsdb(self, cwd: Path, log: Path, timeout: float = 30.0) -> "Browse":
        """Run the printed command from `cwd` (not where the run was started) and wait for it."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            process = subprocess.Popen(self.browse, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        listen = next(a.split("=", 1)[1] for a in self.browse if a.startswith("--web.listen-address="))
        browse = Browse(process, f"http://{listen}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"the printed command exited with {process.returncode}: "
                                     f"{shlex.join(self.browse)}\n{log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{browse.url}/-/ready", timeout=1) as reply:
                    if reply.status == 200:
                        return browse
            except OSError:
                time.sleep(0.2)
        browse.stop()
        raise AssertionError(f"the printed command did not serve {browse.url} in {timeout:.0f}s")


@dataclass
class Browse:
    process: subprocess.Popen
    url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def parse_user_run(output: str) -> UserRun:
    """The run directory and the look-again command, from what the run printed."""
    text = ANSI.sub("", output)
    found = re.findall(r"^run directory: (.+?)(?:  \(summary\.json.*)?$", text, re.M)
    assert found, "the run printed no run directory:\n" + text[-3000:]
    command = re.findall(r"to look at this run again: (prometheus .+)$", text, re.M)
    assert command, "the run printed no command to look at it again:\n" + text[-3000:]
    return UserRun(text, Path(found[-1].strip()), shlex.split(command[-1]))


def run_as_user(argv: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None,
                terminal: bool = False, columns: int = 100) -> UserRun:
    """`argv` in `cwd`, as from a shell; on a pseudo-terminal of `columns` when `terminal`."""
    env = env if env is not None else user_env()
    if not terminal:
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{shlex.join(argv)} exited {done.returncode}:\n" \
                                     f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return parse_user_run(done.stdout)
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    process = subprocess.Popen(argv, cwd=cwd, env={**env, "TERM": "xterm-256color"}, stdin=secondary,
                               stdout=secondary, stderr=secondary, start_new_session=True)
    os.close(secondary)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"{shlex.join(argv)} still running after {timeout:.0f}s")
            ready, _, _ = select.select([primary], [], [], 1.0)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(primary, 65536)
            except OSError as exc:  # EIO: the terminal's other side closed
                if exc.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            process.wait()
        os.close(primary)
    output = b"".join(chunks).decode(errors="replace")
    assert code == 0, f"{shlex.join(argv)} exited {code}:\n{ANSI.sub('', output)[-3000:]}"
    return parse_user_run(output)
