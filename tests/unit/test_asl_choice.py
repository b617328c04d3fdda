"""Choice rules: every comparison operator and its *Path variant, the type tests,
StringMatches wildcards, And/Or/Not, checked against Python's own comparisons."""

from __future__ import annotations

import operator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from squall.asl import choice
from squall.asl.errors import RUNTIME, StatesError

DOC = {"s": "banana", "n": 5, "f": 2.5, "b": True, "z": None, "t": "2024-05-01T10:00:00Z",
       "other": {"s": "apple", "n": 5, "b": True, "t": "2024-05-01T12:00:00+02:00"}}


def holds(spec: dict[str, Any], document: Any = DOC) -> bool:
    return choice.evaluate(choice.parse_rule(spec, "rule"), document)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"Variable": "$.s", "StringEquals": "banana"}, True),
        ({"Variable": "$.s", "StringLessThan": "cherry"}, True),
        ({"Variable": "$.s", "StringGreaterThan": "cherry"}, False),
        ({"Variable": "$.s", "StringLessThanEquals": "banana"}, True),
        ({"Variable": "$.s", "StringGreaterThanEquals": "banana"}, True),
        ({"Variable": "$.s", "StringEqualsPath": "$.other.s"}, False),
        ({"Variable": "$.s", "StringGreaterThanPath": "$.other.s"}, True),
        ({"Variable": "$.s", "StringLessThanPath": "$.other.s"}, False),
        ({"Variable": "$.s", "StringLessThanEqualsPath": "$.other.s"}, False),
        ({"Variable": "$.s", "StringGreaterThanEqualsPath": "$.other.s"}, True),
        ({"Variable": "$.n", "NumericEquals": 5}, True),
        ({"Variable": "$.n", "NumericEquals": 5.0}, True),
        ({"Variable": "$.f", "NumericLessThan": 3}, True),
        ({"Variable": "$.f", "NumericGreaterThan": 3}, False),
        ({"Variable": "$.n", "NumericLessThanEquals": 5}, True),
        ({"Variable": "$.n", "NumericGreaterThanEquals": 6}, False),
        ({"Variable": "$.n", "NumericEqualsPath": "$.other.n"}, True),
        ({"Variable": "$.f", "NumericLessThanPath": "$.n"}, True),
        ({"Variable": "$.f", "NumericGreaterThanPath": "$.n"}, False),
        ({"Variable": "$.n", "NumericLessThanEqualsPath": "$.other.n"}, True),
        ({"Variable": "$.n", "NumericGreaterThanEqualsPath": "$.f"}, True),
        ({"Variable": "$.b", "BooleanEquals": True}, True),
        ({"Variable": "$.b", "BooleanEqualsPath": "$.other.b"}, True),
        ({"Variable": "$.t", "TimestampEquals": "2024-05-01T10:00:00Z"}, True),
        ({"Variable": "$.t", "TimestampEqualsPath": "$.other.t"}, True),  # same instant
        ({"Variable": "$.t", "TimestampLessThan": "2024-05-01T10:00:01Z"}, True),
        ({"Variable": "$.t", "TimestampGreaterThan": "2024-05-01T10:00:01Z"}, False),
        ({"Variable": "$.t", "TimestampLessThanEquals": "2024-05-01T10:00:00Z"}, True),
        ({"Variable": "$.t", "TimestampGreaterThanEquals": "2025-01-01T00:00:00Z"}, False),
        ({"Variable": "$.t", "TimestampLessThanPath": "$.other.t"}, False),
        ({"Variable": "$.t", "TimestampGreaterThanPath": "$.other.t"}, False),
        ({"Variable": "$.t", "TimestampLessThanEqualsPath": "$.other.t"}, True),
        ({"Variable": "$.t", "TimestampGreaterThanEqualsPath": "$.other.t"}, True),
        ({"Variable": "$.s", "StringMatches": "b*na"}, True),
        ({"Variable": "$.s", "StringMatches": "*x*"}, False),
        ({"Variable": "$.z", "IsNull": True}, True),
        ({"Variable": "$.s", "IsNull": True}, False),
        ({"Variable": "$.s", "IsPresent": True}, True),
        ({"Variable": "$.missing", "IsPresent": True}, False),
        ({"Variable": "$.missing", "IsPresent": False}, True),
        ({"Variable": "$.n", "IsNumeric": True}, True),
        ({"Variable": "$.b", "IsNumeric": True}, False),  # a boolean is not a number
        ({"Variable": "$.s", "IsString": True}, True),
        ({"Variable": "$.b", "IsBoolean": True}, True),
        ({"Variable": "$.t", "IsTimestamp": True}, True),
        ({"Variable": "$.s", "IsTimestamp": False}, True),
        ({"Variable": "$.n", "StringEquals": "5"}, False),  # a type mismatch is false
        ({"Variable": "$.s", "NumericEquals": 5}, False),
        ({"Variable": "$.b", "NumericEquals": 1}, False),
        ({"And": [{"Variable": "$.n", "NumericEquals": 5}, {"Variable": "$.b",
                                                            "BooleanEquals": True}]}, True),
        ({"And": [{"Variable": "$.n", "NumericEquals": 5}, {"Variable": "$.b",
                                                            "BooleanEquals": False}]}, False),
        ({"Or": [{"Variable": "$.n", "NumericEquals": 4}, {"Variable": "$.s",
                                                           "StringEquals": "banana"}]}, True),
        ({"Not": {"Variable": "$.n", "NumericEquals": 5}}, False),
        ({"Not": {"Or": [{"Variable": "$.z", "IsNull": False},
                         {"Not": {"Variable": "$.b", "BooleanEquals": True}}]}}, True),
    ],
)
def test_rules(spec: dict[str, Any], expected: bool) -> None:
    assert holds(spec) is expected


