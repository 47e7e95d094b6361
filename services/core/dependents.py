"""The services that depend on DynamoDB and EC2, as decisions without I/O.

- `SqsPoller`: Lambda's SQS poller. After `wedge_after` failed polls in a row it
  wedges and polls no more until someone restarts it (INCIDENT.md §3: restored
  by hand at 04:40, it did not recover by itself).
- `Customers`: EC2 customers. They terminate a share of their instances every
  hour and want each one replaced, and their NLB-backed apps scale out; what
  cannot be launched is retried later, so demand piles up while launches fail
  and arrives all at once when they work again.
- `RedshiftClusters`: now and then a node's host fails and its cluster is
  "modifying" until a replacement host launches; while launches fail, clusters
  pile up stuck modifying.
- `SupportCenter`: its backend reads DynamoDB; a NODATA answer (NOERROR, no
  addresses) comes back as an empty record with a success status: an invalid
  response. The fallback triggers on failed responses only, so it was not taken
  (with the validating-fallback fix it checks the answer too).
- `TaskLaunches`: ECS/EKS/Fargate tasks of the NLB-backed apps, one per new
  instance; a task is stopped unless its target passes the NLB's health checks
  by the end of its start grace period, so tasks fail while launches fail and
  while new instances lack network.
- `internal_reachable`: STS and IAM console sign-in are internal callers: after
  the operators' mitigate-internal they reach DynamoDB another way.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Callable, Iterable


@dataclass(frozen=True)
class DependentsConfig:
    sqs_wedge_after: int = 5
    churn_per_hour: float = 0.04  # share of running instances terminated (and to be replaced) per hour
    customer_growth_per_hour: float = 600.0  # instances EC2 customers want to add per hour
    app_growth_per_hour: float = 12.0  # instances each NLB app wants to add per hour
    app_targets_per_zone: int = 15  # per NLB app at the start
    app_churn_per_hour: float = 0.03
    launch_batch: int = 10  # instances asked for per RunInstances call, at most one call per LAUNCH_PERIOD
    redshift_clusters: int = 40
    redshift_replacements_per_hour: float = 0.5  # per cluster: a node's host fails and is replaced
    task_start_grace_seconds: float = 300.0  # an ECS task's target must be healthy by then, or it is stopped


LAUNCH_PERIOD = 30.0  # simulated seconds: a group of customers makes at most one RunInstances call this often


class SqsPoller:
    def __init__(self, wedge_after: int):
        self.wedge_after = wedge_after
        self.failures_in_a_row = 0
        self.wedged = False
        self.restarts = 0

    def record(self, ok: bool) -> bool:
        """The outcome of one poll; returns True if this poll wedged the poller."""
        if ok:
            self.failures_in_a_row = 0
            return False
        self.failures_in_a_row += 1
        if not self.wedged and self.failures_in_a_row >= self.wedge_after:
            self.wedged = True
            return True
        return False

    def restart(self) -> None:
        self.wedged = False
        self.failures_in_a_row = 0
        self.restarts += 1


@dataclass
class Demand:
    launches: list[int]  # RunInstances calls to make now (instances each): one per LAUNCH_PERIOD elapsed
    times: list[float]  # when each of those calls falls due (simulated), in order
    terminate_times: list[float]  # when each termination to make now fell due, in order

    @property
    def terminate(self) -> int:
        """Instances to terminate now."""
        return len(self.terminate_times)

    @property
    def launch(self) -> int:
        return sum(self.launches)


class Customers:
    """How many instances a group of customers terminates and wants launched, over time."""

    def __init__(self, churn_per_hour: float, growth_per_hour: float, batch: int, rng: random.Random,
                 now: float = 0.0):
        self.churn_per_hour = churn_per_hour
        self.growth_per_hour = growth_per_hour
        self.batch = batch
        self.rng = rng
        self.now = now
        self.wanted = 0.0  # instances wanted and not yet launched
        self._churn_credit = 0.0
        self._periods = 1.0  # the first advance may call at once

    def advance(self, now: float, running: int) -> Demand:
        elapsed = max(0.0, now - self.now)
        hours = elapsed / 3600.0
        self.now = now
        self._periods += elapsed / LAUNCH_PERIOD
        calls = int(self._periods)
        self._periods -= calls
        carried, churned = self._churn_credit, running * self.churn_per_hour * hours
        self._churn_credit += churned
        terminate = int(self._churn_credit + 1e-9)  # a float sum must not lose one
        self._churn_credit = max(0.0, self._churn_credit - terminate)
        # The k-th termination fell due when the churn reached k: spread over the interval as it
        # accrued, not all at its end (Network Manager hears of each when it happens).
        start = now - elapsed
        ends = [min(now, max(start, start + (k - carried) / churned * elapsed)) if churned > 0 else now
                for k in range(1, terminate + 1)]
        before = self.wanted
        self.wanted += terminate + self.growth_per_hour * hours
        # The calls fell due one LAUNCH_PERIOD apart, the last `_periods` periods ago. Each asks for
        # what was wanted by its own time (the new demand grew evenly over the interval), so a driver
        # that advances seldom makes the same calls, at the same times, as one that advances often:
        # what the launch throttle lets through does not depend on it.
        due = [now - (self._periods + j) * LAUNCH_PERIOD for j in range(calls)][::-1]
        launches: list[int] = []
        times: list[float] = []
        asked = 0
        for at in due:
            by_then = before + (self.wanted - before) * ((at - start) / elapsed if elapsed > 0 else 1.0)
            n = min(self.batch, int(by_then + 1e-9) - asked)
            if n > 0:
                launches.append(n)
                times.append(at)
                asked += n
        return Demand(launches, times, ends)

    def launched(self, count: int) -> None:
        self.wanted = max(0.0, self.wanted - count)


def internal_reachable(mitigated: bool, dynamodb_ok: Callable[[], bool]) -> bool:
    """Whether an internal caller (STS, IAM sign-in) reaches DynamoDB: through the regional name until
    the operators' mitigate-internal reconnects it another way (the dual-stack name, never emptied)."""
    return mitigated or dynamodb_ok()


