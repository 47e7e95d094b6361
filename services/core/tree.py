"""A plan's record tree, and reading trees back out of a zone snapshot.

    <endpoint>            A (AAAA) ALIAS -> <tree>.<endpoint>     (the one flip)
    _rollback.<endpoint>  A (AAAA) ALIAS -> previously active tree
    <tree>.<endpoint>     TXT "racelab-tree generation=N"
                          A (AAAA) weighted ALIAS, one per LB -> <leaf>.<endpoint>
    <leaf>.<endpoint>     A <ipv4> (AAAA <ipv6>)

Record names are UUIDs. A tree is written and deleted in single batches, so it
is either wholly there or wholly gone.
"""

from __future__ import annotations

import uuid
from functools import lru_cache

from .plans import EndpointPlan
from .records import Change, RecordSet, RRType, create, delete, upsert
from .zone import ZoneSnapshot

TREE_TAG = "racelab-tree generation="
ROLLBACK_LABEL = "_rollback"


def tree_root(ep: EndpointPlan) -> str:
    return f"{ep.tree_id}.{ep.zone}"


def rollback_name(endpoint: str) -> str:
    return f"{ROLLBACK_LABEL}.{endpoint}"


def address_types(dual_stack: bool) -> tuple[RRType, ...]:
    return (RRType.A, RRType.AAAA) if dual_stack else (RRType.A,)


def tree_records(ep: EndpointPlan, generation: int, ttl: int) -> list[RecordSet]:
    root = tree_root(ep)
    records = [RecordSet(root, RRType.TXT, ttl, (f"{TREE_TAG}{generation}",))]
    for target in ep.targets:
        leaf = f"{_leaf_label(ep.tree_id, target.lb_id)}.{ep.zone}"
        addresses = {RRType.A: target.ipv4, RRType.AAAA: target.ipv6}
        for rtype in address_types(ep.dual_stack):
            records.append(RecordSet(leaf, rtype, ttl, (addresses[rtype],)))
            records.append(RecordSet(root, rtype, set_identifier=target.lb_id,
                                     weight=target.weight, alias_target=leaf))
    return records


@lru_cache(maxsize=1 << 14)
def _leaf_label(tree_id: str, lb_id: str) -> str:
    """A leaf's name: derived from its tree and LB, so every enactor building the tree names it alike
    (remembered: the explorer builds the same trees thousands of times)."""
    return str(uuid.uuid5(uuid.UUID(tree_id), lb_id))


def install_changes(ep: EndpointPlan, generation: int, ttl: int) -> list[Change]:
    return [create(rs) for rs in tree_records(ep, generation, ttl)]


def activation_changes(endpoint: str, dual_stack: bool, new_root: str,
                       rollback_root: str | None) -> list[Change]:
    """The flip: the endpoint's alias and the rollback record, in one batch."""
    changes = []
    for rtype in address_types(dual_stack):
        changes.append(upsert(RecordSet(endpoint, rtype, alias_target=new_root)))
        if rollback_root is not None:
            changes.append(upsert(RecordSet(rollback_name(endpoint), rtype, alias_target=rollback_root)))
    return changes


def tree_generation(snap: ZoneSnapshot, root: str | None) -> int | None:
    """The generation a tree was built for, or None if it is not in the zone."""
    if root is None:
        return None
    meta = snap.get(root, RRType.TXT)
    if meta is None or not meta.values[0].startswith(TREE_TAG):
        return None
    try:
        return int(meta.values[0][len(TREE_TAG):])
    except ValueError:
        return None


def trees_in(snap: ZoneSnapshot) -> dict[str, int]:
    """Every tree in the zone: root name -> generation."""
    trees = {}
    for rs in snap.of_type(RRType.TXT).values():  # a tree's TXT, the lock's: never the zone's addresses
        if rs.values[0].startswith(TREE_TAG):
            generation = tree_generation(snap, rs.name)
            if generation is not None:
                trees[rs.name] = generation
    return trees


def active_tree(snap: ZoneSnapshot, endpoint: str) -> str | None:
    """The tree the endpoint's alias points at (it may no longer exist)."""
    alias = snap.get(endpoint, RRType.A)
    return alias.alias_target if alias is not None and alias.is_alias else None


def rollback_tree(snap: ZoneSnapshot, endpoint: str) -> str | None:
    alias = snap.get(rollback_name(endpoint), RRType.A)
    return alias.alias_target if alias is not None and alias.is_alias else None


def active_generation(snap: ZoneSnapshot, endpoint: str) -> int | None:
    """Generation the endpoint resolves through; None when its tree is missing."""
    return tree_generation(snap, active_tree(snap, endpoint))


def tree_record_sets(snap: ZoneSnapshot, root: str) -> list[RecordSet]:
    """Every record of the tree rooted at `root`, exactly as stored."""
    found = []
    for rtype in (RRType.TXT, RRType.A, RRType.AAAA):
        for rs in snap.rrsets(root, rtype):
            found.append(rs)
            if rs.is_alias:
                found.extend(snap.rrsets(rs.alias_target, rtype))
    return found


def deletion_changes(snap: ZoneSnapshot, roots: list[str]) -> list[Change]:
    return [delete(rs) for root in roots for rs in tree_record_sets(snap, root)]
