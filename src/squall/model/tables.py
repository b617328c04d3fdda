"""Tables: key-value / document tables with a partition key, an optional sort key, secondary
indexes, a TTL attribute and a change stream; and the triggers that consume the changes.

An item is a JSON object. Its key attributes have a declared type, ``"S"`` (string) or
``"N"`` (number); an index's key attributes too (an item without them is not in the index).
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

from squall.errors import ConfigError, InvalidInput, PayloadTooLarge
from squall.model.streams import StreamTrigger

TABLE_RE: Final = re.compile(r"[a-zA-Z][a-zA-Z0-9_.-]{0,127}")
ATTRIBUTE_RE: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_.-]{0,254}")
KEY_TYPES: Final = ("S", "N")
STREAM_VIEWS: Final = ("new_and_old", "new", "old", "keys")
IMAGES: Final = ("new_and_old", "new", "old", "keys")
MAX_ITEM_BYTES: Final = 400 * 1024
MAX_KEY_BYTES: Final = 2048
MAX_INDEXES: Final = 20
MAX_PAGE: Final = 1000
MAX_TRANSACT: Final = 100
CHANGE_SHARDS: Final = 4
CHANGE_RETENTION_S: Final = 86400
VERSION: Final = "_version"  # the attribute reads add to an item; ignored in what is written
TTL_PRINCIPAL: Final = "squall.ttl"


def change_stream(table: str) -> str:
    """The internal stream of a table's changes: ``:`` is not allowed in stream names."""
    return f"table:{table}"


