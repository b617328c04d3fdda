"""ASL paths and payload templates: parsing, selecting, wildcards, ResultPath writes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from squall.asl import paths, payload
from squall.asl.errors import PARAMETER_PATH_FAILURE, StatesError

DOC = {"a": {"b": [10, {"c": "x"}], "k e y": 1}, "list": [{"n": 1}, {"n": 2}]}


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("$", DOC),
        ("$.a.b[0]", 10),
        ("$.a.b[1].c", "x"),
        ("$.a.b[-1].c", "x"),
        ("$['a']['k e y']", 1),
        ('$["a"].b[0]', 10),
        ("$.list[*].n", [1, 2]),
        ("$.a.*", [[10, {"c": "x"}], 1]),
    ],
)
def test_paths_select(text: str, found: Any) -> None:
    assert paths.parse(text).find(DOC) == found


def test_context_paths_read_the_context_object() -> None:
    path = paths.parse("$$.Map.Item.Value")
    assert path.context
    assert path.find(DOC, {"Map": {"Item": {"Value": 7}}}) == 7


@pytest.mark.parametrize("text", ["$.a.nope", "$.a.b[5]", "$.a.b.c", "$.list[0].n.m"])
def test_a_reference_path_that_finds_nothing_raises(text: str) -> None:
    with pytest.raises(paths.PathError, match="found nothing"):
        paths.parse(text).find(DOC)


@pytest.mark.parametrize(
    ("text", "words"),
    [("a.b", "must start"), ("$.", "field name"), ("$[1:2]", "not an index"),
     ("$[?(@.a)]", "not an index"), ("$a", "unexpected"), ("$['a'", "not closed"), (3, "not a")],
)
def test_bad_paths_are_refused(text: Any, words: str) -> None:
    with pytest.raises(paths.PathError, match=words):
        paths.parse(text)


def test_reference_paths_refuse_wildcards() -> None:
    with pytest.raises(paths.PathError, match="reference path"):
        paths.parse("$.list[*]", reference=True)


def test_put_creates_missing_objects_and_leaves_the_input_alone() -> None:
    original = {"a": {"b": 1}}
    out = paths.put(original, paths.parse("$.a.c.d"), 5)
    assert out == {"a": {"b": 1, "c": {"d": 5}}}
    assert original == {"a": {"b": 1}}
    assert paths.put(original, paths.parse("$"), [1]) == [1]
    assert paths.put({"l": [1, 2]}, paths.parse("$.l[1]"), 9) == {"l": [1, 9]}


@pytest.mark.parametrize(("document", "text"), [([1], "$.a"), ({"a": 1}, "$.a.b"),
                                                 ({"l": []}, "$.l[0]")])
def test_put_where_it_cannot_raises(document: Any, text: str) -> None:
    with pytest.raises(paths.PathError, match="ResultPath"):
        paths.put(document, paths.parse(text), 1)


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=6)


@given(st.lists(names, min_size=1, max_size=5), st.integers() | st.text(max_size=5))
def test_put_then_find_gives_back_the_value(steps: list[str], value: Any) -> None:
    path = paths.parse("$" + "".join(f".{s}" for s in steps))
    assert path.find(paths.put({}, path, value)) == value
    bracketed = paths.parse("$" + "".join(f"['{s}']" for s in steps))
    assert bracketed.steps == path.steps


def test_templates_fill_paths_context_and_intrinsics() -> None:
    template = payload.compile_template({
        "fixed": {"nested": [1, {"id.$": "$.a.b[0]"}]},
        "item.$": "$$.Map.Item.Index",
        "msg.$": "States.Format('c={}', $.a.b[1].c)",
        "all.$": "$",
    })
    filled = payload.apply(template, DOC, {"Map": {"Item": {"Index": 3}}}, _no_draw)
    assert filled == {"fixed": {"nested": [1, {"id": 10}]}, "item": 3, "msg": "c=x",
                      "all": DOC}


def test_a_template_path_that_finds_nothing_is_a_parameter_path_failure() -> None:
    template = payload.compile_template({"x.$": "$.missing"})
    with pytest.raises(StatesError) as caught:
        payload.apply(template, DOC, {}, _no_draw)
    assert caught.value.error == PARAMETER_PATH_FAILURE
    template = payload.compile_template({"x.$": "States.ArrayLength($.missing)"})
    with pytest.raises(StatesError) as caught:
        payload.apply(template, DOC, {}, _no_draw)
    assert caught.value.error == PARAMETER_PATH_FAILURE


def _no_draw(label: str, fn: Any) -> Any:
    raise AssertionError(f"nothing here draws a value ({label})")
