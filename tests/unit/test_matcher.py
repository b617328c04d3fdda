"""The combined matcher: it returns exactly the rules whose compiled pattern matches."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squall.engine.router.matcher import Matcher
from squall.engine.router.patterns import Pattern, compile_pattern
from squall.errors import InvalidInput

ORDER = {
    "type": "order.placed",
    "source": "shop",
    "data": {"total": 150, "email": "Ann@Example.com", "items": [{"sku": "A-1", "qty": 2}]},
}


def test_match_by_exact_value_and_operator() -> None:
    m = Matcher()
    m.add("placed", {"type": ["order.placed"]})
    m.add("big", {"type": ["order.placed"], "data": {"total": [{"numeric": [">", 100]}]}})
    m.add("small", {"type": ["order.placed"], "data": {"total": [{"numeric": ["<=", 100]}]}})
    m.add("other", {"type": ["order.cancelled"]})
    m.add("example", {"data": {"email": [{"suffix": {"equals-ignore-case": "@EXAMPLE.COM"}}]}})
    m.add("sku", {"data": {"items": {"sku": [{"prefix": "A-"}], "qty": [2]}}})
    m.add("no-coupon", {"data": {"coupon": [{"exists": False}]}})
    assert m.match(ORDER) == {"placed", "big", "example", "sku", "no-coupon"}


def test_add_replaces_and_remove_forgets() -> None:
    m = Matcher()
    m.add("r", {"type": ["order.placed"]})
    m.add("r", {"type": ["order.cancelled"]})
    assert m.match(ORDER) == set()
    m.add("s", {"source": [{"prefix": "sh"}]})
    assert m.match(ORDER) == {"s"}
    m.remove("s")
    m.remove("s")  # unknown ids are ignored
    m.remove("r")
    assert m.match(ORDER) == set()
    assert len(m) == 0


def test_invalid_pattern_is_refused_and_changes_nothing() -> None:
    m = Matcher()
    m.add("r", {"type": ["order.placed"]})
    with pytest.raises(InvalidInput) as info:
        m.add("r", {"type": [{"wildcard": "a**"}]})
    assert info.value.field == "type[0].wildcard"
    assert m.match(ORDER) == {"r"}


def test_or_rule_is_found_through_any_branch() -> None:
    m = Matcher()
    m.add("r", {"$or": [{"source": ["nope"]}, {"data": {"total": [150]}}]})
    assert m.match(ORDER) == {"r"}
    assert m.match({"source": "nope"}) == {"r"}
    assert m.match({"source": "shop"}) == set()


def test_flat_events_are_matched_by_the_automaton_alone() -> None:
    m = Matcher()
    for i in range(1000):
        m.add(f"r{i}", {"type": [f"t{i}"], "data": {"n": [{"numeric": [">", 0]}]}})
    confirmed: list[str] = []
    # Wrap each compiled pattern to see which rules are confirmed by pattern evaluation.
    m._patterns = {k: _Counting(k, p, confirmed) for k, p in m._patterns.items()}  # type: ignore[misc]
    assert m.match({"type": "t7", "data": {"n": 1}}) == {"r7"}
    assert m.match({"type": "t7", "data": {"n": 0}}) == set()
    assert confirmed == []


def test_objects_inside_arrays_keep_their_identity() -> None:
    m = Matcher()
    m.add("same-line", {"data": {"lines": {"sku": ["A"], "qty": [2]}}})
    m.add("uncouponed", {"data": {"lines": {"sku": ["A"], "coupon": [{"exists": False}]}}})
    m.add("total", {"data": {"total": [10]}})
    confirmed: list[str] = []
    m._patterns = {k: _Counting(k, p, confirmed) for k, p in m._patterns.items()}  # type: ignore[misc]
    apart = {"data": {"total": 10, "lines": [{"sku": "A", "qty": 1, "coupon": "X"},
                                             {"sku": "B", "qty": 2}]}}  # fmt: skip
    assert m.match(apart) == {"total"}
    together = {"data": {"lines": [{"sku": "A", "qty": 2}, {"sku": "A", "coupon": "X"}]}}
    assert m.match(together) == {"same-line", "uncouponed"}
    # Only rules reading below the array are confirmed, and only when it holds objects.
    assert sorted(confirmed) == ["same-line", "same-line", "uncouponed", "uncouponed"]
    confirmed.clear()
    assert m.match({"data": {"lines": {"sku": "A", "qty": 2}}}) == {"same-line", "uncouponed"}
    assert confirmed == []


def test_rules_sharing_conditions_share_states() -> None:
    m = Matcher()
    for i in range(1000):
        m.add(f"r{i}", {"source": ["shop"], "type": ["order.placed"], "data": {"n": [i]}})
    root_steps = m._root.steps or {}
    assert len(root_steps) == 1  # every rule starts with the same step ...
    (step,) = root_steps.values()
    assert len(step.exact or {}) == 1000  # ... and branches by the value of data.n
    assert m.match({"source": "shop", "type": "order.placed", "data": {"n": 7}}) == {"r7"}


def test_removed_rules_are_tidied_away() -> None:
    m = Matcher()
    for i in range(200):
        m.add(f"r{i}", {"data": {"n": [i]}})
    for i in range(150):
        m.remove(f"r{i}")
    ((_, step),) = (m._root.steps or {}).items()
    assert len(step.exact or {}) < 100  # once most were dead, the automaton was rebuilt
    assert m.match({"data": {"n": 170}}) == {"r170"}
    assert m.match({"data": {"n": 7}}) == set()


class _Counting:
    def __init__(self, rule_id: str, pattern: Pattern, seen: list[str]) -> None:
        self.rule_id, self.pattern, self.seen = rule_id, pattern, seen

    def matches(self, event: dict[str, Any]) -> bool:
        self.seen.append(self.rule_id)
        return self.pattern.matches(event)


def test_non_object_event_matches_nothing_anchored() -> None:
    m = Matcher()
    m.add("r", {"a": ["x"]})
    m.add("absent", {"a": [{"exists": False}]})
    assert m.match([]) == {"absent"}  # type: ignore[arg-type]


# -- property: the matcher agrees with the patterns ------------------------------------

KEYS = ["a", "b", "c"]
STRINGS = st.sampled_from(["", "x", "xy", "X", "yx", "a*b", "10.0.0.1", "2001:db8::1", "5"])
NUMBERS = st.sampled_from([0, 1, 5, 5.0, -2.5, 100, 1e9])
SCALARS = st.none() | st.booleans() | NUMBERS | STRINGS


def events() -> st.SearchStrategy[dict[str, Any]]:
    values = st.recursive(
        SCALARS,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)
        ),
        max_leaves=6,
    )
    return st.dictionaries(st.sampled_from(KEYS), values, min_size=1, max_size=3)


WILDCARDS = st.sampled_from(["*", "x*", "*x", "a\\*b", "x*y", "*y*"])
OPERATORS = st.one_of(
    st.builds(lambda s: {"prefix": s}, STRINGS),
    st.builds(lambda s: {"suffix": s}, STRINGS),
    st.builds(lambda s: {"prefix": {"equals-ignore-case": s}}, STRINGS),
    st.builds(lambda s: {"suffix": {"equals-ignore-case": s}}, STRINGS),
    st.builds(lambda s: {"equals-ignore-case": s}, STRINGS),
    st.builds(lambda s: {"wildcard": s}, WILDCARDS),
    st.builds(lambda b: {"exists": b}, st.booleans()),
    st.builds(lambda s: {"cidr": s}, st.sampled_from(["10.0.0.0/8", "2001:db8::/32"])),
    st.builds(lambda op, n: {"numeric": [op, n]}, st.sampled_from(["=", "<", "<=", ">", ">="]),
              NUMBERS),
    st.builds(lambda lo, hi: {"numeric": [">=", lo, "<", lo + hi]}, NUMBERS,
              st.sampled_from([1, 10, 1000])),
    st.builds(lambda v: {"anything-but": v},
              STRINGS | NUMBERS | st.lists(STRINGS, min_size=1, max_size=3)
              | st.lists(NUMBERS, min_size=1, max_size=3)),
    st.builds(lambda s: {"anything-but": {"prefix": s}}, STRINGS.filter(bool)),
    st.builds(lambda s: {"anything-but": {"suffix": s}}, STRINGS.filter(bool)),
    st.builds(lambda s: {"anything-but": {"equals-ignore-case": s}}, STRINGS),
    st.builds(lambda s: {"anything-but": {"wildcard": s}}, WILDCARDS),
)  # fmt: skip
LEAVES = st.lists(SCALARS | OPERATORS, min_size=1, max_size=3)


def patterns() -> st.SearchStrategy[dict[str, Any]]:
    def objects(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
        fields = st.dictionaries(st.sampled_from(KEYS), inner, min_size=1, max_size=2)
        # $or is rarer than plain fields, as in real rules; max_leaves keeps patterns small
        # enough that a fair share of the random events match.
        ors = st.lists(fields, min_size=2, max_size=3)
        return st.builds(
            lambda f, o: {**f, "$or": o} if o else f, fields, st.none() | st.none() | ors
        )

    return objects(st.recursive(LEAVES, objects, max_leaves=3))


@settings(max_examples=300, deadline=None)
@given(st.lists(patterns(), min_size=1, max_size=8), st.lists(events(), min_size=1, max_size=6))
def test_matcher_agrees_with_patterns(rules: list[dict[str, Any]], sample: list[Any]) -> None:
    m = Matcher()
    compiled = {f"r{i}": compile_pattern(p) for i, p in enumerate(rules)}
    for rule_id, pattern in compiled.items():
        m.add(rule_id, pattern)
    for rule_id in list(compiled)[::3]:  # removals must leave the index consistent
        m.remove(rule_id)
        del compiled[rule_id]
    for event in sample:
        expected = {rule_id for rule_id, p in compiled.items() if p.matches(event)}
        assert m.match(event) == expected
