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
