"""A local Prometheus for `racelab run`, its HTTP API, and the run's alert timeline.

The configuration is deploy/prometheus/prometheus.yml, the same file and the
same rule files Kubernetes uses; the run only fills in its targets (one per
process of the topology, labelled job=<service>, instance=<instance>) and
keeps the TSDB in the run directory. Prometheus is Debian's package
(`apt-get install prometheus`); without it the run goes on and says so.
"""

from __future__ import annotations

import html
import json
import shlex
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml
from rich.markup import escape

from services.lab.live.topology import Topology
from services.runtime.clock import SimClock

DEPLOY_DIR = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"
PORT_OFFSET = 990  # Prometheus listens on base_port + 990
INSTALL_HINT = "apt-get install prometheus (Debian's package) and racelab run starts one"


class PrometheusError(Exception):
    """Prometheus could not start, or its API answered with an error."""


def binary() -> str | None:
    return shutil.which("prometheus")


def listen_address(topology: Topology, host: str = "127.0.0.1") -> str:
    return f"{host}:{topology.base_port + PORT_OFFSET}"


def write_run_config(topology: Topology, directory: Path) -> Path:
    """directory/prometheus.yml: the committed config with absolute paths, and the run's targets beside it.

    Prometheus resolves a relative path in its config against the config file's folder, not the
    working directory: every path written here is absolute."""
    directory = directory.absolute()
    source = DEPLOY_DIR / "prometheus.yml"
    if not source.exists():
        raise PrometheusError(f"{source} is missing: run racelab from its source checkout")
    config = yaml.safe_load(source.read_text())
    config["rule_files"] = [str(DEPLOY_DIR / pattern) for pattern in config.get("rule_files", [])]
    for job in config["scrape_configs"]:
        for sd in job.get("file_sd_configs", []):
            sd["files"] = [str(directory / pattern) for pattern in sd["files"]]
    (directory / "targets").mkdir(parents=True, exist_ok=True)
    targets = [{"targets": [p.metrics], "labels": {"job": p.service, "instance": p.instance}}
               for p in topology.processes]
    (directory / "targets" / "racelab.json").write_text(json.dumps(targets, indent=2) + "\n")
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def write_browse_config(directory: Path) -> Path:
    """A config with nothing to scrape and no rules: for looking at a finished run's TSDB."""
    path = directory / "browse.yml"
    path.write_text(yaml.safe_dump({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}}))
    return path