class IndexConfig(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    partition_key: str
    sort_key: str | None = None


class TableConfig(msgspec.Struct, frozen=True, kw_only=True):
    """A table; ``key_types`` gives the type of each key attribute (default ``"S"``)."""

    name: str
    partition_key: str
    sort_key: str | None = None
    key_types: dict[str, str] = {}
    indexes: tuple[IndexConfig, ...] = ()
    ttl_attribute: str | None = None
    stream: str | None = None  # which images change records carry; None: no change stream

    def key_type(self, attribute: str) -> str:
        return self.key_types.get(attribute, "S")

    def key_attributes(self) -> list[str]:
        attributes = [self.partition_key]
        if self.sort_key is not None:
            attributes.append(self.sort_key)
        for index in self.indexes:
            attributes.append(index.partition_key)
            if index.sort_key is not None:
                attributes.append(index.sort_key)
        return list(dict.fromkeys(attributes))

    def index(self, name: str) -> IndexConfig:
        for index in self.indexes:
            if index.name == name:
                return index
        known = ", ".join(i.name for i in self.indexes) or "none"
        raise InvalidInput(
            f"table {self.name!r} has no index {name!r} (indexes: {known})", field="index"
        )

    def validate(self) -> None:
        where = f"table {self.name!r}"
        if not isinstance(self.name, str) or not TABLE_RE.fullmatch(self.name):
            raise ConfigError(
                f"table name {self.name!r} is invalid: use 1-128 letters, digits, '.', '-' or"
                " '_', starting with a letter",
                field="name",
                value=repr(self.name),
            )
        _attribute(where, "partition_key", self.partition_key)
        if self.sort_key is not None:
            _attribute(where, "sort_key", self.sort_key)
            if self.sort_key == self.partition_key:
                raise ConfigError(
                    f"{where}: sort_key is the partition key {self.partition_key!r}",
                    field="sort_key",
                )
        if not isinstance(self.key_types, dict):
            raise ConfigError(f"{where}: key_types must map attributes to 'S' or 'N'",
                              field="key_types")
        if not isinstance(self.indexes, tuple) or len(self.indexes) > MAX_INDEXES:
            raise ConfigError(f"{where}: indexes must be at most {MAX_INDEXES}", field="indexes")
        names: set[str] = set()
        for position, index in enumerate(self.indexes):
            field = f"indexes[{position}]"
            if not isinstance(index.name, str) or not TABLE_RE.fullmatch(index.name):
                raise ConfigError(f"{where}: index name {index.name!r} is invalid",
                                  field=f"{field}.name")
            if index.name in names:
                raise ConfigError(f"{where}: index {index.name!r} is declared twice",
                                  field=f"{field}.name")
            names.add(index.name)
            _attribute(where, f"{field}.partition_key", index.partition_key)
            if index.sort_key is not None:
                _attribute(where, f"{field}.sort_key", index.sort_key)
        keys = set(self.key_attributes())
        for attribute, kind in self.key_types.items():
            if attribute not in keys:
                raise ConfigError(
                    f"{where}: key_types names {attribute!r}, which is no key attribute"
                    f" (keys: {', '.join(sorted(keys))})",
                    field=f"key_types.{attribute}",
                )
            if kind not in KEY_TYPES:
                raise ConfigError(
                    f"{where}: key_types.{attribute}={kind!r} is not 'S' (string) or 'N'"
                    " (number)",
                    field=f"key_types.{attribute}",
                )
        if self.ttl_attribute is not None:
            _attribute(where, "ttl_attribute", self.ttl_attribute)
        if self.stream is not None and self.stream not in STREAM_VIEWS:
            raise ConfigError(
                f"{where}: stream={self.stream!r} is not one of {', '.join(STREAM_VIEWS)}"
                " (or None for no change stream)",
                field="stream",
            )


class ChangeTrigger(msgspec.Struct, frozen=True, kw_only=True):
    """A function fed a table's change records, per key in commit order."""

    function: str
    table: str
    images: str | None = None  # None: what the table's stream records
    pattern: dict[str, Any] | None = None  # an event pattern over the change record
    batch_size: int = 100
    batch_window_s: float = 0.0
    starting_position: str = "latest"
    max_retries: int = -1
    bisect_on_error: bool = False
    on_failure: str | None = None


def stream_trigger(trigger: ChangeTrigger) -> StreamTrigger:
    return StreamTrigger(
        function=trigger.function,
        stream=change_stream(trigger.table),
        batch_size=trigger.batch_size,
        batch_window_s=trigger.batch_window_s,
        starting_position=trigger.starting_position,
        max_retries=trigger.max_retries,
        bisect_on_error=trigger.bisect_on_error,
        on_failure=trigger.on_failure,
    )


def check_tables(
    tables: list[TableConfig], triggers: list[ChangeTrigger], functions: set[str]
) -> None:
    """Names unique; every trigger on a declared table with a change stream that records the
    images it asks for, naming functions of the app."""
    by_name: dict[str, TableConfig] = {}
    for table in tables:
        table.validate()
        if table.name in by_name:
            raise ConfigError(f"table {table.name!r} is declared twice", field="name")
        by_name[table.name] = table
    for trigger in triggers:
        where = f"function {trigger.function!r}: change trigger"
        found = by_name.get(trigger.table)
        if found is None:
            raise ConfigError(
                f"{where}: table {trigger.table!r} is not declared (declare it with"
                f" app.table({trigger.table!r}, partition_key=..., stream='new_and_old'))",
                field="table",
                function=trigger.function,
            )
        table = found
        if table.stream is None:
            raise ConfigError(
                f"{where}: table {trigger.table!r} has no change stream: declare it with"
                " stream='new_and_old' (or 'new', 'old', 'keys')",
                field="stream",
                function=trigger.function,
            )
        if trigger.images is not None and not _covers(table.stream, trigger.images):
            raise ConfigError(
                f"{where}: images={trigger.images!r} needs more than the table's"
                f" stream={table.stream!r} records",
                field="images",
                function=trigger.function,
            )
        if trigger.on_failure is not None and trigger.on_failure not in functions:
            raise ConfigError(
                f"{where}: on_failure={trigger.on_failure!r} names no function of the app",
                field="on_failure",
                function=trigger.function,
            )


def _covers(stream: str, images: str) -> bool:
    if images not in IMAGES:
        return False
    return stream == "new_and_old" or images in (stream, "keys")


def _attribute(where: str, field: str, value: Any) -> None:
    if not isinstance(value, str) or not ATTRIBUTE_RE.fullmatch(value):
        raise ConfigError(
            f"{where}: {field}={value!r} is not an attribute name (letters, digits, '_', '.',"
            " '-'; starting with a letter or '_')",
            field=field,
            value=repr(value),
        )


# --- items --------------------------------------------------------------------------------


KeyValue = str | int | float


def check_key_value(table: TableConfig, attribute: str, value: Any, field: str) -> KeyValue:
    """A key attribute's value, of its declared type, or InvalidInput naming both."""
    kind = table.key_type(attribute)
    if kind == "S":
        if isinstance(value, str) and 0 < len(value.encode(errors="replace")) <= MAX_KEY_BYTES:
            return value
        expected = f"a non-empty string of at most {MAX_KEY_BYTES} bytes"
    else:
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and value == value
            and value not in (float("inf"), float("-inf"))
        ):
            return value
        expected = "a finite number"
    got = "missing" if value is None else f"{type(value).__name__} {value!r}"[:80]
    raise InvalidInput(
        f"table {table.name!r}: key attribute {attribute!r} must be {expected} (type"
        f" {kind!r}), got {got}",
        field=field,
        table=table.name,
        attribute=attribute,
        expected=kind,
    )


