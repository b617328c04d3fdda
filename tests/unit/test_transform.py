"""JSON paths and input transforms: the EventBridge subset, templates, missing values."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from squall.errors import InvalidInput
from squall.model.jsonpath import MISSING, parse_path, select
from squall.model.targets import FunctionTarget, HttpTarget, InputTransformer
from squall.model.transform import check_template, render

EVENT: dict[str, Any] = {
    "id": "e-1",
    "type": "order.placed",
    "source": "shop",
    "data": {
        "order": {"id": "o-1", "note": 'say "hi"\\n'},
        "total": 250,
        "items": [{"sku": "a-1"}, {"sku": "b-2"}],
        "detail-type": "x",
        "none": None,
    },
}
WHOLE = msgspec.json.encode(EVENT)


def transformer(template: str, **paths: str) -> FunctionTarget:
    return FunctionTarget(
        "f", input_transformer=InputTransformer(input_paths_map=paths, input_template=template)
    )


def rendered(target: FunctionTarget | HttpTarget) -> tuple[Any, bool]:
    out = render(target, EVENT, WHOLE)
    return (msgspec.json.decode(out.body) if out.json else out.body.decode()), out.json


# --- paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("$", ()),
        ("$.data", ("data",)),
        ("$.data.items[1].sku", ("data", "items", 1, "sku")),
        ("$.data.detail-type", ("data", "detail-type")),
        ("$.a/b[0][10]", ("a/b", 0, 10)),
    ],
)
def test_paths_in_the_subset_parse(path: str, steps: tuple[Any, ...]) -> None:
    assert parse_path(path, field="f") == steps


@pytest.mark.parametrize(
    "path", ["", "data", "$.", "$..a", "$.a[*]", "$['a']", "$.a[01]", "$.a[-1]", "$.a b", 3]
)
def test_paths_outside_the_subset_are_refused_naming_the_field(path: object) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_path(path, field="targets[0].input_path")
    assert info.value.field == "targets[0].input_path"


def test_select_finds_values_or_missing() -> None:
    assert select(EVENT, ("data", "items", 1, "sku")) == "b-2"
    assert select(EVENT, ("data", "none")) is None
    assert select(EVENT, ("data", "items", 5)) is MISSING
    assert select(EVENT, ("data", "total", "x")) is MISSING
    assert select(EVENT, ("data", 0)) is MISSING


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.from_regex(r"[A-Za-z0-9_-]{1,6}", fullmatch=True), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(json_values, st.data())
def test_a_path_built_from_a_document_selects_its_value(document: Any, data: st.DataObject) -> None:
    path, value = "$", document
    while isinstance(value, dict | list) and value and data.draw(st.booleans()):
        if isinstance(value, dict):
            key = data.draw(st.sampled_from(sorted(value)))
            path, value = f"{path}.{key}", value[key]
        else:
            index = data.draw(st.integers(0, len(value) - 1))
            path, value = f"{path}[{index}]", value[index]
    assert select(document, parse_path(path, field="p")) == value


# --- transforms ------------------------------------------------------------------------------


def test_no_transform_sends_the_whole_event() -> None:
    assert rendered(FunctionTarget("f")) == (EVENT, True)


def test_constant_input_and_input_path() -> None:
    assert rendered(FunctionTarget("f", input={"fixed": [1]})) == ({"fixed": [1]}, True)
    assert rendered(FunctionTarget("f", input=None)) == (None, True)
    assert rendered(FunctionTarget("f", input_path="$.data.order")) == (
        EVENT["data"]["order"],
        True,
    )
    assert rendered(FunctionTarget("f", input_path="$.data.gone")) == (None, True)


def test_json_template_quotes_strings_outside_literals_and_escapes_inside() -> None:
    target = transformer(
        '{"total": <total>, "id": <id>, "items": <items>, "text": "order <id>: <note>",'
        ' "gone": <gone>, "gone_text": "<gone>"}',
        total="$.data.total",
        id="$.data.order.id",
        items="$.data.items",
        note="$.data.order.note",
        gone="$.data.nothing",
    )
    assert rendered(target) == (
        {
            "total": 250,
            "id": "o-1",
            "items": [{"sku": "a-1"}, {"sku": "b-2"}],
            "text": 'order o-1: say "hi"\\n',
            "gone": None,
            "gone_text": "null",
        },
        True,
    )


def test_a_template_that_is_one_string_or_value_renders_json() -> None:
    assert rendered(
        transformer('"<id> is <total>"', id="$.data.order.id", total="$.data.total")
    ) == (
        "o-1 is 250",
        True,
    )
    assert rendered(transformer("<total>", total="$.data.total")) == (250, True)


def test_text_templates_insert_values_as_text() -> None:
    target = transformer(
        "Order <id> totals <total>; first <first>, gone <gone> <unknown>",
        id="$.data.order.id",
        total="$.data.total",
        first="$.data.items[0]",
        gone="$.x",
    )
    assert rendered(target) == (
        'Order o-1 totals 250; first {"sku":"a-1"}, gone null <unknown>',
        False,
    )


def test_templates_that_open_like_an_object_must_be_json() -> None:
    check_template('{"a": <a>}', frozenset({"a"}), field="t")
    check_template("[ALERT] <a>", frozenset({"a"}), field="t")  # text, not JSON
    for bad in ("{<a>: 1}", '{"a": <a>', '{"a": "<a>}'):
        with pytest.raises(InvalidInput) as info:
            check_template(
                bad, frozenset({"a"}), field="targets[0].input_transformer.input_template"
            )
        assert info.value.field == "targets[0].input_transformer.input_template"


@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), json_values))
def test_json_templates_always_render_json(values: dict[str, Any]) -> None:
    event = {"data": values}
    target = transformer(
        '{"a": <a>, "b": [<b>, "<c> and <a>"], "c": {"nested": "<b>"}}',
        a="$.data.a",
        b="$.data.b",
        c="$.data.c",
    )
    out = render(target, event, msgspec.json.encode(event))
    assert out.json
    decoded = msgspec.json.decode(out.body)
    assert decoded["a"] == values.get("a")
    assert decoded["b"][0] == values.get("b")
    text_c = values.get("c") if isinstance(values.get("c"), str) else None
    if text_c is not None and isinstance(values.get("a"), str):
        assert decoded["b"][1] == f"{text_c} and {values['a']}"