def test_every_operator_is_covered_above() -> None:
    source = Path(__file__).read_text()
    missing = [op for op in choice.OPERATORS if f'"{op}"' not in source]
    assert missing == []


def test_a_variable_that_finds_nothing_is_a_runtime_error() -> None:
    with pytest.raises(StatesError) as caught:
        holds({"Variable": "$.missing", "StringEquals": "x"})
    assert caught.value.error == RUNTIME
    with pytest.raises(StatesError) as caught:
        holds({"Variable": "$.s", "StringEqualsPath": "$.missing"})
    assert caught.value.error == RUNTIME


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [("*.log", "app.log", True), ("*.log", "app.logs", False), ("a\\*b", "a*b", True),
     ("a\\*b", "axb", False), ("a\\\\b", "a\\b", True), ("x*y*z", "xAAyBBz", True),
     ("", "", True), ("*", "anything\nat all", True), ("a.c", "abc", False)],
)
def test_string_matches_wildcards(pattern: str, text: str, expected: bool) -> None:
    assert holds({"Variable": "$.v", "StringMatches": pattern}, {"v": text}) is expected


def test_rules_refuse_combinators_with_other_fields() -> None:
    with pytest.raises(choice.RuleError) as caught:
        choice.parse_rule({"And": [{"Variable": "$.a", "IsNull": True}], "Variable": "$.a"},
                          "r")
    assert caught.value.where == "r.Variable"
    with pytest.raises(choice.RuleError, match="exactly one"):
        choice.parse_rule({"Variable": "$.a", "IsNull": True, "IsString": True}, "r")


COMPARE = {"Equals": operator.eq, "LessThan": operator.lt, "GreaterThan": operator.gt,
           "LessThanEquals": operator.le, "GreaterThanEquals": operator.ge}
numbers = st.integers(-1000, 1000) | st.floats(-1e6, 1e6, allow_nan=False)


@given(numbers, numbers, st.sampled_from(sorted(COMPARE)))
def test_numeric_operators_match_python(left: float, right: float, name: str) -> None:
    expected = COMPARE[name](left, right)
    assert holds({"Variable": "$.a", f"Numeric{name}": right}, {"a": left}) is expected
    assert holds({"Variable": "$.a", f"Numeric{name}Path": "$.b"},
                 {"a": left, "b": right}) is expected


@given(st.text(max_size=6), st.text(max_size=6), st.sampled_from(sorted(COMPARE)))
def test_string_operators_match_python(left: str, right: str, name: str) -> None:
    expected = COMPARE[name](left, right)
    assert holds({"Variable": "$.a", f"String{name}": right}, {"a": left}) is expected


@given(st.text(alphabet="ab*\\", max_size=6), st.text(alphabet="ab*\\", max_size=6))
def test_string_matches_agrees_with_a_reference_matcher(pattern: str, text: str) -> None:
    assert holds({"Variable": "$.v", "StringMatches": pattern}, {"v": text}) is (
        _reference_match(pattern, text))


def _reference_match(pattern: str, text: str) -> bool:
    """A backtracking matcher written from the spec's words, independent of regexes."""
    tokens: list[str | None] = []  # None: a wildcard
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            tokens.append(pattern[i + 1])
            i += 2
        else:
            tokens.append(None if pattern[i] == "*" else pattern[i])
            i += 1

    def match(t: int, s: int) -> bool:
        if t == len(tokens):
            return s == len(text)
        if tokens[t] is None:
            return any(match(t + 1, k) for k in range(s, len(text) + 1))
        return s < len(text) and text[s] == tokens[t] and match(t + 1, s + 1)

    return match(0, 0)


utc_times = st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC))


@given(utc_times, utc_times, st.sampled_from(sorted(COMPARE)))
def test_timestamp_operators_compare_instants(a: datetime, b: datetime, name: str) -> None:
    left = a.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    right = b.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    expected = COMPARE[name](a.replace(microsecond=0), b.replace(microsecond=0))
    assert holds({"Variable": "$.a", f"Timestamp{name}": right}, {"a": left}) is expected
