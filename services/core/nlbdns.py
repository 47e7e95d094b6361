"""How an NLB appears in DNS: one name per NLB in the ELB hosted zone, an A record set
with one address per zone node in service (as an NLB's regional name does).

The nodes' addresses are stable labels (127.0.2.k locally): a client resolves the
name, picks a node and connects through it (the nlb service's Connect).
"""

from __future__ import annotations

from services.core.records import RecordSet, RRType

NLB_ZONE = "elb.us-east-1.amazonaws.com"
NODE_TTL_SECONDS = 60  # simulated; what clients may cache a node list for
NODE_PREFIX = "127.0.2."


def nlb_name(nlb: str) -> str:
    return f"{nlb}.{NLB_ZONE}"


def node_addresses(nlbs: tuple[str, ...], zones: tuple[str, ...], prefix: str = NODE_PREFIX
                   ) -> dict[tuple[str, str], str]:
    """(nlb, zone) -> the node's address: NLB i (0-based), zone j -> prefix + (i * zones + j + 1)."""
    return {(n, z): f"{prefix}{i * len(zones) + j + 1}" for i, n in enumerate(nlbs) for j, z in enumerate(zones)}


def record_set(nlb: str, addresses: list[str], ttl: int = NODE_TTL_SECONDS) -> RecordSet:
    return RecordSet(nlb_name(nlb), RRType.A, ttl, tuple(sorted(addresses)))
