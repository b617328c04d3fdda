"""EventBridge event patterns: validation and compilation.

A pattern is a JSON object shaped like the events it matches. Its leaves are arrays of
allowed values and operator objects; a field matches if ANY entry matches, a pattern
matches if ALL its fields match, and ``"$or": [{...}, {...}]`` is the OR of sub-patterns.
The semantics follow the AWS EventBridge documentation and aws/event-ruler, which
implements it:

- Exact values compare by JSON type: ``"5"`` never matches ``5``; numbers compare
  numerically (``5`` matches ``5.0``); ``null`` matches only ``null``.
- An array in the event matches if any element does. Objects inside arrays keep their
  identity ("array-consistent" matching, as event-ruler's ``rulesForJSONEvent``): the
  fields of one sub-pattern must all match within the same array element.
- ``exists`` works on leaves only: a field holding ``null`` exists, a field holding an
  object or an empty array does not (there is no leaf value there).
- Every operator except ``exists: false`` needs a value, so ``anything-but`` never
  matches a missing field. ``anything-but`` matches when some present value is not
  excluded (also values of another JSON type, and ``null``).
- ``numeric`` applies to JSON numbers only, ``prefix``/``suffix``/``equals-ignore-case``/
  ``wildcard`` to strings only, ``cidr`` to strings that parse as IP addresses.

Invalid patterns raise :class:`InvalidInput` whose ``field`` is the JSON path of the
offending part (``data.total[0].numeric``; ``None`` for the pattern as a whole).
This module compiles the structure (objects, arrays, ``$or``); the operators of the
leaves are compiled in :mod:`squall.engine.router.operators`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator
from typing import Any, Final

from squall.engine.router.operators import Op, canonical, describe, finite, operator
from squall.errors import InvalidInput

__all__ = [
    "MAX_COMBINATIONS",
    "Leaf",
    "Node",
    "Pattern",
    "compile_pattern",
    "leaf_values",
    "object_values",
    "validate_pattern",
]

MAX_COMBINATIONS: Final = 1000  # sub-patterns a pattern expands to through $or
MAX_DEPTH: Final = 64
_MISSING: Final[Any] = object()


def leaf_values(value: Any) -> Iterator[Any]:
    """The scalars an event field holds: nested arrays are crushed, objects skipped."""
    if isinstance(value, list):
        stack = [iter(value)]  # explicit stack: deeply nested arrays must not recurse
        while stack:
            for item in stack[-1]:
                if isinstance(item, list):
                    stack.append(iter(item))
                    break
                if not isinstance(item, dict):
                    yield item
            else:
                stack.pop()
    elif not isinstance(value, dict):
        yield value


def object_values(value: Any) -> list[dict[str, Any]]:
    """The objects an event field holds, looking through (nested) arrays."""
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        return []
    out: list[dict[str, Any]] = []
    stack = [value]
    while stack:
        for item in stack.pop():
            if isinstance(item, dict):
                out.append(item)
            elif isinstance(item, list):
                stack.append(item)
    return out


class Leaf:
    """An array of allowed values and operators for one field."""

    __slots__ = ("exact", "if_absent", "if_present", "ops")

    def __init__(self, exact: frozenset[Hashable], ops: tuple[Op, ...], exists: set[bool]):
        self.exact = exact
        self.ops = ops
        self.if_absent = False in exists  # only `exists: false` matches a missing field
        self.if_present = True in exists

    def matches(self, value: Any) -> bool:
        """Whether the field's value (present in the event) matches."""
        if isinstance(value, (list, dict)):
            items = list(leaf_values(value))
            if not items:  # an object or an empty array: no leaf here, as if missing
                return self.if_absent
        else:
            items = [value]
        if self.if_present:
            return True
        for item in items:
            if canonical(item) in self.exact:
                return True
            for op in self.ops:
                if op.test(item):
                    return True
        return False


