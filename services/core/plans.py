"""Endpoints and the Planner's regional plan.

One plan covers every endpoint (IPv4 and IPv6 share capacity). Each endpoint
is the apex of its own hosted zone, so no lock ever spans two endpoints. The
plan names each endpoint's record tree (`tree_id`), so every enactor that
installs the same plan writes the same records: updates are idempotent.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

LEGACY_ENDPOINT = "dynamodb.us-east-1.amazonaws.com"
DUALSTACK_ENDPOINT = "dynamodb.us-east-1.api.aws"
FIPS_ENDPOINT = "dynamodb-fips.us-east-1.amazonaws.com"
ACCOUNT_ZONE = "ddb.us-east-1.api.aws"  # <accountid>.ddb.us-east-1.api.aws CNAME the legacy name


def account_ids(listed: tuple[str, ...], total: int) -> list[str]:
    """`total` twelve-digit account ids: the listed ones first, then generated ones (100000000000...)."""
    ids = list(dict.fromkeys(listed))[:total]
    taken, n = set(ids), 100000000000
    while len(ids) < total:
        if str(n) not in taken:
            ids.append(str(n))
        n += 1
    return ids


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    dual_stack: bool = False

    @property
    def zone(self) -> str:
        return self.name


def cell_endpoint(n: int) -> Endpoint:
    return Endpoint(f"cell-{n}.ddb.us-east-1.amazonaws.com")


# Processing order matters to the race: an enactor walks endpoints in this
# order, so the later an endpoint comes, the staler a slow enactor's plan is
# by the time it gets there. The legacy regional name comes last.
DEFAULT_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(DUALSTACK_ENDPOINT, dual_stack=True),
    Endpoint(FIPS_ENDPOINT),
    cell_endpoint(1),
    cell_endpoint(2),
    Endpoint(LEGACY_ENDPOINT),
)


@dataclass(frozen=True, slots=True)
class LoadBalancer:
    lb_id: str
    ipv4: str
    ipv6: str
    availability_zone: str
    capacity: int = 100
    healthy: bool = True
    endpoints: tuple[str, ...] = ()  # empty: serves every endpoint


def lb_address(prefix: str, i: int) -> str:
    """LB i's address: PREFIX+i, carrying on into the next /24 past 255 (127.0.1. and 300 give
    127.0.2.44), so a fleet of us-east-1's size fits on loopback."""
    return str(ipaddress.IPv4Address(prefix + "0") + i)


@dataclass(frozen=True, slots=True)
class Target:
    lb_id: str
    ipv4: str
    ipv6: str
    weight: int


@dataclass(frozen=True, slots=True)
class EndpointPlan:
    endpoint: str
    tree_id: str
    targets: tuple[Target, ...]
    dual_stack: bool = False

    @property
    def zone(self) -> str:
        return self.endpoint


@dataclass(frozen=True, slots=True)
class Plan:
    generation: int
    created_at: float  # simulated seconds
    endpoints: tuple[EndpointPlan, ...]
    trace_parent: str = ""  # W3C traceparent of the span that published it

    def for_endpoint(self, name: str) -> EndpointPlan:
        for ep in self.endpoints:
            if ep.endpoint == name:
                return ep
        raise KeyError(name)
