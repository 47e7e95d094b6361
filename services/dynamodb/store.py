"""The table store every load balancer of the fleet fronts: in memory, versioned items.

An item's version is 1 when it is created and goes up by one with every write;
a condition (expected_version, must_not_exist) is checked and applied
atomically with the write (the store is only touched from one event loop).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field


class ConditionFailed(Exception):
    """DynamoDB's ConditionalCheckFailedException."""


@dataclass
class StoredItem:
    partition_key: str
    sort_key: str
    attributes: dict[str, str]
    version: int


@dataclass
class _Partition:
    items: dict[str, StoredItem] = field(default_factory=dict)
    sort_keys: list[str] = field(default_factory=list)  # kept sorted


@dataclass(frozen=True)
class Condition:
    expected_version: int | None = None
    must_not_exist: bool = False


class TableStore:
    def __init__(self) -> None:
        self._tables: dict[str, dict[str, _Partition]] = {}
        self.count = 0

    def _partition(self, table: str, pk: str, create: bool = False) -> _Partition | None:
        partitions = self._tables.setdefault(table, {}) if create else self._tables.get(table, {})
        part = partitions.get(pk)
        if part is None and create:
            part = partitions[pk] = _Partition()
        return part

    def get(self, table: str, pk: str, sk: str) -> StoredItem | None:
        part = self._partition(table, pk)
        return part.items.get(sk) if part else None

    @staticmethod
    def _check(current: StoredItem | None, cond: Condition | None) -> None:
        if cond is None:
            return
        if cond.must_not_exist and current is not None:
            raise ConditionFailed(f"the item exists (version {current.version})")
        if cond.expected_version is not None:
            if current is None:
                raise ConditionFailed(f"expected version {cond.expected_version}, but the item does not exist")
            if current.version != cond.expected_version:
                raise ConditionFailed(f"expected version {cond.expected_version}, found {current.version}")

    def put(self, table: str, pk: str, sk: str, attributes: dict[str, str],
            cond: Condition | None = None) -> StoredItem:
        part = self._partition(table, pk, create=True)
        current = part.items.get(sk)
        self._check(current, cond)
        item = StoredItem(pk, sk, dict(attributes), current.version + 1 if current else 1)
        if current is None:
            bisect.insort(part.sort_keys, sk)
            self.count += 1
        part.items[sk] = item
        return item

    def put_many(self, table: str, items: list[tuple[str, str, dict[str, str]]]) -> int:
        """Unconditional writes of (partition key, sort key, attributes); returns how many."""
        for pk, sk, attributes in items:
            self.put(table, pk, sk, attributes)
        return len(items)

    def delete(self, table: str, pk: str, sk: str, cond: Condition | None = None) -> bool:
        part = self._partition(table, pk)
        current = part.items.get(sk) if part else None
        self._check(current, cond)
        if current is None:
            return False
        del part.items[sk]
        part.sort_keys.pop(bisect.bisect_left(part.sort_keys, sk))
        self.count -= 1
        return True

    def query(self, table: str, pk: str, limit: int, start_after: str = "") -> tuple[list[StoredItem], str]:
        """Up to `limit` items with sort key > start_after, and the last key if more remain."""
        part = self._partition(table, pk)
        if part is None:
            return [], ""
        start = bisect.bisect_right(part.sort_keys, start_after) if start_after else 0
        keys = part.sort_keys[start:start + limit]
        more = start + limit < len(part.sort_keys)
        return [part.items[k] for k in keys], (keys[-1] if more and keys else "")
