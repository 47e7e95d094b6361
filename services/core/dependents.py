"""The services that depend on DynamoDB and EC2, as decisions without I/O.

- `SqsPoller`: Lambda's SQS poller. After `wedge_after` failed polls in a row it
  wedges and polls no more until someone restarts it (INCIDENT.md §3: restored
  by hand at 04:40, it did not recover by itself).
- `Customers`: EC2 customers. They terminate a share of their instances every
  hour and want each one replaced, and their NLB-backed apps scale out; what
  cannot be launched is retried later, so demand piles up while launches fail
  and arrives all at once when they work again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class DependentsConfig:
    sqs_wedge_after: int = 5
    churn_per_hour: float = 0.04  # share of running instances terminated (and to be replaced) per hour
    customer_growth_per_hour: float = 600.0  # instances EC2 customers want to add per hour
    app_growth_per_hour: float = 12.0  # instances each NLB app wants to add per hour
    app_targets_per_zone: int = 15  # per NLB app at the start
    app_churn_per_hour: float = 0.03
    launch_batch: int = 10  # instances asked for per RunInstances call, at most one call per LAUNCH_PERIOD


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
    terminate: int  # instances to terminate now
    launches: list[int]  # RunInstances calls to make now (instances each): one per LAUNCH_PERIOD elapsed

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
        self._churn_credit += running * self.churn_per_hour * hours
        terminate = int(self._churn_credit)
        self._churn_credit -= terminate
        self.wanted += terminate + self.growth_per_hour * hours
        wanted = min(int(self.wanted), self.batch * calls)
        return Demand(terminate, [min(self.batch, wanted - i) for i in range(0, wanted, self.batch)])

    def launched(self, count: int) -> None:
        self.wanted = max(0.0, self.wanted - count)