def key_of(
    table: TableConfig, item: Any, field: str = "key"
) -> tuple[KeyValue, KeyValue | None]:
    """The (partition, sort) values of a key or an item."""
    if not isinstance(item, dict):
        raise InvalidInput(f"{field} must be a JSON object", field=field, table=table.name)
    pk = check_key_value(
        table, table.partition_key, item.get(table.partition_key),
        f"{field}.{table.partition_key}",
    )
    sk = None
    if table.sort_key is not None:
        sk = check_key_value(
            table, table.sort_key, item.get(table.sort_key), f"{field}.{table.sort_key}"
        )
    return pk, sk


def check_key_only(table: TableConfig, key: Any, field: str = "key") -> None:
    """A key names its key attributes and nothing else."""
    allowed = {table.partition_key} | ({table.sort_key} if table.sort_key else set())
    extra = sorted(set(key) - allowed) if isinstance(key, dict) else []
    if extra:
        raise InvalidInput(
            f"{field}.{extra[0]} is not a key attribute of table {table.name!r} (keys:"
            f" {', '.join(sorted(allowed))})",
            field=f"{field}.{extra[0]}",
        )


def check_item(table: TableConfig, item: Any, field: str = "item") -> bytes:
    """Validate an item (key attributes, index key types, size); return its JSON."""
    key_of(table, item, field)
    for index in table.indexes:
        for attribute in (index.partition_key, index.sort_key):
            if attribute is not None and item.get(attribute) is not None:
                check_key_value(table, attribute, item[attribute], f"{field}.{attribute}")
    if table.ttl_attribute is not None:
        ttl = item.get(table.ttl_attribute)
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float)):
            raise InvalidInput(
                f"table {table.name!r}: ttl attribute {table.ttl_attribute!r} must be epoch"
                f" seconds (a number), got {type(ttl).__name__}",
                field=f"{field}.{table.ttl_attribute}",
            )
    try:
        data = msgspec.json.encode(item)
    except (TypeError, UnicodeEncodeError) as exc:
        raise InvalidInput(f"{field} is not JSON: {exc}", field=field) from None
    if len(data) > MAX_ITEM_BYTES:
        raise PayloadTooLarge(
            f"table {table.name!r}: the item is {len(data)} bytes as JSON; the limit is"
            f" {MAX_ITEM_BYTES} bytes",
            field=field,
            size=len(data),
            limit=MAX_ITEM_BYTES,
        )
    return data


def expires_at(table: TableConfig, item: dict[str, Any]) -> float | None:
    if table.ttl_attribute is None:
        return None
    value = item.get(table.ttl_attribute)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def index_entries(
    table: TableConfig, item: dict[str, Any]
) -> list[tuple[str, KeyValue, KeyValue | None]]:
    """(index, partition value, sort value) for each index the item is in."""
    entries: list[tuple[str, KeyValue, KeyValue | None]] = []
    for index in table.indexes:
        pk = item.get(index.partition_key)
        if pk is None:
            continue
        sk = None
        if index.sort_key is not None:
            sk = item.get(index.sort_key)
            if sk is None:
                continue
        entries.append((index.name, pk, sk))
    return entries


def table_config(
    name: Any,
    *,
    partition_key: Any,
    sort_key: Any = None,
    key_types: Any = None,
    indexes: Any = None,
    ttl_attribute: Any = None,
    stream: Any = None,
) -> TableConfig:
    """A table from the shapes the app and the admin API use (``indexes`` as a dict of
    ``{"partition_key", "sort_key"}`` by index name); ConfigError names the field."""
    if indexes is None:
        indexes = {}
    if not isinstance(indexes, dict):
        raise ConfigError(f"table {name!r}: indexes must map index names to their keys",
                          field="indexes")
    made: list[IndexConfig] = []
    for index_name, spec in indexes.items():
        field = f"indexes.{index_name}"
        if not isinstance(spec, dict) or "partition_key" not in spec:
            raise ConfigError(
                f"table {name!r}: {field} must be {{'partition_key': ..., 'sort_key': ...}}",
                field=field,
            )
        unknown = sorted(set(spec) - {"partition_key", "sort_key"})
        if unknown:
            raise ConfigError(f"table {name!r}: {field}.{unknown[0]} is unknown",
                              field=f"{field}.{unknown[0]}")
        made.append(
            IndexConfig(
                name=index_name, partition_key=spec["partition_key"],
                sort_key=spec.get("sort_key"),
            )
        )
    return TableConfig(
        name=name,
        partition_key=partition_key,
        sort_key=sort_key,
        key_types=dict(key_types) if isinstance(key_types, dict) else (key_types or {}),
        indexes=tuple(made),
        ttl_attribute=ttl_attribute,
        stream=stream,
    )
