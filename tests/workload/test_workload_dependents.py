"""The live Support Center dependent: a NODATA answer is served as invalid, and only a validating
fallback takes it to the dual-stack name."""

import asyncio
import random

from prometheus_client import CollectorRegistry

from services.core.fixes import Fix
from services.core.plans import DUALSTACK_ENDPOINT
from services.runtime.ddbcall import LoadBalancers
from services.runtime.dnsclient import NoData
from services.runtime.scenario import load_scenario
from racelab.v1 import dwfm_pb2
from services.workload.dependents import Dependents

SCENARIO = load_scenario("oct-2025")


class EveryNameEmpty:
    def __init__(self):
        self.asked = []

    async def lookup(self, name, qtype):
        self.asked.append(name)
        raise NoData(name, qtype)


def dependents(fixes=frozenset()):
    resolver = EveryNameEmpty()
    d = Dependents(scenario=SCENARIO.with_overrides(fixes=fixes), resolver_for=lambda dep: resolver,
                   lbs=LoadBalancers(1), dwfm=None, nlb=None, sim_now=lambda: 0.0, sim_rate=lambda: 1.0,
                   rng=random.Random(1), registry=CollectorRegistry())
    return d, resolver


def test_support_center_serves_invalid_responses_and_does_not_fall_back():
    d, resolver = dependents()
    assert asyncio.run(d.call("support_center")) == "invalid"
    assert DUALSTACK_ENDPOINT not in resolver.asked
    assert d.metrics.support_responses.labels("invalid", "not_taken")._value.get() == 1


def test_a_validating_fallback_goes_to_the_dual_stack_name():
    d, resolver = dependents(frozenset({Fix.VALIDATING_FALLBACK}))
    asyncio.run(d.call("support_center"))
    assert resolver.asked[-1] == DUALSTACK_ENDPOINT
    assert d.metrics.support_responses.labels("invalid", "taken")._value.get() == 1


class DwfmHeard:
    """DWFM's stub: the EC2 customers' calls in the order they came, and how many were in flight at once."""

    def __init__(self):
        self.calls = []
        self.flying = self.most_flying = 0
        self.next_id = 0

    async def DescribeFleet(self, request, timeout=None):
        return dwfm_pb2.DescribeFleetResponse(instances_running=5000)

    async def _call(self, what, request):
        if request.group != "redshift":  # Redshift's replacement hosts are asked for at the tick
            self.calls.append((what, request.due_sim_seconds, request.count))
        self.flying += 1
        self.most_flying = max(self.most_flying, self.flying)
        await asyncio.sleep(0.001)
        self.flying -= 1

    async def RunInstances(self, request, timeout=None):
        await self._call("run", request)
        ids = [f"i-{self.next_id + k}" for k in range(request.count)]
        self.next_id += request.count
        return dwfm_pb2.RunInstancesResponse(instance_ids=ids)

    async def TerminateInstances(self, request, timeout=None):
        await self._call("terminate", request)
        return dwfm_pb2.TerminateInstancesResponse()


def test_a_tick_makes_its_customers_calls_at_once_in_order_each_stamped_with_when_it_fell_due():
    # At 760x a tick covers minutes of the customers' calls; one after another they took longer than
    # the tick, and each reached DWFM and Network Manager later than it was made.
    clock = [0.0]
    dwfm = DwfmHeard()
    d = Dependents(scenario=SCENARIO, resolver_for=lambda dep: EveryNameEmpty(), lbs=LoadBalancers(1), dwfm=dwfm,
                   nlb=None, sim_now=lambda: clock[0], sim_rate=lambda: 760.0, rng=random.Random(1),
                   registry=CollectorRegistry())
    asyncio.run(d.launch_tick())
    clock[0] = 900.0
    asyncio.run(d.launch_tick())
    made = dwfm.calls
    assert {what for what, _, _ in made} == {"run", "terminate"} and len(made) >= 30
    dues = [due for _, due, _ in made]
    assert dues == sorted(dues) and 0.0 < dues[0] and dues[-1] <= 900.0
    assert all(count > 0 for _, _, count in made)
    assert dwfm.most_flying > 1  # made together, not one after another
