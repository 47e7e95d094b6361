"""Scrape every process's /metrics and keep the series a run's view and report need."""

from __future__ import annotations

import json
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, tuple[tuple[str, str], ...]]  # (sample name, sorted labels)


# Histogram buckets and _created stamps are most of the text and nothing of a run's view or
# report; parsing them took a fifth of a core during the race (Prometheus scrapes them all).
_UNUSED_SUFFIXES = ("_bucket", "_created")
# Except where a run's summary reads a bucket: DNS queries that waited long in the authority's socket.
_KEPT_BUCKETS = ("racelab_dns_udp_queue_wait_seconds_bucket",)


def _kept(line: str) -> bool:
    if line.startswith("# "):
        return line[7:].startswith("racelab_")  # "# HELP " / "# TYPE "
    name = line.partition("{")[0].partition(" ")[0]
    return name.startswith("racelab_") and (not name.endswith(_UNUSED_SUFFIXES) or name in _KEPT_BUCKETS)


def scrape(url: str, timeout: float = 0.5) -> dict[Key, float]:
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        text = reply.read().decode()
    out: dict[Key, float] = {}
    kept = "\n".join(line for line in text.splitlines() if _kept(line))
    for family in text_string_to_metric_families(kept + "\n"):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@dataclass
class Series:
    """Every racelab_* sample over simulated time, appended to metrics.jsonl as it comes."""

    path: Path
    points: dict[Key, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    latest: dict[Key, float] = field(default_factory=dict)

    def add(self, sim: float, instance: str, samples: dict[Key, float]) -> None:
        rows = []
        for (name, labels), value in samples.items():
            key = (name, labels + (("instance", instance),))
            self.points[key].append((sim, value))
            self.latest[key] = value
            rows.append([name, dict(key[1]), value])
        with self.path.open("a") as f:
            f.write(json.dumps({"sim": round(sim, 3), "instance": instance, "samples": rows}) + "\n")

    def value(self, name: str, **labels: str) -> float | None:
        for (n, ls), v in self.latest.items():
            if n == name and all(dict(ls).get(k) == val for k, val in labels.items()):
                return v
        return None

    def values(self, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {ls: v for (n, ls), v in self.latest.items()
                if n == name and all(dict(ls).get(k) == val for k, val in labels.items())}

    def total(self, name: str, **labels: str) -> float:
        return sum(self.values(name, **labels).values())

    def history(self, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], list[tuple[float, float]]]:
        return {ls: pts for (n, ls), pts in self.points.items()
                if n == name and all(dict(ls).get(k) == val for k, val in labels.items())}


def load_series(path: Path) -> Series:
    series = Series(Path("/dev/null"))
    with path.open() as f:
        for line in f:
            row = orjson.loads(line)
            for name, labels, value in row["samples"]:
                key = (name, tuple(sorted(labels.items())))
                series.points[key].append((row["sim"], value))
                series.latest[key] = value
    return series
