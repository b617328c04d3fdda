"""The tables contract: item writes checked against the version they expect, at commit.

A write op carries the version its writer saw (0: the item was absent; None: no check). The
store applies it only if the item still has that version, else the whole unit fails with
``WriteConflict``; the new version is the old one plus one. The store writes the change
record of a table with a change stream in the same unit, numbered from the shard's head at
that moment, so records are in commit order per key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from squall.model.tables import KeyValue, TableConfig


class TableWrite(msgspec.Struct, frozen=True, kw_only=True):
    table: str
    pk: KeyValue
    sk: KeyValue | None
    action: str  # "put", "delete", or "check" (only the version is checked)
    expect: int | None  # the version the writer saw; 0: absent; None: whatever it is
    keys: bytes  # the key as a JSON object, for errors and change records
    item: bytes | None = None  # JSON, for a put
    entries: list[tuple[str, KeyValue, KeyValue | None]] = []  # (index, partition, sort)
    expires_at: float | None = None
    stream: str | None = None  # the table's stream view; None: no change record


class ExpireItems(msgspec.Struct, frozen=True):
    """Delete up to ``limit`` items of ``table`` whose TTL passed ``now`` (REMOVE records
    marked as TTL removals)."""

    table: str
    now: float
    stream: str | None
    limit: int = 1000


class PutTable(msgspec.Struct, frozen=True):
    table: TableConfig


class DropTable(msgspec.Struct, frozen=True):
    """Remove a table made through the admin API, its items and its change stream."""

    name: str


TableOp = TableWrite | ExpireItems | PutTable | DropTable


class StoredItem(msgspec.Struct, frozen=True):
    item: bytes  # JSON
    version: int
    pk: KeyValue
    sk: KeyValue | None
    isk: KeyValue | None = None  # the index sort value, in an index query


class TableStore(Protocol):
    async def list_tables(self) -> list[TableConfig]:
        """The tables made through the admin API, by name."""
        ...

    async def get_item(
        self, table: str, pk: KeyValue, sk: KeyValue | None, now: float
    ) -> StoredItem | None:
        """The item, unless absent or past its TTL."""
        ...

    async def query_items(
        self,
        table: str,
        pk: KeyValue,
        *,
        index: str | None,
        sort: tuple[str, Sequence[KeyValue]] | None,
        after: Sequence[KeyValue | None] | None,
        limit: int,
        descending: bool,
        now: float,
    ) -> list[StoredItem]:
        """Items of one partition (of the table or ``index``) in sort order; ``after`` is the
        position of the last item of the previous page (sort, then pk and sk for an index)."""
        ...

    async def scan_items(
        self, table: str, *, after: Sequence[KeyValue | None] | None, limit: int, now: float
    ) -> list[StoredItem]:
        """Items in (pk, sk) order after the position ``after``."""
        ...

    async def count_items(self, table: str, now: float) -> int: ...
