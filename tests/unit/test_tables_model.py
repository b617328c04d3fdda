"""Declaring tables and change triggers: bad declarations name the field; the condition
language's tests."""

from __future__ import annotations

from typing import Any

import pytest

import squall
from squall.engine.tables.conditions import check_condition, failed_test
from squall.errors import ConfigError, InvalidInput


def _app() -> squall.App:
    return squall.App("t")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"name": "bad name", "partition_key": "id"}, "name"),
        ({"partition_key": "bad key!"}, "partition_key"),
        ({"partition_key": "id", "sort_key": "id"}, "sort_key"),
        ({"partition_key": "id", "key_types": {"id": "X"}}, "key_types.id"),
        ({"partition_key": "id", "key_types": {"other": "S"}}, "key_types.other"),
        ({"partition_key": "id", "indexes": {"i": {"sort_key": "x"}}}, "indexes.i"),
        ({"partition_key": "id", "indexes": {"i": {"partition_key": "x", "y": 1}}},
         "indexes.i.y"),
        ({"partition_key": "id", "indexes": {"bad name": {"partition_key": "x"}}},
         "indexes[0].name"),
        ({"partition_key": "id", "ttl_attribute": ""}, "ttl_attribute"),
        ({"partition_key": "id", "stream": "all"}, "stream"),
    ],
)
def test_bad_tables_name_the_field(options: dict[str, Any], field: str) -> None:
    name = options.pop("name", "orders")
    with pytest.raises(ConfigError) as bad:
        _app().table(name, **options)
    assert bad.value.field == field


def test_change_triggers_need_a_table_with_the_images_they_ask_for() -> None:
    app = _app()
    app.table("plain", partition_key="id")
    app.table("keys_only", partition_key="id", stream="keys")

    @app.on_change("plain")
    def on_plain(event: Any, ctx: Any) -> None: ...

    with pytest.raises(ConfigError) as no_stream:
        app.manifest()
    assert no_stream.value.field == "stream"

    other = _app()
    other.table("keys_only", partition_key="id", stream="keys")

    @other.on_change("keys_only", images="new")
    def on_keys(event: Any, ctx: Any) -> None: ...

    with pytest.raises(ConfigError) as images:
        other.manifest()
    assert images.value.field == "images"

    missing = _app()

    @missing.on_change("nope")
    def on_nope(event: Any, ctx: Any) -> None: ...

    with pytest.raises(ConfigError) as table:
        missing.manifest()
    assert table.value.field == "table"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"images": "everything"}, "images"),
        ({"pattern": {"eventName": "INSERT"}}, "pattern"),
        ({"batch_size": 0}, "batch_size"),
        ({"starting_position": "at_timestamp"}, "starting_position"),
    ],
)
def test_bad_change_triggers_name_the_field(options: dict[str, Any], field: str) -> None:
    app = _app()
    app.table("t", partition_key="id", stream="new_and_old")
    with pytest.raises(ConfigError) as bad:

        @app.on_change("t", **options)
        def handler(event: Any, ctx: Any) -> None: ...

    assert str(bad.value.field).startswith(field)


def test_table_permissions_are_declared_like_the_others() -> None:
    app = _app()

    @app.function(permissions=["table:orders", "table.read:audit"])
    def fn(event: Any, ctx: Any) -> None: ...

    config = app.functions["fn"].config
    assert config.allows("table", "orders") and config.allows("table.read", "audit")
    assert not config.allows("table", "audit")
    with pytest.raises(ConfigError) as bad:

        @app.function(permissions=["tables:orders"])
        def other(event: Any, ctx: Any) -> None: ...

    assert bad.value.field == "permissions"


@pytest.mark.parametrize(
    ("condition", "item", "holds"),
    [
        ({"s": {"eq": "open"}}, {"s": "open"}, True),
        ({"s": {"eq": "open"}}, None, False),
        ({"s": {"ne": "open"}}, None, True),
        ({"n": {"gte": 1}}, {"n": 1}, True),
        ({"n": {"gt": 1}}, {"n": "2"}, False),  # a string is not compared with a number
        ({"n": {"between": [1, 3]}}, {"n": 2.5}, True),
        ({"n": {"in": [1, 2]}}, {"n": True}, False),  # true is not 1
        ({"s": {"begins_with": "ab"}}, {"s": "abc"}, True),
        ({"t": {"contains": "x"}}, {"t": ["x", "y"]}, True),
        ({"t": {"contains": "x"}}, {"t": "axb"}, True),
        ({"x": {"exists": False}}, {"y": 1}, True),
        ({"x": {"exists": True}}, {"x": None}, True),
        ({"n": {"gte": 1, "lt": 5}}, {"n": 5}, False),
    ],
)
def test_conditions(condition: Any, item: Any, holds: bool) -> None:
    assert (failed_test(check_condition(condition), item) is None) is holds


@pytest.mark.parametrize(
    ("condition", "field"),
    [
        ([], "condition"),
        ({"x": {}}, "condition.x"),
        ({"x": {"like": 1}}, "condition.x.like"),
        ({"x": {"exists": 1}}, "condition.x.exists"),
        ({"x": {"between": [1]}}, "condition.x.between"),
        ({"x": {"in": 1}}, "condition.x.in"),
        ({"x": {"begins_with": 1}}, "condition.x.begins_with"),
        ({"x": {"lt": [1]}}, "condition.x.lt"),
    ],
)
def test_bad_conditions_name_the_attribute_and_test(condition: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as bad:
        check_condition(condition)
    assert bad.value.field == field