class Prometheus:
    """One Prometheus process and a small client of its HTTP API."""

    def __init__(self, process: subprocess.Popen, listen: str):
        self.process = process
        self.url = f"http://{listen}"

    @classmethod
    def start(cls, config: Path, data: Path, listen: str, log: Path, timeout: float = 20.0) -> "Prometheus":
        exe = binary()
        if exe is None:
            raise PrometheusError(f"prometheus is not installed: {INSTALL_HINT}")
        from services.runtime.service import ConfigError, check_port_free
        try:
            check_port_free(listen, "Prometheus")
        except ConfigError as exc:
            raise PrometheusError(str(exc)) from None
        data.mkdir(parents=True, exist_ok=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            process = subprocess.Popen(
                [exe, f"--config.file={config}", f"--storage.tsdb.path={data}", f"--web.listen-address={listen}",
                 "--enable-feature=exemplar-storage", "--storage.tsdb.retention.time=3650d", "--log.level=warn"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        prometheus = cls(process, listen)
        prometheus.wait_ready(timeout, log)
        return prometheus

    def wait_ready(self, timeout: float, log: Path) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
                raise PrometheusError(f"prometheus exited with code {self.process.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise PrometheusError(f"prometheus not ready on {self.url} after {timeout:.0f}s (log: {log})")

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def api(self, path: str, **params: object) -> object:
        return api(self.url, path, **params)


def api(url: str, path: str, **params: object) -> object:
    """GET url/api/v1/<path>; the `data` of a success, PrometheusError with Prometheus's message otherwise."""
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    try:
        with urllib.request.urlopen(f"{url}/api/v1/{path}?{query}", timeout=30) as reply:
            body = json.loads(reply.read())
    except urllib.error.HTTPError as exc:  # 4xx/5xx still carry Prometheus's JSON error
        try:
            body = json.loads(exc.read())
        except ValueError:
            raise PrometheusError(f"{path}: HTTP {exc.code}") from None
    except (OSError, ValueError) as exc:
        raise PrometheusError(f"{path}: {exc}") from None
    if body.get("status") != "success":
        raise PrometheusError(f"{path}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]


def query_range(url: str, expr: str, start: float, end: float, step: float = 1.0) -> list[dict]:
    return api(url, "query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step:g}")["result"]


# ---- the alert timeline ----

@dataclass(frozen=True)
class AlertSpan:
    """One stretch during which an alert fired (wall-clock Unix times)."""

    alert: str
    labels: dict[str, str]  # the alert's labels but alertname and severity (endpoint, client, job, ...)
    severity: str
    fired: float
    resolved: float | None  # None: still firing when the timeline ends

    def describe(self) -> str:
        return self.alert + ("{" + ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items())) + "}"
                             if self.labels else "")


def alert_timeline(prometheus_url: str, start: float, end: float, step: float = 1.0) -> list[AlertSpan]:
    """Every firing stretch of every alert between start and end, in the order they fired.

    From Prometheus's own ALERTS series, so the times are those of rule evaluations
    (to `step`): an alert resolved between two steps counts as resolved at the later one."""
    spans = []
    for series in query_range(prometheus_url, 'ALERTS{alertstate="firing"}', start, end, step):
        metric = dict(series["metric"])
        name, severity = metric.pop("alertname", "?"), metric.pop("severity", "")
        for key in ("__name__", "alertstate"):
            metric.pop(key, None)
        times = [float(t) for t, _ in series["values"]]
        first = times[0]
        for prev, now in zip(times, times[1:] + [None]):
            if now is None or now - prev > 1.5 * step:
                resolved = prev + step if prev + step <= end else None
                spans.append(AlertSpan(name, metric, severity, first, resolved))
                first = now
    return sorted(spans, key=lambda s: (s.fired, s.alert, sorted(s.labels.items())))


def _pdt(clock: SimClock, wall: float | None) -> str | None:
    return None if wall is None else clock.pdt(clock.schedule.sim_at(wall - clock.wall_start))


def alert_timeline_rows(spans: list[AlertSpan], clock: SimClock) -> list[dict]:
    """The timeline as plain rows (alerts.json), with simulated PDT times beside the wall times."""
    return [{**asdict(s), "fired_pdt": _pdt(clock, s.fired), "resolved_pdt": _pdt(clock, s.resolved)}
            for s in spans]


def alert_timeline_html(rows: list[dict]) -> str:
    """An HTML fragment for report.html: one line per firing stretch, in the order the alerts fired."""
    if not rows:
        return "<h2>Alerts</h2><p>No alert fired (or Prometheus did not run).</p>"
    lines = ["<h2>Alerts, in the order they fired</h2>",
             "<table style='border-collapse:collapse;font-size:90%'>",
             "<tr><th align=left>fired (PDT)</th><th align=left>resolved (PDT)</th>"
             "<th align=left>alert</th><th align=left>severity</th></tr>"]
    for row in rows:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(row["labels"].items()))
        lines.append(f"<tr><td>{html.escape(row['fired_pdt'] or '')}</td>"
                     f"<td>{html.escape(row['resolved_pdt'] or 'still firing')}</td>"
                     f"<td>{html.escape(row['alert'])} <small>{html.escape(labels)}</small></td>"
                     f"<td>{html.escape(row['severity'])}</td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


def load_alert_timeline(run_dir: Path) -> list[dict]:
    path = run_dir / "alerts.json"
    return json.loads(path.read_text()) if path.exists() else []


# ---- what `racelab run` calls ----

class RunPrometheus:
    """The run's Prometheus: started before the processes, stopped after the alert timeline is written."""

    def __init__(self, prometheus: Prometheus, started: float):
        self.prometheus = prometheus
        self.started = started

    @property
    def url(self) -> str:
        return self.prometheus.url

    @classmethod
    def start(cls, run_dir: Path, topology: Topology) -> "RunPrometheus":
        directory = run_dir.absolute() / "prometheus"  # the config's paths must not be relative
        config = write_run_config(topology, directory)
        prometheus = Prometheus.start(config, directory / "data", listen_address(topology),
                                      run_dir / "logs" / "prometheus.log")
        return cls(prometheus, time.time())

    def finish(self, run_dir: Path, topology: Topology, clock: SimClock, end: float, console) -> None:
        """Write alerts.json (the run's alert timeline), stop Prometheus, say how to look at the run again."""
        try:
            rows = alert_timeline_rows(alert_timeline(self.url, self.started, end), clock)
            (run_dir / "alerts.json").write_text(json.dumps(rows, indent=2) + "\n")
        except PrometheusError as exc:
            console.print(f"[yellow]no alert timeline: {escape(str(exc))}[/yellow]")
        finally:
            self.prometheus.stop()
        console.print(f"[dim]Prometheus stopped; to look at this run again: "
                      f"{escape(self.browse_command(run_dir, topology))}[/dim]", soft_wrap=True)  # one line to copy

    @staticmethod
    def browse_command(run_dir: Path, topology: Topology) -> str:
        """How to look at the run in Prometheus once it is over: absolute, quoted paths, so the
        command works from any directory and with any run directory name. Exemplar storage on, as
        in the run: the WAL holds the exemplars, and without the flag the dashboards' trace links die."""
        run_dir = run_dir.absolute()
        config = write_browse_config(run_dir / "prometheus")
        return shlex.join(["prometheus", f"--config.file={config}",
                           f"--storage.tsdb.path={run_dir / 'prometheus' / 'data'}",
                           f"--web.listen-address={listen_address(topology)}",
                           "--enable-feature=exemplar-storage"])
