"""Intrinsic functions: the call parser (nested calls, escapes, paths) and every function."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from squall.asl import intrinsics
from squall.asl.errors import INTRINSIC_FAILURE, StatesError

DOC = {"name": "Ada", "n": 3, "list": [1, 2, 2, 3], "obj": {"a": 1}, "s": "a,b;;c",
       "json": '{"x": [1, 2]}', "nested": {"deep": {"v": "w"}}}


def run(text: str, document: Any = DOC, draws: list[str] | None = None) -> Any:
    def draw(label: str, fn: Any) -> Any:
        if draws is not None:
            draws.append(label)
        return fn()

    return intrinsics.evaluate(intrinsics.parse(text), document, {"Execution": {"Id": "e"}},
                               draw)


@pytest.mark.parametrize(
    ("call", "value"),
    [
        ("States.Format('Hi {}, {} items', $.name, $.n)", "Hi Ada, 3 items"),
        ("States.Format('\\{{}\\} it\\'s \\\\', $.name)", "{Ada} it's \\"),
        ("States.Format('{}/{}', true, null)", "true/null"),
        ("States.StringToJson($.json)", {"x": [1, 2]}),
        ("States.JsonToString($.obj)", '{"a":1}'),
        ("States.Array(1, 'two', $.obj, States.Array())", [1, "two", {"a": 1}, []]),
        ("States.ArrayPartition($.list, 3)", [[1, 2, 2], [3]]),
        ("States.ArrayContains($.list, 2)", True),
        ("States.ArrayContains($.list, 9)", False),
        ("States.ArrayContains(States.Array(true), 1)", False),
        ("States.ArrayContains(States.Array($.obj), States.StringToJson('{\"a\": 1}'))", True),
        ("States.ArrayUnique(States.Array(1, true, 1, '1'))", [1, True, "1"]),
        ("States.ArrayRange(1, 9, 2)", [1, 3, 5, 7, 9]),
        ("States.ArrayRange(5, 1, -2)", [5, 3, 1]),
        ("States.ArrayGetItem($.list, 3)", 3),
        ("States.ArrayLength($.list)", 4),
        ("States.ArrayUnique($.list)", [1, 2, 3]),
        ("States.Base64Encode('Data to encode')", "RGF0YSB0byBlbmNvZGU="),
        ("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", "Data to encode"),
        ("States.Hash($.name, 'SHA-256')", hashlib.sha256(b"Ada").hexdigest()),
        ("States.Hash('x', 'MD5')", hashlib.md5(b"x").hexdigest()),
        ("States.JsonMerge($.obj, States.StringToJson('{\"b\": 2}'), false)",
         {"a": 1, "b": 2}),
        ("States.MathAdd($.n, -10)", -7),
        ("States.StringSplit($.s, ',;')", ["a", "b", "c"]),
        ("States.Format('{}', $.nested['deep'].v)", "w"),
        ("States.Format('{}', $$.Execution.Id)", "e"),
        ("States.MathAdd( 1 ,  2 )", 3),
    ],
)
def test_intrinsics(call: str, value: Any) -> None:
    assert run(call) == value


def test_uuid_and_random_are_drawn_through_the_hook() -> None:
    draws: list[str] = []
    value = run("States.UUID()", draws=draws)
    assert uuid.UUID(value).version == 4
    number = run("States.MathRandom(1, 5)", draws=draws)
    assert 1 <= number < 5
    assert draws == ["States.UUID", "States.MathRandom"]
    seeded = {run("States.MathRandom(0, 1000, 7)", draws=draws) for _ in range(3)}
    assert len(seeded) == 1 and len(draws) == 2  # a seeded draw is the same every time


@pytest.mark.parametrize(
    ("call", "words"),
    [
        ("States.Nope()", "not an intrinsic function"),
        ("States.UUID(1)", "takes 0 argument"),
        ("States.MathAdd(1)", "takes 2 argument"),
        ("States.MathRandom(1)", "2 to 3"),
        ("States.Format()", "at least 1"),
        ("States.Format($.a)", "'template' string"),
        ("States.Format('{} {}', 1)", "2 placeholder"),
        ("States.Hash('a', 'SHA-999')", "not one of"),
        ("States.JsonMerge($.a, $.b, true)", "must be false"),
        ("States.Array('a\\q')", "not an escape"),
        ("States.Array('open", "not closed"),
        ("States.Array(1 2)", "expected ',' or ')'"),
        ("States.Array(nope)", "is not an argument"),
        ("States.Array(1) tail", "after the call"),
        ("States.Array", "expected '('"),
        ("States.Array($.a[)", "not closed"),
    ],
)
def test_bad_calls_are_refused_when_parsed(call: str, words: str) -> None:
    with pytest.raises(intrinsics.IntrinsicError) as caught:
        intrinsics.parse(call)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    "call",
    [
        "States.MathAdd($.name, 1)",
        "States.ArrayPartition($.list, 0)",
        "States.ArrayRange(1, 5000, 1)",
        "States.ArrayRange(1, 2, 0)",
        "States.ArrayGetItem($.list, 10)",
        "States.StringToJson('{bad')",
        "States.Base64Decode('***')",
        "States.Format('{}', $.obj)",
        "States.MathRandom(5, 1)",
        "States.ArrayLength($.name)",
    ],
)
def test_wrong_arguments_at_run_time_are_an_intrinsic_failure(call: str) -> None:
    with pytest.raises(StatesError) as caught:
        run(call)
    assert caught.value.error == INTRINSIC_FAILURE
    assert call.split("(")[0] in caught.value.cause


def quoted(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return "'" + escaped.replace("{", "\\{").replace("}", "\\}") + "'"


@given(st.text(max_size=30))
def test_any_string_survives_quoting(text: str) -> None:
    assert run(f"States.Array({quoted(text)})") == [text]
    assert run(f"States.Format({quoted(text)})") == text


@given(st.lists(st.text(max_size=8) | st.integers(), max_size=5))
def test_format_fills_each_placeholder_in_order(values: list[Any]) -> None:
    template = " | ".join("{}" for _ in values)
    args = "".join(", " + (quoted(v) if isinstance(v, str) else str(v)) for v in values)
    expected = " | ".join(v if isinstance(v, str) else json.dumps(v) for v in values)
    assert run(f"States.Format('{template}'{args})") == expected


@given(st.lists(st.integers(), max_size=20), st.integers(min_value=1, max_value=6))
def test_partition_then_flatten_gives_back_the_array(items: list[int], size: int) -> None:
    parts = run(f"States.ArrayPartition($.items, {size})", {"items": items})
    assert [x for part in parts for x in part] == items
    assert all(len(part) == size for part in parts[:-1])


@given(st.text(max_size=20))
def test_base64_round_trips(text: str) -> None:
    document = {"t": text}
    encoded = run("States.Base64Encode($.t)", document)
    assert encoded == base64.b64encode(text.encode()).decode()
    assert run("States.Base64Decode($.e)", {"e": encoded}) == text


@given(st.integers(-50, 50), st.integers(-50, 50), st.integers(1, 7))
def test_array_range_matches_pythons_inclusive_range(start: int, end: int, step: int) -> None:
    assert run(f"States.ArrayRange({start}, {end}, {step})") == list(range(start, end + 1,
                                                                           step))


def literal_text(value: Any) -> str:
    """``value`` written in the call syntax: nested lists become nested States.Array."""
    if isinstance(value, list):
        return "States.Array(" + ", ".join(literal_text(v) for v in value) + ")"
    if isinstance(value, str):
        return quoted(value)
    return json.dumps(value)


leaves = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=6) | (
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
trees = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4), max_leaves=12)


@given(st.lists(trees, max_size=4))
def test_nested_calls_parse_to_the_values_they_spell(values: list[Any]) -> None:
    assert run(literal_text(values)) == values
    assert run(f"States.JsonToString({literal_text(values)})") == json.dumps(
        values, separators=(",", ":"))
