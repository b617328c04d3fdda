"""``ctx.tables``: the tables a function declares in ``permissions``, in the sandbox.

    orders = ctx.tables["orders"]
    order = orders.get({"id": "o-1"})                 # None when absent; "_version" set
    orders.put({"id": "o-1", "status": "open"}, if_not_exists=True)
    orders.update({"id": "o-1"}, set={"status": "paid"}, add={"payments": 1},
                  condition={"status": {"eq": "open"}})
    page = orders.query("c-7", index="by_customer", limit=20)   # {"items", "cursor"}
    ctx.tables.transact([{"op": "put", "table": "orders", "item": {...}},
                         {"op": "update", "table": "stock", "key": {...}, "add": {"n": -1},
                          "condition": {"n": {"gte": 1}}}])

Writes take effect when the invocation succeeds; its own reads see them at once. A failed
condition raises ``squall.ConditionFailed`` naming the table, the key and the condition.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import msgspec


class _Link(Protocol):
    def call(self, op: str, args: dict[str, Any]) -> bytes | None: ...


def _decoded(body: bytes | None) -> Any:
    return None if body is None else msgspec.json.decode(body)


class Table:
    __slots__ = ("_link", "name")

    def __init__(self, link: _Link, name: str) -> None:
        self._link = link
        self.name = name

    def _call(self, op: str, **args: Any) -> Any:
        return _decoded(self._link.call(f"table.{op}", {"table": self.name, **args}))

    def get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._call("get", key=key)
        return item

    def put(
        self,
        item: dict[str, Any],
        *,
        if_not_exists: bool = False,
        if_version: int | None = None,
        condition: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write the whole item; returns it with its new ``_version``."""
        stored: dict[str, Any] = self._call(
            "put", item=item, if_not_exists=if_not_exists, if_version=if_version,
            condition=condition,
        )
        return stored

    def update(
        self,
        key: dict[str, Any],
        *,
        set: dict[str, Any] | None = None,
        remove: list[str] | None = None,
        add: dict[str, float] | None = None,
        if_version: int | None = None,
        condition: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Change some attributes (an absent item is created from its key); returns the
        new item."""
        updated: dict[str, Any] = self._call(
            "update", key=key, set=set, remove=remove, add=add, if_version=if_version,
            condition=condition,
        )
        return updated

    def delete(
        self,
        key: dict[str, Any],
        *,
        if_version: int | None = None,
        condition: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Delete the item; returns what it was (None: absent)."""
        old: dict[str, Any] | None = self._call(
            "delete", key=key, if_version=if_version, condition=condition
        )
        return old

    def query(
        self,
        partition: Any,
        *,
        sort: tuple[Any, ...] | list[Any] | None = None,
        index: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        start_after: str | None = None,
        descending: bool = False,
    ) -> dict[str, Any]:
        """Items of one partition in sort order: ``{"items": [...], "cursor": str | None}``.
        ``sort`` is ``(op, value)`` with op eq, lt, lte, gt, gte or begins_with, or
        ``("between", low, high)``; pass the page's cursor back for the next one."""
        page: dict[str, Any] = self._call(
            "query", partition=partition, sort=None if sort is None else list(sort),
            index=index, limit=limit, cursor=cursor or start_after, descending=descending,
        )
        return page

    def scan(self, *, limit: int = 100, cursor: str | None = None) -> dict[str, Any]:
        page: dict[str, Any] = self._call("scan", limit=limit, cursor=cursor)
        return page

    def items(self, partition: Any, **options: Any) -> Iterator[dict[str, Any]]:
        """Every item of a query, page after page."""
        cursor = None
        while True:
            page = self.query(partition, cursor=cursor, **options)
            yield from page["items"]
            cursor = page["cursor"]
            if cursor is None:
                return


class Tables:
    __slots__ = ("_link",)

    def __init__(self, link: _Link) -> None:
        self._link = link

    def __getitem__(self, name: str) -> Table:
        return Table(self._link, name)

    def transact(self, ops: list[dict[str, Any]]) -> list[Any]:
        """All of ``ops`` or none; each ``{"op": "put"|"update"|"delete"|"check",
        "table": ..., ...}`` takes the arguments of the method of that name."""
        results: list[Any] = _decoded(self._link.call("table.transact", {"ops": ops})) or []
        return results