AVAILABLE, MODIFYING = "available", "modifying"
REDSHIFT = "redshift"  # the DWFM group of Redshift's replacement hosts


class RedshiftClusters:
    """Clusters whose nodes' hosts fail now and then (`replacements_per_hour` per cluster, Poisson). A
    cluster with a failed host is MODIFYING and asks for one replacement host per LAUNCH_PERIOD until
    a launch succeeds; nothing else ends the modification. Requests go out `batch` hosts a call."""

    def __init__(self, count: int, replacements_per_hour: float, batch: int, rng: random.Random, now: float = 0.0):
        if count < 1:
            raise ValueError(f"redshift_clusters must be at least 1, got {count}")
        if batch < 1:
            raise ValueError(f"launch_batch must be at least 1, got {batch}")
        self.count = count
        self.batch = batch
        self.rate = replacements_per_hour / 3600.0
        self.rng = rng
        self.now = now
        self.modifying: dict[int, float] = {}  # cluster -> when it may ask for a host again
        self.replaced_total = 0

    def advance(self, now: float) -> list[list[int]]:
        """Hosts fail over the time since the last call; returns the clusters that ask for a
        replacement host now, a batch per RunInstances call (one host each; report with `launched`)."""
        dt = max(0.0, now - self.now)
        self.now = now
        p = 1.0 - math.exp(-self.rate * dt)
        for c in range(self.count):
            if c not in self.modifying and self.rng.random() < p:
                self.modifying[c] = now
        asking = [c for c, at in self.modifying.items() if at <= now]
        for c in asking:
            self.modifying[c] = now + LAUNCH_PERIOD
        return [asking[i:i + self.batch] for i in range(0, len(asking), self.batch)]

    def launched(self, cluster: int) -> None:
        """The cluster's replacement host is up: it is available again."""
        if self.modifying.pop(cluster, None) is not None:
            self.replaced_total += 1

    def available(self) -> int:
        return self.count - len(self.modifying)

    def describe(self, cluster: int) -> str:
        """A customer's look at a cluster: AVAILABLE or MODIFYING."""
        if not 0 <= cluster < self.count:
            raise ValueError(f"no cluster {cluster}; clusters 0..{self.count - 1}")
        return MODIFYING if cluster in self.modifying else AVAILABLE


OK_RESPONSE, INVALID, FAILED = "ok", "invalid", "failed"


def backend_response(outcome: str) -> str:
    """Support Center's backend answer for one DynamoDB read (outcomes as in services/runtime/ddbcall.py).
    NODATA is NOERROR with no answers: the backend returns an empty record with a success status."""
    if outcome == "ok":
        return OK_RESPONSE
    return INVALID if outcome == "dns_nodata" else FAILED


@dataclass(frozen=True)
class SupportCenter:
    validates: bool = False  # the validating-fallback fix: an invalid answer counts as a failure

    def falls_back(self, response: str) -> bool:
        """As built, the fallback triggers on failed responses only; an invalid one is served."""
        return response == FAILED or (self.validates and response == INVALID)


@dataclass
class TaskLaunches:
    """ECS/EKS/Fargate tasks waiting to start: each on its own new instance, started if its NLB target
    is healthy when the start grace period ends, stopped if not."""

    grace_seconds: float
    pending: dict[str, float] = field(default_factory=dict)  # instance -> end of its grace period

    def launched(self, instances: Iterable[str], now: float) -> None:
        for iid in instances:
            self.pending[iid] = now + self.grace_seconds

    def due(self, now: float) -> list[str]:
        """Tasks whose grace period is over: look up their targets' health and `settle` them."""
        return [iid for iid, end in self.pending.items() if end <= now]

    def settle(self, instances: Iterable[str], healthy: Callable[[str], bool | None]) -> tuple[int, int]:
        """Settle due tasks: `healthy(instance)` is whether its target is healthy now, None if it is no
        longer a target (scaled in before it started: no longer a task). Returns (started, stopped)."""
        started = stopped = 0
        for iid in instances:
            if self.pending.pop(iid, None) is None:
                continue
            verdict = healthy(iid)
            if verdict is True:
                started += 1
            elif verdict is False:
                stopped += 1
        return started, stopped
