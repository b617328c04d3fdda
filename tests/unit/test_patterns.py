"""EventBridge event patterns: matching semantics and invalid-pattern reasons.

Events and patterns are mostly those of the AWS EventBridge documentation ("Content
filtering", "Arrays", "Null values and empty strings") and aws/event-ruler's README.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squall.engine.router.patterns import compile_pattern, validate_pattern
from squall.errors import InvalidInput

EC2: dict[str, Any] = {
    "version": "0",
    "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "012345679012",
    "time": "2017-10-02T16:24:49Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
    "detail": {
        "c-count": 5,
        "d-count": 3,
        "x-limit": 301.8,
        "source-ip": "10.0.0.33",
        "instance-id": "i-000000aaaaaa00000",
        "state": "running",
    },
}


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    return compile_pattern(pattern).matches(event)


def detail(**fields: Any) -> dict[str, Any]:
    return {"detail": fields}


# -- matching ---------------------------------------------------------------------------

CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    # exact values, AND across fields, OR within a field
    ("aws simple", {
        "detail-type": ["EC2 Instance State-change Notification"],
        "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
        "detail": {"state": ["initializing", "running"]},
    }, EC2, True),
    ("and: one field fails", {"source": ["aws.ec2"], "region": ["eu-west-1"]}, EC2, False),
    ("or within field", {"detail": {"state": ["stopped", "running"]}}, EC2, True),
    ("missing field", {"detail": {"nope": ["x"]}}, EC2, False),
    ("case sensitive", {"source": ["AWS.EC2"]}, EC2, False),
    ("string is not number", {"n": ["5"]}, {"n": 5}, False),
    ("number is not string", {"n": [5]}, {"n": "5"}, False),
    ("5 matches 5.0", {"n": [5]}, {"n": 5.0}, True),
    ("3.018e2 matches 301.8", detail(**{"x-limit": [3.018e2]}), EC2, True),
    ("true is not 1", {"n": [1]}, {"n": True}, False),
    ("bool exact", {"b": [False]}, {"b": False}, True),
    ("null matches null", detail(responseElements=[None]), detail(responseElements=None), True),
    ("empty string", detail(eventVersion=[""]), detail(eventVersion=""), True),
    ("empty string is not null", detail(eventVersion=[""]), detail(eventVersion=None), False),
    ("null is not missing", {"x": [None]}, {}, False),
    # arrays in the event: any element
    ("array intersection", {"resources": ["a", "b"]}, {"resources": ["c", "b"]}, True),
    ("array disjoint", {"resources": ["a"]}, {"resources": ["c", "d"]}, False),
    ("nested arrays crushed", {"r": [3]}, {"r": [[1, [2, 3]]]}, True),
    ("empty array", {"r": ["a"]}, {"r": []}, False),
    ("array of objects", {"e": {"firstName": ["Anna"]}}, {"e": [{"firstName": "John"},
                                                              {"firstName": "Anna"}]}, True),
    ("array consistent", {"e": {"firstName": ["Anna"], "lastName": ["Jones"]}},
     {"e": [{"firstName": "Anna", "lastName": "Smith"},
            {"firstName": "Peter", "lastName": "Jones"}]}, False),
    ("array consistent, same element", {"e": {"firstName": ["Anna"], "lastName": ["Smith"]}},
     {"e": [{"firstName": "Anna", "lastName": "Smith"}]}, True),
    # nested objects
    ("nested", {"a": {"b": {"c": [1]}}}, {"a": {"b": {"c": 1}}}, True),
    ("object in pattern, scalar in event", {"a": {"b": ["x"]}}, {"a": "x"}, False),
    ("scalar in pattern, object in event", {"a": ["x"]}, {"a": {"b": "x"}}, False),
    # prefix / suffix / equals-ignore-case
    ("prefix", {"time": [{"prefix": "2017-10-02"}]}, EC2, True),
    ("prefix miss", {"time": [{"prefix": "2017-10-03"}]}, EC2, False),
    ("prefix only strings", {"n": [{"prefix": "1"}]}, {"n": 12}, False),
    ("prefix ignore case", detail(service=[{"prefix": {"equals-ignore-case": "EventB"}}]),
     detail(service="eventbridge"), True),
    ("suffix", {"FileName": [{"suffix": ".png"}]}, {"FileName": "a.png"}, True),
    ("suffix miss", {"FileName": [{"suffix": ".png"}]}, {"FileName": "a.PNG"}, False),
    ("suffix ignore case", detail(FileName=[{"suffix": {"equals-ignore-case": ".png"}}]),
     detail(FileName="IMG.PNG"), True),
    ("equals-ignore-case", {"source": [{"equals-ignore-case": "AWS.Ec2"}]}, EC2, True),
    ("equals-ignore-case only strings", {"n": [{"equals-ignore-case": "1"}]}, {"n": 1}, False),
    # anything-but
    ("anything-but string", detail(state=[{"anything-but": "initializing"}]), EC2, True),
    ("anything-but string excluded", detail(state=[{"anything-but": "running"}]), EC2, False),
    ("anything-but number", detail(**{"x-limit": [{"anything-but": 123}]}), EC2, True),
    ("anything-but numeric list", detail(**{"c-count": [{"anything-but": [5.0, 6]}]}), EC2, False),
    ("anything-but list", detail(state=[{"anything-but": ["stopped", "overloaded"]}]), EC2, True),
    ("anything-but missing", detail(nope=[{"anything-but": "x"}]), EC2, False),
    ("anything-but other type", {"n": [{"anything-but": "5"}]}, {"n": 5}, True),
    ("anything-but null", {"n": [{"anything-but": "x"}]}, {"n": None}, True),
    ("anything-but array any element", {"n": [{"anything-but": "a"}]}, {"n": ["a", "b"]}, True),
    ("anything-but array all excluded", {"n": [{"anything-but": "a"}]}, {"n": ["a", "a"]}, False),
    ("anything-but prefix", {"Region": [{"anything-but": {"prefix": "us-"}}]},
     {"Region": "us-east-1"}, False),
    ("anything-but prefix other", {"Region": [{"anything-but": {"prefix": "us-"}}]},
     {"Region": "eu-west-1"}, True),
    ("anything-but suffix", {"F": [{"anything-but": {"suffix": ".png"}}]}, {"F": "a.png"}, False),
    ("anything-but ignore case", {"s": [{"anything-but": {"equals-ignore-case": "Init"}}]},
     {"s": "INIT"}, False),
    ("anything-but ignore case list",
     {"s": [{"anything-but": {"equals-ignore-case": ["a", "B"]}}]}, {"s": "c"}, True),
    ("anything-but wildcard", {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]},
     {"FilePath": "/usr/lib/x"}, False),
    ("anything-but wildcard other", {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]},
     {"FilePath": "/usr/bin/x"}, True),
    # numeric
    ("numeric range", detail(**{"c-count": [{"numeric": [">", 0, "<=", 5]}]}), EC2, True),
    ("numeric open top", detail(**{"c-count": [{"numeric": [">", 0, "<", 5]}]}), EC2, False),
    ("numeric <", detail(**{"d-count": [{"numeric": ["<", 10]}]}), EC2, True),
    ("numeric =", detail(**{"x-limit": [{"numeric": ["=", 3.018e2]}]}), EC2, True),
    ("numeric >=", {"n": [{"numeric": [">=", 5]}]}, {"n": 5}, True),
    ("numeric not on strings", {"n": [{"numeric": [">", 0]}]}, {"n": "5"}, False),
    ("numeric not on bools", {"n": [{"numeric": [">", 0]}]}, {"n": True}, False),
    ("numeric in array", {"n": [{"numeric": [">", 10]}]}, {"n": [1, 20]}, True),
    ("numeric missing", {"n": [{"numeric": ["<", 10]}]}, {}, False),
    # cidr
    ("cidr", detail(**{"source-ip": [{"cidr": "10.0.0.0/24"}]}), EC2, True),
    ("cidr outside", detail(**{"source-ip": [{"cidr": "10.0.1.0/24"}]}), EC2, False),
    ("cidr ipv6", {"ip": [{"cidr": "2001:db8::/32"}]}, {"ip": "2001:db8::1"}, True),
    ("cidr v4 vs v6", {"ip": [{"cidr": "2001:db8::/32"}]}, {"ip": "10.0.0.1"}, False),
    ("cidr not an ip", {"ip": [{"cidr": "10.0.0.0/8"}]}, {"ip": "ten"}, False),
    ("cidr not a string", {"ip": [{"cidr": "10.0.0.0/8"}]}, {"ip": 167772161}, False),
    # exists
    ("exists true", detail(**{"c-count": [{"exists": True}]}), EC2, True),
    ("exists false", detail(**{"c-count": [{"exists": False}]}), EC2, False),
    ("exists false missing", detail(**{"c-count": [{"exists": False}]}), detail(state="x"), True),
    ("exists false missing parent", detail(**{"c-count": [{"exists": False}]}), {}, True),
    ("exists true null", {"x": [{"exists": True}]}, {"x": None}, True),
    ("exists false null", {"x": [{"exists": False}]}, {"x": None}, False),
    ("exists true on object", detail(**{"c-count": [{"exists": True}]}),
     detail(**{"c-count": {"c1": 100}}), False),
    ("exists false on object", detail(**{"c-count": [{"exists": False}]}),
     detail(**{"c-count": {"c1": 100}}), True),
    ("exists true empty array", {"x": [{"exists": True}]}, {"x": []}, False),
    ("exists false empty array", {"x": [{"exists": False}]}, {"x": []}, True),
    ("exists false under scalar", {"a": {"b": [{"exists": False}]}}, {"a": 5}, True),
    # wildcard
    ("wildcard", {"source": [{"wildcard": "Simple*Service"}]},
     {"source": "SimpleQueueService"}, True),
    ("wildcard empty run", {"s": [{"wildcard": "a*b"}]}, {"s": "ab"}, True),
    ("wildcard anchored", {"s": [{"wildcard": "a*b"}]}, {"s": "xab"}, False),
    ("wildcard many", {"s": [{"wildcard": "*/lib/*.so"}]}, {"s": "/usr/lib/x.so"}, True),
    ("wildcard overlap", {"s": [{"wildcard": "ab*ba"}]}, {"s": "aba"}, False),
    ("wildcard escaped star", {"s": [{"wildcard": "a\\*b"}]}, {"s": "a*b"}, True),
    ("wildcard escaped star literal", {"s": [{"wildcard": "a\\*b"}]}, {"s": "axb"}, False),
    ("wildcard escaped backslash", {"s": [{"wildcard": "a\\\\*"}]}, {"s": "a\\bc"}, True),
    ("wildcard only strings", {"s": [{"wildcard": "*"}]}, {"s": 1}, False),
    # $or
    ("$or", {"source": ["aws.cloudwatch"], "$or": [
        {"metricName": ["CPUUtilization", "ReadLatency"]},
        {"namespace": ["AWS/EC2", "AWS/ES"]}]},
     {"source": "aws.cloudwatch", "namespace": "AWS/ES"}, True),
    ("$or none", {"$or": [{"a": [1]}, {"b": [2]}]}, {"a": 2, "b": 1}, False),
    ("$or nested in object", {"detail": {"$or": [{"x": [1]}, {"y": [2]}]}},
     {"detail": {"y": 2}}, True),
    ("$or with and inside", {"$or": [{"a": [1], "b": [2]}, {"c": [3]}]}, {"a": 1, "b": 3}, False),
    ("$or in array element", {"e": {"$or": [{"a": [1]}, {"b": [2]}]}},
     {"e": [{"a": 0}, {"b": 2}]}, True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("pattern", "event", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_matches(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    validate_pattern(pattern)
    assert matches(pattern, event) is expected


def test_aws_complex_example() -> None:
    pattern = {
        "time": [{"prefix": "2017-10-02"}],
        "detail": {
            "state": [{"anything-but": "initializing"}],
            "c-count": [{"numeric": [">", 0, "<=", 5]}],
            "d-count": [{"numeric": ["<", 10]}],
            "x-limit": [{"anything-but": [100, 200, 300]}],
            "source-ip": [{"cidr": "10.0.0.0/8"}],
        },
    }
    assert matches(pattern, EC2)
    assert not matches(pattern, {**EC2, "detail": {**EC2["detail"], "x-limit": 200}})


def test_a_field_matches_if_any_entry_matches() -> None:
    pattern = {"v": ["x", {"prefix": "ab"}, {"numeric": [">", 10]}, {"exists": False}]}
    assert [matches(pattern, e) for e in ({"v": "x"}, {"v": "abc"}, {"v": 11}, {})] == [True] * 4
    assert not matches(pattern, {"v": 3})


# -- invalid patterns -------------------------------------------------------------------

INVALID: list[tuple[object, str | None, str]] = [
    ([], None, "must be a JSON object"),
    ("{}", None, "must be a JSON object"),
    ({}, None, "empty objects"),
    ({"a": {}}, "a", "empty objects"),
    ({"a": []}, "a", "empty arrays"),
    ({"a": "x"}, "a", "array of values"),
    ({"a": 5}, "a", "array of values"),
    ({"a": None}, "a", "array of values"),
    ({"a": [["x"]]}, "a[0]", "nested arrays"),
    ({"a": [float("nan")]}, "a[0]", "finite"),
    ({"a": [{"nope": 1}]}, "a[0].nope", "unknown operator 'nope'"),
    ({"a": [{}]}, "a[0]", "exactly one key"),
    ({"a": [{"prefix": "x", "suffix": "y"}]}, "a[0]", "exactly one key"),
    ({"a": [{"prefix": 5}]}, "a[0].prefix", "takes a string"),
    ({"a": [{"prefix": {"equals-ignore-case": 5}}]}, "a[0].prefix.equals-ignore-case", "string"),
    ({"a": [{"prefix": {"wildcard": "x"}}]}, "a[0].prefix", "equals-ignore-case"),
    ({"a": [{"suffix": None}]}, "a[0].suffix", "takes a string"),
    ({"a": [{"equals-ignore-case": ["x"]}]}, "a[0].equals-ignore-case", "takes a string"),
    ({"a": [{"exists": "true"}]}, "a[0].exists", "true or false"),
    ({"a": [{"exists": 1}]}, "a[0].exists", "true or false"),
    ({"a": [{"numeric": 5}]}, "a[0].numeric", "numeric takes"),
    ({"a": [{"numeric": [">"]}]}, "a[0].numeric", "numeric takes"),
    ({"a": [{"numeric": ["!=", 1]}]}, "a[0].numeric[0]", "unknown numeric operator"),
    ({"a": [{"numeric": [">", "1"]}]}, "a[0].numeric[1]", "must be numbers"),
    ({"a": [{"numeric": [">", True]}]}, "a[0].numeric[1]", "must be numbers"),
    ({"a": [{"numeric": [1, ">"]}]}, "a[0].numeric[0]", "unknown numeric operator"),
    ({"a": [{"numeric": ["<", 10, ">", 0]}]}, "a[0].numeric[2]", "lower bound"),
    ({"a": [{"numeric": ["=", 1, "<", 5]}]}, "a[0].numeric[2]", "lower bound"),
    ({"a": [{"numeric": [">", 1, ">", 5]}]}, "a[0].numeric[2]", "lower bound"),
    ({"a": [{"numeric": [">", 5, "<", 1]}]}, "a[0].numeric", "below the upper"),
    ({"a": [{"numeric": [">", 6e9]}]}, "a[0].numeric[1]", "within"),
    ({"a": [{"anything-but": None}]}, "a[0].anything-but", "strings or numbers"),
    ({"a": [{"anything-but": True}]}, "a[0].anything-but", "strings or numbers"),
    ({"a": [{"anything-but": []}]}, "a[0].anything-but", "empty arrays"),
    ({"a": [{"anything-but": ["x", 1]}]}, "a[0].anything-but", "all strings or all numbers"),
    ({"a": [{"anything-but": ["x", None]}]}, "a[0].anything-but[1]", "strings or numbers"),
    ({"a": [{"anything-but": [{"prefix": "x"}]}]}, "a[0].anything-but[0]", "strings or numbers"),
    ({"a": [{"anything-but": {"prefix": ""}}]}, "a[0].anything-but.prefix", "not be empty"),
    ({"a": [{"anything-but": {"suffix": 1}}]}, "a[0].anything-but.suffix", "takes a string"),
    ({"a": [{"anything-but": {"numeric": [">", 1]}}]}, "a[0].anything-but.numeric", "not take"),
    ({"a": [{"anything-but": {"prefix": {"equals-ignore-case": "x"}}}]},
     "a[0].anything-but.prefix", "takes a string"),
    ({"a": [{"anything-but": {"anything-but": "x"}}]}, "a[0].anything-but.anything-but",
     "not take"),
    ({"a": [{"anything-but": {"prefix": "x", "suffix": "y"}}]}, "a[0].anything-but",
     "exactly one key"),
    ({"a": [{"anything-but": {"equals-ignore-case": [1]}}]},
     "a[0].anything-but.equals-ignore-case[0]", "takes a string"),
    ({"a": [{"anything-but": {"wildcard": []}}]}, "a[0].anything-but.wildcard", "non-empty"),
    ({"a": [{"anything-but": {"wildcard": "a**"}}]}, "a[0].anything-but.wildcard", "**"),
    ({"a": [{"wildcard": "a**b"}]}, "a[0].wildcard", "consecutive"),
    ({"a": [{"wildcard": 5}]}, "a[0].wildcard", "takes a string"),
    ({"a": [{"wildcard": "a\\b"}]}, "a[0].wildcard", "backslash"),
    ({"a": [{"wildcard": "a\\"}]}, "a[0].wildcard", "backslash"),
    ({"a": [{"cidr": 10}]}, "a[0].cidr", "takes a string"),
    ({"a": [{"cidr": "10.0.0.1"}]}, "a[0].cidr", "prefix length"),
    ({"a": [{"cidr": "10.0.0.0/33"}]}, "a[0].cidr", "IPv4 or IPv6"),
    ({"a": [{"cidr": "nope/8"}]}, "a[0].cidr", "IPv4 or IPv6"),
    ({"$or": [{"a": [1]}]}, "$or", "at least two"),
    ({"$or": {"a": [1]}}, "$or", "at least two"),
    ({"$or": [{"a": [1]}, ["b"]]}, "$or[1]", "pattern object"),
    ({"$or": [{"a": [1]}, {}]}, "$or[1]", "empty objects"),
    ({"x": {"$or": [{"a": [1]}, {"b": [{"nope": 1}]}]}}, "x.$or[1].b[0].nope", "unknown"),
    ({"data": {"total": [{"numeric": [">", "100"]}]}}, "data.total[0].numeric[1]", "numbers"),
]  # fmt: skip


@pytest.mark.parametrize(("pattern", "field", "reason"), INVALID, ids=[i[2] for i in INVALID])
def test_invalid(pattern: object, field: str | None, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_pattern(pattern)
    assert info.value.field == field
    assert reason in info.value.message


def test_too_many_combinations() -> None:
    ors = {"$or": [{f"k{i}": [i]} for i in range(10)]}  # 10 branches
    pattern = {"a": ors, "b": ors, "c": ors}  # 10 ** 3 = 1,000: at the limit
    validate_pattern(pattern)
    with pytest.raises(InvalidInput, match=r"too complex.*10000 combinations"):
        validate_pattern({**pattern, "d": ors})


def test_deep_nesting_is_refused_not_a_crash() -> None:
    pattern: dict[str, Any] = {"x": ["y"]}
    for _ in range(200):
        pattern = {"n": pattern}
    with pytest.raises(InvalidInput, match="deeper"):
        validate_pattern(pattern)


# -- validate_pattern never fails with anything but InvalidInput ----------------------------

_KEYS = st.sampled_from(["a", "$or", "prefix", "suffix", "numeric", "exists", "anything-but",
                         "cidr", "wildcard", "equals-ignore-case", "nope"])  # fmt: skip
_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
    | st.sampled_from([">", "<=", "=", "10.0.0.0/8", "a*b", "a**", "::1/128", "\\"])
)  # fmt: skip
JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(JSON)
def test_validate_raises_only_invalid_input(pattern: object) -> None:
    try:
        validate_pattern(pattern)
    except InvalidInput as exc:
        assert exc.message
        return
    compiled = compile_pattern(pattern)  # what validates compiles, and matches
    assert isinstance(compiled.matches({"a": [1, "x", None, {"a": 2}]}), bool)
