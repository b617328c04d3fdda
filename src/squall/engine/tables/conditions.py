"""Conditions on an item's attributes, for conditional writes.

A condition maps attribute names to tests, all of which must hold::

    {"status": {"eq": "open"}, "stock": {"gte": 1}, "archived": {"exists": False}}

Tests: ``eq``, ``ne``, ``lt``, ``lte``, ``gt``, ``gte`` (numbers with numbers, strings with
strings), ``between`` ``[low, high]``, ``in`` ``[values]``, ``begins_with`` (a string),
``contains`` (a substring, or an element of a list), ``exists`` (true or false). A missing
item has no attributes: only ``exists: false`` and ``ne`` hold on it.
"""

from __future__ import annotations

from typing import Any, Final

from squall.errors import InvalidInput

TESTS: Final = (
    "eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "begins_with", "contains", "exists",
)
_ORDERED: Final = ("lt", "lte", "gt", "gte", "between")
_MISSING = object()


def check_condition(condition: Any, field: str = "condition") -> dict[str, dict[str, Any]]:
    """Validate a condition; InvalidInput names the attribute and test at fault."""
    if not isinstance(condition, dict):
        raise InvalidInput(f"{field} must be a JSON object of attribute tests", field=field)
    for attribute, tests in condition.items():
        where = f"{field}.{attribute}"
        if not isinstance(tests, dict) or not tests:
            raise InvalidInput(
                f"{where} must be an object of tests, e.g. {{\"eq\": 1}} (tests:"
                f" {', '.join(TESTS)})",
                field=where,
            )
        for test, value in tests.items():
            at = f"{where}.{test}"
            if test not in TESTS:
                raise InvalidInput(
                    f"{at}: unknown test {test!r} (tests: {', '.join(TESTS)})", field=at
                )
            if test == "exists" and not isinstance(value, bool):
                raise InvalidInput(f"{at} must be true or false", field=at)
            if test in ("between",) and not (isinstance(value, list) and len(value) == 2):
                raise InvalidInput(f"{at} must be a list [low, high]", field=at)
            if test == "in" and not isinstance(value, list):
                raise InvalidInput(f"{at} must be a list of values", field=at)
            if test == "begins_with" and not isinstance(value, str):
                raise InvalidInput(f"{at} must be a string", field=at)
            if test in _ORDERED:
                for bound in value if test == "between" else [value]:
                    if not _orderable(bound):
                        raise InvalidInput(f"{at} must compare with a number or a string",
                                           field=at)
    return condition


def failed_test(condition: dict[str, dict[str, Any]], item: dict[str, Any] | None) -> str | None:
    """The first test that does not hold on ``item`` (None: absent), described; or None."""
    for attribute, tests in condition.items():
        found = _MISSING if item is None else item.get(attribute, _MISSING)
        for test, value in tests.items():
            if not _holds(test, value, found):
                shown = "missing" if found is _MISSING else repr(found)
                return f"{attribute} {test} {value!r} (found {shown})"
    return None


def _orderable(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, int | float) and not isinstance(value, bool)
    )


def _same_kind(a: Any, b: Any) -> bool:
    return _orderable(a) and _orderable(b) and isinstance(a, str) == isinstance(b, str)


def _holds(test: str, value: Any, found: Any) -> bool:
    if test == "exists":
        return (found is not _MISSING) is bool(value)
    if test == "ne":
        return found is _MISSING or found != value
    if found is _MISSING:
        return False
    if test == "eq":
        return bool(found == value) and isinstance(found, bool) == isinstance(value, bool)
    if test == "in":
        return any(found == v and isinstance(found, bool) == isinstance(v, bool) for v in value)
    if test == "begins_with":
        return isinstance(found, str) and found.startswith(value)
    if test == "contains":
        if isinstance(found, str):
            return isinstance(value, str) and value in found
        return isinstance(found, list) and any(v == value for v in found)
    if test == "between":
        low, high = value
        return _same_kind(found, low) and _same_kind(found, high) and bool(low <= found <= high)
    if not _same_kind(found, value):
        return False
    if test == "lt":
        return bool(found < value)
    if test == "lte":
        return bool(found <= value)
    if test == "gt":
        return bool(found > value)
    return bool(found >= value)  # gte
