"""Turning a put, an update, a delete or a check into a store op, against the item as its
writer sees it (the invocation's overlay, else the store).

Conditions are checked here, at call time, so the function gets ``ConditionFailed`` at
once; the op expects the version seen, so the store refuses it at commit if the item moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from squall.engine.tables.conditions import check_condition, failed_test
from squall.errors import ConditionFailed, InvalidInput
from squall.model.tables import (
    VERSION,
    KeyValue,
    TableConfig,
    check_item,
    check_key_only,
    expires_at,
    index_entries,
    key_of,
)
from squall.storage.tables import TableWrite

Key = tuple[str, KeyValue, KeyValue | None]  # (table, partition, sort)


@dataclass(frozen=True)
class Seen:
    """An item as the writer sees it: None when absent, with its version (0: absent)."""

    item: dict[str, Any] | None
    version: int


@dataclass(frozen=True)
class Planned:
    key: Key
    op: TableWrite
    after: Seen  # what the writer sees once the op is applied
    result: dict[str, Any] | None  # what the call returns (without the version)


def key_dict(table: TableConfig, pk: KeyValue, sk: KeyValue | None) -> dict[str, Any]:
    key: dict[str, Any] = {table.partition_key: pk}
    if table.sort_key is not None:
        key[table.sort_key] = sk
    return key


def with_version(item: dict[str, Any], version: int) -> dict[str, Any]:
    return {**item, VERSION: version}


def check_options(
    if_version: Any, condition: Any, field: str = ""
) -> dict[str, dict[str, Any]] | None:
    if if_version is not None and (
        isinstance(if_version, bool) or not isinstance(if_version, int) or if_version < 0
    ):
        raise InvalidInput(
            f"{field}if_version must be a version number (0: the item is absent)",
            field=f"{field}if_version",
        )
    return None if condition is None else check_condition(condition, f"{field}condition")


def check_conditions(
    table: TableConfig,
    key: dict[str, Any],
    seen: Seen,
    *,
    if_not_exists: bool = False,
    if_version: int | None = None,
    condition: dict[str, dict[str, Any]] | None = None,
    field: str = "",
) -> None:
    failed: str | None = None
    which = "condition"
    if if_not_exists and seen.item is not None:
        which, failed = "if_not_exists", f"the item exists at version {seen.version}"
    elif if_version is not None and if_version != seen.version:
        which = "if_version"
        failed = f"expected version {if_version}, the item is at {seen.version or 'absent'}"
    elif condition is not None:
        failed = failed_test(condition, seen.item)
    if failed is not None:
        raise ConditionFailed(
            f"table {table.name!r}, item {key}: {field}{which} failed: {failed}",
            field=f"{field}{which}",
            table=table.name,
            key=key,
            failed=failed,
        )


def plan_put(
    table: TableConfig, item: Any, seen: Seen, expect: bool, field: str = "item"
) -> Planned:
    if isinstance(item, dict) and VERSION in item:
        item = {k: v for k, v in item.items() if k != VERSION}
    data = check_item(table, item, field)
    pk, sk = key_of(table, item, field)
    keys = key_dict(table, pk, sk)
    op = TableWrite(
        table=table.name,
        pk=pk,
        sk=sk,
        action="put",
        expect=seen.version if expect else None,
        keys=msgspec.json.encode(keys),
        item=data,
        entries=index_entries(table, item),
        expires_at=expires_at(table, item),
        stream=table.stream,
    )
    return Planned((table.name, pk, sk), op, Seen(item, seen.version + 1), item)


def plan_delete(
    table: TableConfig, pk: KeyValue, sk: KeyValue | None, seen: Seen, expect: bool
) -> Planned:
    op = TableWrite(
        table=table.name,
        pk=pk,
        sk=sk,
        action="delete",
        expect=seen.version if expect else None,
        keys=msgspec.json.encode(key_dict(table, pk, sk)),
        stream=table.stream,
    )
    old = None if seen.item is None else with_version(seen.item, seen.version)
    return Planned((table.name, pk, sk), op, Seen(None, 0), old)


def plan_check(table: TableConfig, pk: KeyValue, sk: KeyValue | None, seen: Seen) -> Planned:
    op = TableWrite(
        table=table.name,
        pk=pk,
        sk=sk,
        action="check",
        expect=seen.version,
        keys=msgspec.json.encode(key_dict(table, pk, sk)),
    )
    return Planned((table.name, pk, sk), op, seen, seen.item)


def updated_item(
    table: TableConfig,
    key: dict[str, Any],
    seen: Seen,
    set_: Any,
    remove: Any,
    add: Any,
    field: str = "",
) -> dict[str, Any]:
    """The item after ``set``, ``remove`` and ``add`` (an absent item starts as its key)."""
    keys = {table.partition_key, *([table.sort_key] if table.sort_key else [])}
    for name, value, kind in (("set", set_, dict), ("remove", remove, list), ("add", add, dict)):
        if value is not None and not isinstance(value, kind):
            shape = "an object of attributes" if kind is dict else "a list of attribute names"
            raise InvalidInput(f"{field}{name} must be {shape}", field=f"{field}{name}")
    item = dict(seen.item) if seen.item is not None else dict(key)
    for name, value in (set_ or {}).items():
        if name in keys or name == VERSION:
            raise InvalidInput(
                f"{field}set.{name}: a key attribute (or {VERSION}) cannot be updated",
                field=f"{field}set.{name}",
            )
        item[name] = value
    for position, name in enumerate(remove or []):
        if not isinstance(name, str) or name in keys:
            raise InvalidInput(
                f"{field}remove[{position}]: {name!r} is not an attribute that can be removed",
                field=f"{field}remove[{position}]",
            )
        item.pop(name, None)
    for name, delta in (add or {}).items():
        where = f"{field}add.{name}"
        if name in keys or isinstance(delta, bool) or not isinstance(delta, int | float):
            raise InvalidInput(f"{where} must be a number added to a non-key attribute",
                               field=where)
        current = item.get(name, 0)
        if isinstance(current, bool) or not isinstance(current, int | float):
            raise InvalidInput(
                f"{where}: attribute {name!r} holds {type(current).__name__}, not a number",
                field=where,
            )
        item[name] = current + delta
    return item


def parse_key(table: TableConfig, key: Any, field: str = "key") -> tuple[KeyValue, KeyValue | None]:
    pk, sk = key_of(table, key, field)
    check_key_only(table, key, field)
    return pk, sk
