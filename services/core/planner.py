"""The DNS Planner: LB health and capacity in, one regional plan out.

If the Planner fails, the worst outcome is "no new plan": DNS stays as it is.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from typing import Iterable

from .plans import Endpoint, EndpointPlan, LoadBalancer, Plan, Target
from .records import MAX_WEIGHT


class UnknownLoadBalancer(KeyError):
    pass


class EndpointUnserved(LookupError):
    """No registered LB serves an endpoint yet: its tree would have no address."""


class Planner:
    def __init__(self, endpoints: Iterable[Endpoint], rng: random.Random, *, last_generation: int = 0):
        self.endpoints = tuple(endpoints)
        self.fleet: dict[str, LoadBalancer] = {}
        self.drained_zones: set[str] = set()
        self.last_generation = last_generation
        self._rng = rng

    def register(self, lb: LoadBalancer) -> None:
        """Add (or replace) a load balancer; operators' "add capacity" lands here too."""
        self.fleet[lb.lb_id] = lb

    def report_health(self, lb_id: str, healthy: bool, capacity: int | None = None) -> None:
        if lb_id not in self.fleet:
            raise UnknownLoadBalancer(lb_id)
        lb = self.fleet[lb_id]
        self.fleet[lb_id] = replace(lb, healthy=healthy, capacity=lb.capacity if capacity is None else capacity)

    def shift_traffic(self, availability_zone: str, away: bool = True) -> None:
        (self.drained_zones.add if away else self.drained_zones.discard)(availability_zone)

    def unserved_endpoints(self) -> list[str]:
        """Endpoints no registered LB serves (yet)."""
        return [ep.name for ep in self.endpoints if not self._serving(ep)]

    def next_plan(self, now: float) -> Plan:
        # A tree with no target is a root Route 53 will not alias to: every enactor's
        # flip of it would be rejected. A fleet still coming up gets no plan yet.
        serving = [self._serving(ep) for ep in self.endpoints]
        unserved = [ep.name for ep, lbs in zip(self.endpoints, serving) if not lbs]
        if unserved:
            raise EndpointUnserved(f"no load balancer serves {', '.join(unserved)} yet")
        self.last_generation += 1
        return Plan(self.last_generation, now, tuple(map(self._plan_endpoint, self.endpoints, serving)))

    def _serving(self, ep: Endpoint) -> list[LoadBalancer]:
        return [lb for lb in self.fleet.values() if not lb.endpoints or ep.name in lb.endpoints]

    def _plan_endpoint(self, ep: Endpoint, serving: list[LoadBalancer]) -> EndpointPlan:
        usable = [lb for lb in serving
                  if lb.healthy and lb.capacity > 0 and lb.availability_zone not in self.drained_zones]
        # Fail open: a plan that names no LB would empty the endpoint on purpose.
        chosen = usable or serving
        top = max((lb.capacity for lb in chosen), default=1) or 1
        targets = tuple(Target(lb.lb_id, lb.ipv4, lb.ipv6, max(1, round(MAX_WEIGHT * lb.capacity / top)))
                        for lb in sorted(chosen, key=lambda lb: lb.lb_id))
        tree_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        return EndpointPlan(ep.name, tree_id, targets, ep.dual_stack)
