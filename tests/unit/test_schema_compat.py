"""The BACKWARD compatibility checker: reasons for breaking changes, nothing for safe ones, and
never a pass for a change that rejects a document the old version accepted."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squall.events.compat import backward_problems, incompatibilities

ORDER: dict[str, Any] = {
    "type": "object",
    "required": ["id", "qty"],
    "properties": {"id": {"type": "string"}, "qty": {"type": "number", "minimum": 0}},
}


def order(**changes: Any) -> dict[str, Any]:
    schema = {**ORDER, "properties": dict(ORDER["properties"])}
    props = changes.pop("properties", {})
    schema["properties"].update(props)
    schema.update(changes)
    return schema


BREAKING = [
    (ORDER, order(properties={"qty": {"type": "integer", "minimum": 0}}),
     "data.qty: type narrowed from number to integer"),
    (ORDER, order(required=["id", "qty", "coupon"]), "data: required field 'coupon' added"),
    (ORDER, order(additionalProperties=False), "data: additionalProperties closed"),
    (ORDER, order(properties={"qty": {"type": "number", "minimum": 1}}),
     "data.qty: minimum raised from 0 to 1"),
    (ORDER, order(properties={"coupon": {"type": "string"}}),
     "data.coupon: type restricted to string where any type was allowed"),
    ({"enum": ["a", "x"]}, {"enum": ["a"]}, "data: enum value 'x' removed"),
    ({"const": 3}, {"type": "integer", "maximum": 2}, "data: value 3 no longer valid"),
    ({"type": "number", "maximum": 10}, {"type": "number", "maximum": 5},
     "data: maximum lowered from 10 to 5"),
    ({"type": "number"}, {"type": "number", "exclusiveMinimum": 0},
     "data: exclusiveMinimum 0 added"),
    ({"type": "string", "pattern": "^a"}, {"type": "string", "pattern": "^b"},
     "data: pattern changed from '^a' to '^b'"),
    ({"type": "string"}, {"type": "string", "pattern": "^b"}, "data: pattern added: '^b'"),
    ({"type": "string", "maxLength": 5}, {"type": "string", "maxLength": 3},
     "data: maxLength lowered from 5 to 3"),
    ({"type": "string"}, {"type": "string", "minLength": 2}, "data: minLength 2 added"),
    ({"type": "array", "minItems": 1}, {"type": "array", "minItems": 2},
     "data: minItems raised from 1 to 2"),
    ({"type": "array"}, {"type": "array", "maxItems": 9}, "data: maxItems 9 added"),
    ({"type": "array", "items": {"type": "integer"}},
     {"type": "array", "items": {"type": "string"}},
     "data[]: type 'integer' no longer allowed (now string)"),
    ({"type": "array"}, {"type": "array", "uniqueItems": True}, "data: uniqueItems added"),
    ({"type": ["string", "null"]}, {"type": "string"}, "data: type 'null' no longer allowed"),
    ({"type": "number", "multipleOf": 2}, {"type": "number", "multipleOf": 4},
     "data: multipleOf 4 (was 2)"),
    ({"type": "object", "properties": {"a": {}, "b": {}}, "additionalProperties": False},
     {"type": "object", "properties": {"a": {}}, "additionalProperties": False},
     "data: property 'b' removed while additionalProperties is false"),
    ({"properties": {"a": {"type": "string"}}},
     {"properties": {"a": {"$ref": "#/$defs/s"}},
      "$defs": {"s": {"type": "string", "maxLength": 3}}},
     "data.a: maxLength 3 added"),
    ({"type": "object", "properties": {"n": {"$ref": "#"}, "v": {"type": "number"}}},
     {"type": "object", "properties": {"n": {"$ref": "#"}, "v": {"type": "integer"}}},
     "data.v: type narrowed from number to integer"),
    ({}, {"not": {"type": "string"}}, "data: not added or changed: not checked"),
    ({"type": "string"}, {"oneOf": [{"type": "string"}, {"minLength": 1}]},
     "data: oneOf added or changed: not checked"),
    ({"$schema": "http://json-schema.org/draft-07/schema#", "type": "string"}, {"type": "string"},
     "different JSON Schema drafts"),
    ({"type": "object", "properties": {"items": {"type": "array", "items": {
        "type": "object", "properties": {"qty": {"type": "integer", "minimum": 0}}}}}},
     {"type": "object", "properties": {"items": {"type": "array", "items": {
         "type": "object", "properties": {"qty": {"type": "integer", "minimum": 1}}}}}},
     "data.items[].qty: minimum raised from 0 to 1"),
]

SAFE = [
    (ORDER, ORDER),
    (ORDER, order(required=["id"])),
    (ORDER, order(properties={"qty": {"type": "number"}})),
    (ORDER, order(properties={"qty": {"type": "number", "minimum": -5}})),
    (order(properties={"qty": {"type": "integer", "minimum": 0}}), ORDER),
    (order(additionalProperties=False), order(additionalProperties=False,
                                              properties={"coupon": {"type": "string"}})),
    (ORDER, order(properties={"note": {"description": "free text"}})),
    ({"enum": ["a"]}, {"enum": ["a", "b"]}),
    ({"const": 2}, {"type": "integer", "maximum": 2}),
    ({"type": "string", "maxLength": 3}, {"type": "string", "maxLength": 5}),
    ({"type": "string", "pattern": "^a"}, {"type": "string"}),
    ({"type": "string", "pattern": "^a"}, {"type": "string", "pattern": "^a"}),
    ({"type": "integer"}, {"type": "number"}),
    ({"type": "integer", "minimum": 1}, {"type": "number", "exclusiveMinimum": 0}),
    ({"type": "number", "multipleOf": 4}, {"type": "number", "multipleOf": 2}),
    ({"type": "integer"}, {"type": "integer", "multipleOf": 1}),
    ({"type": "string"}, {"minimum": 5}),  # numeric rules do not touch strings
    ({"type": "array", "items": {"type": "integer"}},
     {"type": "array", "items": {"type": "number"}}),
    ({"type": "array", "maxItems": 1}, {"type": "array", "uniqueItems": True}),
    ({"anyOf": [{"type": "string"}, {"type": "integer"}]}, {"type": ["string", "number"]}),
    ({"type": "string"}, {"anyOf": [{"type": "string"}, {"type": "null"}]}),
    ({"type": "string", "title": "old"}, {"type": "string", "title": "new", "format": "email"}),
    ({"properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"type": "string"}}},
     {"properties": {"a": {"type": "string"}}}),
    ({"type": "string"}, True),
    (False, {"type": "string"}),
    ({"type": "string"}, {"allOf": [{"type": "string"}, {"minLength": 0}]}),
]


@pytest.mark.parametrize(("old", "new", "reason"), BREAKING)
def test_breaking_changes_are_named(old: Any, new: Any, reason: str) -> None:
    problems = backward_problems(old, new)
    assert any(reason in p for p in problems), problems


@pytest.mark.parametrize(("old", "new"), SAFE)
def test_safe_changes_pass(old: Any, new: Any) -> None:
    assert backward_problems(old, new) == []


def test_the_library_proves_what_the_walk_cannot() -> None:
    old = {"type": "string"}
    new = {"oneOf": [{"type": "string"}, {"type": "null"}]}
    assert incompatibilities(old, new) == ["data: oneOf added or changed: not checked"]
    assert backward_problems(old, new) == []  # jsonschema-rs shows that new contains old


# --- property: whenever the checker passes a change, no document breaks -------------------

_TYPES = st.sampled_from(["string", "integer", "number", "boolean", "null"])


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    numeric = st.fixed_dictionaries(
        {"type": st.sampled_from(["integer", "number"])},
        optional={
            "minimum": st.integers(-3, 3),
            "maximum": st.integers(-3, 3),
            "exclusiveMinimum": st.integers(-3, 3),
            "multipleOf": st.sampled_from([1, 2, 3, 4]),
        },
    )
    text = st.fixed_dictionaries(
        {"type": st.just("string")},
        optional={
            "minLength": st.integers(0, 3),
            "maxLength": st.integers(0, 3),
            "pattern": st.sampled_from(["^a", "^b", "a"]),
        },
    )
    choice = st.fixed_dictionaries({"enum": st.lists(st.integers(-3, 3), min_size=1, max_size=3)})
    typed = st.fixed_dictionaries({"type": st.lists(_TYPES, min_size=1, max_size=3, unique=True)})
    return st.one_of(numeric, text, choice, typed, st.just({}))


_SCHEMAS = st.recursive(
    _leaf(),
    lambda inner: st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("object"),
             "properties": st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3)},
            optional={
                "required": st.lists(st.sampled_from(["a", "b", "c"]), unique=True, max_size=2),
                "additionalProperties": st.booleans(),
            },
        ),
        st.fixed_dictionaries(
            {"type": st.just("array"), "items": inner},
            optional={"minItems": st.integers(0, 2), "maxItems": st.integers(0, 3),
                      "uniqueItems": st.booleans()},
        ),
    ),
    max_leaves=4,
)
_DOCUMENTS = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-4, 4), st.sampled_from([0.5, 2.0, -1.5]),
              st.sampled_from(["", "a", "ab", "ba", "abc", "b"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), inner, max_size=3),
    ),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None)
@given(old=_SCHEMAS, new=_SCHEMAS, documents=st.lists(_DOCUMENTS, min_size=1, max_size=10))
def test_a_passed_change_never_rejects_an_old_document(
    old: dict[str, Any], new: dict[str, Any], documents: list[Any]
) -> None:
    if incompatibilities(old, new):
        return
    before, after = jsonschema_rs.validator_for(old), jsonschema_rs.validator_for(new)
    for document in documents:
        if before.is_valid(document):
            assert after.is_valid(document), (old, new, document)


@settings(max_examples=200, deadline=None)
@given(schema=_SCHEMAS)
def test_a_schema_is_compatible_with_itself_and_with_anything_goes(schema: dict[str, Any]) -> None:
    assert incompatibilities(schema, schema) == []
    assert incompatibilities(schema, {}) == []