class Node:
    """A pattern object: fields that must all match, and ``$or`` groups."""

    __slots__ = ("combinations", "fields", "if_absent", "ors")

    def __init__(
        self, fields: tuple[tuple[str, Leaf | Node], ...], ors: tuple[tuple[Node, ...], ...]
    ) -> None:
        self.fields = fields
        self.ors = ors
        self.if_absent: bool = all(child.if_absent for _, child in fields) and all(
            any(branch.if_absent for branch in group) for group in ors
        )
        self.combinations: int = math.prod(
            child.combinations for _, child in fields if isinstance(child, Node)
        ) * math.prod(sum(branch.combinations for branch in group) for group in ors)

    def matches(self, obj: dict[str, Any]) -> bool:
        for key, child in self.fields:
            value = obj.get(key, _MISSING)
            if value is _MISSING:
                ok = child.if_absent
            elif isinstance(child, Leaf):
                ok = child.matches(value)
            else:
                # A scalar where the pattern has an object has no sub-fields: it is
                # matched as an absent object (only `exists: false` inside can match).
                objects = object_values(value)
                ok = any(child.matches(o) for o in objects) if objects else child.if_absent
            if not ok:
                return False
        return all(any(branch.matches(obj) for branch in group) for group in self.ors)


class Pattern:
    """A compiled, valid event pattern."""

    __slots__ = ("root", "source")

    def __init__(self, root: Node, source: dict[str, Any]) -> None:
        self.root = root
        self.source = source

    def matches(self, event: dict[str, Any]) -> bool:
        return self.root.matches(event) if isinstance(event, dict) else self.root.if_absent


def validate_pattern(pattern: object) -> None:
    """Raise :class:`InvalidInput` naming the path and the reason if ``pattern`` is invalid."""
    compile_pattern(pattern)


def compile_pattern(pattern: object) -> Pattern:
    """Validate ``pattern`` and compile it; raises :class:`InvalidInput` as ``validate_pattern``."""
    if not isinstance(pattern, dict):
        raise InvalidInput(f"an event pattern must be a JSON object, not {describe(pattern)}")
    root = _object(pattern, "", 0)
    if root.combinations > MAX_COMBINATIONS:
        raise InvalidInput(
            f"the pattern is too complex: its $or branches expand to {root.combinations}"
            f" combinations; the limit is {MAX_COMBINATIONS}"
        )
    return Pattern(root, pattern)


# -- compilation -------------------------------------------------------------------------


def _object(pattern: dict[Any, Any], path: str, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise InvalidInput(f"the pattern nests deeper than {MAX_DEPTH} levels", field=path)
    if not pattern:
        raise InvalidInput("empty objects are not allowed", field=path or None)
    fields: list[tuple[str, Leaf | Node]] = []
    ors: list[tuple[Node, ...]] = []
    for key, value in pattern.items():
        if not isinstance(key, str):
            raise InvalidInput(
                f"field names must be strings, not {describe(key)}", field=path or None
            )
        where = f"{path}.{key}" if path else key
        if key == "$or":
            ors.append(_or(value, where, depth))
        elif isinstance(value, dict):
            fields.append((key, _object(value, where, depth + 1)))
        elif isinstance(value, list):
            fields.append((key, _leaf(value, where)))
        else:
            raise InvalidInput(
                "a field must hold an array of values and operators, or an object of"
                f" fields; found {describe(value)}",
                field=where,
            )
    return Node(tuple(fields), tuple(ors))


def _or(value: Any, where: str, depth: int) -> tuple[Node, ...]:
    if not isinstance(value, list) or len(value) < 2:
        raise InvalidInput("$or takes an array of at least two pattern objects", field=where)
    branches = []
    for i, branch in enumerate(value):
        if not isinstance(branch, dict):
            raise InvalidInput(
                f"each $or branch must be a pattern object, not {describe(branch)}",
                field=f"{where}[{i}]",
            )
        branches.append(_object(branch, f"{where}[{i}]", depth + 1))
    return tuple(branches)


def _leaf(values: list[Any], path: str) -> Leaf:
    if not values:
        raise InvalidInput("empty arrays are not allowed", field=path)
    exact: set[Hashable] = set()
    ops: list[Op] = []
    exists: set[bool] = set()
    for i, item in enumerate(values):
        where = f"{path}[{i}]"
        if isinstance(item, dict):
            op = operator(item, where)
            if isinstance(op, bool):
                exists.add(op)
            else:
                ops.append(op)
        elif isinstance(item, list):
            raise InvalidInput("nested arrays are not allowed in a pattern", field=where)
        elif item is None or isinstance(item, (str, bool)):
            exact.add(canonical(item))
        elif isinstance(item, (int, float)):
            finite(item, where)
            exact.add(canonical(item))
        else:
            raise InvalidInput(
                f"a match must be a string, number, boolean, null or operator object,"
                f" not {describe(item)}",
                field=where,
            )
    return Leaf(frozenset(exact), tuple(ops), exists)
