"""Schema registration and the check of published data, on a real embedded store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from squall.engine.schemas import SchemaRegistry
from squall.errors import Conflict, InvalidInput, NotFound
from squall.events.schemas import compile_schema, render_path
from squall.model.cloudevent import CloudEvent
from squall.model.schemas import parse_dataschema
from squall.storage.sqlite.store import SqliteStore

ORDER: dict[str, Any] = {
    "type": "object",
    "required": ["items"],
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["qty"],
                "properties": {"qty": {"type": "integer", "minimum": 1}},
            },
        }
    },
}


@pytest.fixture
async def registry(store: SqliteStore) -> SchemaRegistry:
    registry = SchemaRegistry(store)
    await registry.put("order.placed", 1, ORDER)
    return registry


def event(data: Any, **attrs: Any) -> CloudEvent:
    return CloudEvent.create("order.placed", data, source="test", id="e-1", **attrs)


def test_paths_read_like_json_paths() -> None:
    assert render_path("data", ["items", 2, "qty"]) == "data.items[2].qty"
    assert render_path("data", ["odd key", 0]) == 'data["odd key"][0]'


@pytest.mark.parametrize(
    ("schema", "field", "words"),
    [
        ({"type": 5}, "schema.type", "not a valid JSON Schema (draft 2020-12)"),
        ({"pattern": "("}, "schema.pattern", "regex"),
        ({"$ref": "https://example.com/s.json"}, "schema", "only local $refs"),
        ({"$schema": "http://json-schema.org/draft-07/schema#", "exclusiveMinimum": True},
         "schema.exclusiveMinimum", "draft 7"),
        ([1, 2], "schema", "must be a JSON object"),
    ],
)
def test_invalid_schemas_are_refused_naming_the_problem(
    schema: Any, field: str, words: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        compile_schema(schema)
    assert info.value.field == field
    assert words in info.value.message


def test_draft4_booleans_are_valid_in_draft4() -> None:
    compile_schema({"$schema": "http://json-schema.org/draft-04/schema#",
                    "minimum": 1, "exclusiveMinimum": True})


def test_dataschema_forms() -> None:
    assert parse_dataschema("squall:schemas/order.placed/2") == ("order.placed", 2)
    url = "http://127.0.0.1:8787/api/v1/schemas/order.placed/3"
    assert parse_dataschema(url) == ("order.placed", 3)
    assert parse_dataschema("https://example.com/order.json") is None
    with pytest.raises(InvalidInput) as info:
        parse_dataschema("squall:schemas/order.placed/0")
    assert info.value.field == "dataschema"


async def test_bad_data_names_the_path_and_the_rule(registry: SchemaRegistry) -> None:
    registry.check([event({"items": [{"qty": 1}, {"qty": 2}]})])
    with pytest.raises(InvalidInput) as info:
        registry.check([event({"items": [{"qty": 1}, {"qty": 2}, {"qty": 0}]})])
    error = info.value
    assert error.field == "data.items[2].qty"
    assert error.details["rule"] == "minimum: 1"
    assert "data.items[2].qty: 0 is less than the minimum of 1" in error.message
    assert error.details["schema"] == "squall:schemas/order.placed/1"
    with pytest.raises(InvalidInput) as missing:
        registry.check([event({"items": [{}]})])
    assert missing.value.field == "data.items[0].qty"
    assert missing.value.details["rule"] == 'required: "qty"'


async def test_the_batch_index_is_named(registry: SchemaRegistry) -> None:
    good, bad = event({"items": []}), event({"items": "x"})
    with pytest.raises(InvalidInput) as info:
        registry.check([good, good, bad])
    assert info.value.details["index"] == 2
    assert info.value.details["rule"] == 'type: "array"'


async def test_events_without_json_data_are_refused(registry: SchemaRegistry) -> None:
    with pytest.raises(InvalidInput) as info:
        registry.check([CloudEvent.create("order.placed", source="t")])
    assert info.value.field == "data" and "no data" in info.value.message
    with pytest.raises(InvalidInput) as binary:
        registry.check([CloudEvent.create("order.placed", b"\x00", source="t")])
    assert "binary data" in binary.value.message


async def test_dataschema_picks_the_version(registry: SchemaRegistry) -> None:
    loose = {**ORDER, "required": []}
    await registry.put("order.placed", 2, loose)
    registry.check([event({}, dataschema="squall:schemas/order.placed/2")])
    with pytest.raises(InvalidInput):  # the latest, 2, would take it; version 1 does not
        registry.check([event({}, dataschema="squall:schemas/order.placed/1")])
    with pytest.raises(InvalidInput) as unknown:
        registry.check([event({}, dataschema="squall:schemas/order.placed/7")])
    assert unknown.value.field == "dataschema"
    assert "registered: 1, 2" in unknown.value.message
    registry.check([CloudEvent.create("other.type", {"anything": 1}, source="t")])


async def test_versions_in_order_and_identical_puts(registry: SchemaRegistry) -> None:
    again = await registry.put("order.placed", 1, ORDER)
    assert not again.created
    with pytest.raises(Conflict) as different:
        await registry.put("order.placed", 1, {**ORDER, "title": "changed"})
    assert different.value.field == "version"
    with pytest.raises(Conflict) as skipped:
        await registry.put("order.placed", 3, ORDER)
    assert "next version of 'order.placed' is 2" in skipped.value.message
    with pytest.raises(InvalidInput):
        await registry.put("order.placed", "0", ORDER)
    with pytest.raises(InvalidInput):
        await registry.put("bad/type", 1, ORDER)


async def test_incompatible_versions_need_force(registry: SchemaRegistry) -> None:
    stricter = {**ORDER, "required": ["items", "coupon"]}
    with pytest.raises(Conflict) as info:
        await registry.put("order.placed", 2, stricter)
    assert info.value.details["reasons"] == ["data: required field 'coupon' added"]
    assert registry.types() == {"order.placed": [1]}
    forced = await registry.put("order.placed", 2, stricter, force=True)
    assert forced.created and forced.forced == ["data: required field 'coupon' added"]


async def test_schemas_survive_a_reopen_and_delete(store: SqliteStore, tmp_path: Path) -> None:
    registry = SchemaRegistry(store)
    await registry.put("a.b", 1, {"type": "string"})
    await registry.put("a.b", 2, {"type": ["string", "null"]})
    reloaded = SchemaRegistry(store)
    await reloaded.load()
    assert reloaded.types() == {"a.b": [1, 2]}
    assert await reloaded.delete("a.b", 2) == [2]
    assert await reloaded.delete("a.b") == [1]
    with pytest.raises(NotFound):
        reloaded.versions("a.b")
    again = SchemaRegistry(store)
    await again.load()
    assert again.types() == {}
