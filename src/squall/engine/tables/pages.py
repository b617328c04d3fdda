"""Pages of queries and scans: the store's rows with an invocation's pending writes laid
over them, sort conditions, limits and cursors (opaque: the last position, base64 JSON)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import msgspec

from squall.engine.tables.conditions import check_condition, failed_test
from squall.engine.tables.writes import Key, Seen, with_version
from squall.errors import InvalidInput
from squall.model.tables import MAX_PAGE, KeyValue, TableConfig, check_key_value, expires_at
from squall.storage.tables import StoredItem

SORT_OPS = ("eq", "lt", "lte", "gt", "gte", "between", "begins_with")
Overlay = dict[Key, Seen]
decode_item = msgspec.json.Decoder(dict[str, Any]).decode


def merge(
    config: TableConfig,
    stored: list[StoredItem],
    overlay: Overlay | None,
    wanted: Callable[[dict[str, Any]], bool],
    position: Callable[[dict[str, Any], Any, Any], tuple[Any, ...]],
    after: list[Any] | None,
    size: int,
    descending: bool,
    now: float,
) -> dict[str, Any]:
    """The page of ``stored`` rows with the overlay's pending writes laid over them."""
    rows: list[tuple[tuple[Any, ...], dict[str, Any], int]] = []
    pending = {} if overlay is None else {
        k: v for k, v in overlay.items() if k[0] == config.name
    }
    for row in stored:
        if (config.name, row.pk, row.sk) in pending:
            continue
        item = decode_item(row.item)
        rows.append((position(item, row.pk, plain(row.sk)), item, row.version))
    start = None if after is None else tuple(plain(v) for v in after)
    for (_, pk, sk), seen in pending.items():
        seen = visible(config, seen, now)
        if seen.item is None or not wanted(seen.item):
            continue
        place = position(seen.item, pk, plain(sk))
        if start is not None and (place <= start if not descending else place >= start):
            continue
        rows.append((place, seen.item, seen.version))
    rows.sort(key=lambda row: row[0], reverse=descending)
    page = rows[:size]
    more = len(rows) > size
    return {
        "items": [with_version(item, version) for _, item, version in page],
        "cursor": encodecursor(list(page[-1][0])) if more and page else None,
    }


def visible(config: TableConfig, seen: Seen, now: float) -> Seen:
    if seen.item is not None:
        expiry = expires_at(config, seen.item)
        if expiry is not None and expiry <= now:
            return Seen(None, 0)
    return seen


def plain(value: Any) -> Any:
    return "" if value is None else value


def limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be an integer 1-{MAX_PAGE}", field="limit")
    return limit


def sort_test(
    config: TableConfig, sort_key: str | None, sort: Any
) -> tuple[str, list[KeyValue]] | None:
    if sort is None:
        return None
    if sort_key is None:
        raise InvalidInput("sort: this table (or index) has no sort key", field="sort")
    if not isinstance(sort, list | tuple) or not sort or sort[0] not in SORT_OPS:
        raise InvalidInput(
            f"sort must be [op, value] or ['between', low, high] with op one of"
            f" {', '.join(SORT_OPS)}",
            field="sort",
        )
    op = str(sort[0])
    values = list(sort[1:])
    if len(values) != (2 if op == "between" else 1):
        raise InvalidInput(f"sort {op!r} takes {2 if op == 'between' else 1} value(s)",
                           field="sort")
    checked = [check_key_value(config, sort_key, v, "sort") for v in values]
    if op == "begins_with" and config.key_type(sort_key) != "S":
        raise InvalidInput("sort begins_with needs a string sort key", field="sort")
    return op, checked


def sort_holds(test: tuple[str, list[KeyValue]], value: Any) -> bool:
    op, values = test
    condition = {"v": {op: values if op == "between" else values[0]}}
    return failed_test(check_condition(condition), {"v": value}) is None


def encodecursor(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(position)).decode().rstrip("=")


def cursor(cursor: Any, length: int) -> list[Any] | None:
    if cursor is None:
        return None
    try:
        if not isinstance(cursor, str):
            raise ValueError
        padded = cursor + "=" * (-len(cursor) % 4)
        position = msgspec.json.decode(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, msgspec.DecodeError):
        raise InvalidInput("cursor is not a cursor this API returned", field="cursor") from None
    if (
        not isinstance(position, list)
        or len(position) != length
        or not all(
            isinstance(v, str) or (isinstance(v, int | float) and not isinstance(v, bool))
            for v in position
        )
    ):
        raise InvalidInput("cursor is not a cursor of this query", field="cursor")
    return position
