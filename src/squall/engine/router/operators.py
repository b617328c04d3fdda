"""The operators of EventBridge event patterns, each compiled to a test on one value.

``{"prefix": "us-"}``, ``{"numeric": [">", 0, "<=", 5]}``, ``{"anything-but": [...]}``
and the rest: :func:`operator` validates one operator object of a pattern leaf and
returns an :class:`Op` (or a bool for ``exists``). Each test takes one scalar of the
event and says whether it matches; the type rules (numeric only on numbers, string
operators only on strings, cidr only on IP strings) live in the tests.
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Callable, Hashable
from typing import Any, Final

from squall.errors import InvalidInput

NUMERIC_LIMIT: Final = 5.0e9  # AWS: numeric operands lie within +-5.0e9
OPERATORS: Final = (
    "anything-but", "cidr", "equals-ignore-case", "exists", "numeric", "prefix", "suffix",
    "wildcard",
)  # fmt: skip
Test = Callable[[Any], bool]


def canonical(value: object) -> Hashable:
    """The key under which a scalar is compared for exact equality.

    Tagging non-strings keeps JSON types apart (``True`` is not ``1``, ``"5"`` is not
    ``5``) while ``(float, 5) == (float, 5.0)`` lets numbers compare numerically.
    """
    kind = type(value)
    if kind is str or value is None:
        return value
    if kind is bool:
        return (bool, value)
    if kind is int or kind is float:
        return (float, value)
    return (object, id(value))  # not JSON: equal to no pattern value


class Op:
    """One operator of a leaf. ``kind`` and ``key`` tell the matcher how to index it:
    ``ci``/``pre``/``suf`` (and ``pre-ci``/``suf-ci``) are indexable by ``key`` (already
    case-folded for the ``-ci`` kinds); ``other`` can only be indexed by field presence."""

    __slots__ = ("key", "kind", "sig", "test")

    def __init__(self, kind: str, key: str, test: Test) -> None:
        self.kind = kind
        self.key = key
        self.test = test
        self.sig = f"{kind}:{key}"  # equal for operators that test alike; see operator()


def operator(item: dict[Any, Any], where: str) -> Op | bool:
    """Compile one operator object; ``exists`` compiles to its bool."""
    op = _operator(item, where)
    if isinstance(op, Op) and op.kind == "other":
        # Rules with the same operator share its test in the matcher's automaton.
        op.sig = json.dumps(item, sort_keys=True)
    return op


def _operator(item: dict[Any, Any], where: str) -> Op | bool:
    if len(item) != 1:
        raise InvalidInput("an operator object must have exactly one key", field=where)
    ((name, arg),) = item.items()
    where = f"{where}.{name}"
    if name == "exists":
        if not isinstance(arg, bool):
            raise InvalidInput("exists takes true or false", field=where)
        return arg
    if name in ("prefix", "suffix"):
        return _affix(name, arg, where)
    if name == "equals-ignore-case":
        folded = _string(arg, where, name).casefold()
        return Op("ci", folded, lambda v: isinstance(v, str) and v.casefold() == folded)
    if name == "wildcard":
        glob = _glob(_string(arg, where, name), where)
        return Op("other", "", lambda v: isinstance(v, str) and glob(v))
    if name == "numeric":
        return Op("other", "", _numeric(arg, where))
    if name == "cidr":
        return Op("other", "", _cidr(arg, where))
    if name == "anything-but":
        return Op("other", "", _anything_but(arg, where))
    raise InvalidInput(
        f"unknown operator {name!r}; expected one of: {', '.join(OPERATORS)}", field=where
    )


def _affix(name: str, arg: Any, where: str) -> Op:
    kind = name[:3]  # "pre" or "suf"
    if isinstance(arg, dict) and len(arg) == 1 and "equals-ignore-case" in arg:
        where = f"{where}.equals-ignore-case"
        key = _string(arg["equals-ignore-case"], where, f"{name}/equals-ignore-case").casefold()
        if kind == "pre":
            return Op("pre-ci", key, lambda v: isinstance(v, str) and v.casefold().startswith(key))
        return Op("suf-ci", key, lambda v: isinstance(v, str) and v.casefold().endswith(key))
    if isinstance(arg, dict):
        raise InvalidInput(
            f"{name} takes a string or {{'equals-ignore-case': string}}", field=where
        )
    text = _string(arg, where, name)
    if kind == "pre":
        return Op("pre", text, lambda v: isinstance(v, str) and v.startswith(text))
    return Op("suf", text, lambda v: isinstance(v, str) and v.endswith(text))


def _anything_but(arg: Any, where: str) -> Test:
    """The test for the values ``arg`` does not exclude."""
    if isinstance(arg, dict):
        if len(arg) != 1:
            raise InvalidInput("an anything-but object must have exactly one key", field=where)
        ((name, inner),) = arg.items()
        at = f"{where}.{name}"
        if name in ("prefix", "suffix"):
            text = _string(inner, at, f"anything-but/{name}")
            if not text:  # AWS: an empty prefix would exclude every string
                raise InvalidInput(f"anything-but/{name} must not be empty", field=at)
            if name == "prefix":
                return lambda v: not (isinstance(v, str) and v.startswith(text))
            return lambda v: not (isinstance(v, str) and v.endswith(text))
        if name == "equals-ignore-case":
            folded = {s.casefold() for s in _strings(inner, at, name)}
            return lambda v: not (isinstance(v, str) and v.casefold() in folded)
        if name == "wildcard":
            globs = [_glob(s, at) for s in _strings(inner, at, name)]
            return lambda v: not (isinstance(v, str) and any(glob(v) for glob in globs))
        raise InvalidInput(
            f"anything-but does not take {name!r}; it takes a value, a list of values, or"
            " one of prefix, suffix, equals-ignore-case, wildcard",
            field=at,
        )
    items = arg if isinstance(arg, list) else [arg]
    if not items:
        raise InvalidInput("empty arrays are not allowed", field=where)
    for i, item in enumerate(items):
        at = f"{where}[{i}]" if isinstance(arg, list) else where
        if not isinstance(item, str) and not is_number(item):
            raise InvalidInput(
                f"anything-but takes strings or numbers, not {describe(item)}", field=at
            )
        if is_number(item):
            finite(item, at)
    if len({isinstance(item, str) for item in items}) > 1:
        raise InvalidInput("anything-but lists must be all strings or all numbers", field=where)
    keys = frozenset(canonical(item) for item in items)
    return lambda v: (v if type(v) is str else canonical(v)) not in keys


def _numeric(arg: Any, where: str) -> Test:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise InvalidInput(
            "numeric takes [op, number] or a range [>|>=, number, <|<=, number]", field=where
        )
    first = arg[0]
    if first not in ("=", "<", "<=", ">", ">="):
        raise InvalidInput(f"unknown numeric operator {first!r}", field=f"{where}[0]")
    low = _operand(arg[1], f"{where}[1]")
    # The tests run for every candidate value, so each is one flat expression:
    # `type(v) is int or type(v) is float` is is_number() without a call (JSON has no
    # int subclasses but bool, which it excludes).
    if len(arg) == 2:
        if first == "=":
            return lambda v: (type(v) is int or type(v) is float) and v == low
        if first == "<":
            return lambda v: (type(v) is int or type(v) is float) and v < low
        if first == "<=":
            return lambda v: (type(v) is int or type(v) is float) and v <= low
        if first == ">":
            return lambda v: (type(v) is int or type(v) is float) and v > low
        return lambda v: (type(v) is int or type(v) is float) and v >= low
    second = arg[2]
    if first not in (">", ">=") or second not in ("<", "<="):
        raise InvalidInput(
            "a numeric range is a lower bound (> or >=) followed by an upper bound (< or <=)",
            field=f"{where}[2]",
        )
    high = _operand(arg[3], f"{where}[3]")
    if low >= high:
        raise InvalidInput(
            "the lower bound of a numeric range must be below the upper", field=where
        )
    if first == ">" and second == "<":
        return lambda v: (type(v) is int or type(v) is float) and low < v < high
    if first == ">":
        return lambda v: (type(v) is int or type(v) is float) and low < v <= high
    if second == "<":
        return lambda v: (type(v) is int or type(v) is float) and low <= v < high
    return lambda v: (type(v) is int or type(v) is float) and low <= v <= high


def _cidr(arg: Any, where: str) -> Test:
    text = _string(arg, where, "cidr")
    try:
        if "/" not in text:
            raise ValueError("a prefix length (/n) is required")
        network = ipaddress.ip_network(text, strict=False)  # host bits are masked, as AWS
    except ValueError as exc:
        raise InvalidInput(f"cidr needs an IPv4 or IPv6 network: {exc}", field=where) from None

    def test(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        try:
            return ipaddress.ip_address(value) in network
        except ValueError:
            return False

    return test


def _glob(text: str, where: str) -> Callable[[str], bool]:
    """Compile an EventBridge wildcard: ``*`` is any run of characters; ``\\*`` and ``\\\\``
    escape. Matching splits on the stars and finds the pieces in order: linear time,
    unlike a backtracking regex, so a rule cannot make matching slow."""
    pieces = [""]
    star = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            escaped = text[i + 1 : i + 2]
            if escaped not in ("*", "\\"):
                raise InvalidInput(
                    "in a wildcard a backslash may only escape '*' or '\\'", field=where
                )
            pieces[-1] += escaped
            star = False
            i += 2
            continue
        if char == "*":
            if star:
                raise InvalidInput(
                    "consecutive wildcard characters (**) are not allowed", field=where
                )
            pieces.append("")
            star = True
        else:
            pieces[-1] += char
            star = False
        i += 1
    if len(pieces) == 1:
        literal = pieces[0]
        return lambda v: v == literal
    first, *middle, last = pieces
    fixed = len(first) + len(last)

    def test(value: str) -> bool:
        if len(value) < fixed or not value.startswith(first) or not value.endswith(last):
            return False
        pos, end = len(first), len(value) - len(last)
        for piece in middle:
            found = value.find(piece, pos, end)
            if found < 0:
                return False
            pos = found + len(piece)
        return True

    return test


def _string(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} takes a string, not {describe(value)}", field=where)
    return value


def _strings(value: Any, where: str, what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"{what} takes a string or a non-empty array of strings", field=where)
    return [_string(item, f"{where}[{i}]", what) for i, item in enumerate(value)]


def _operand(value: Any, where: str) -> float:
    if not is_number(value):
        raise InvalidInput(f"numeric operands must be numbers, not {describe(value)}", field=where)
    finite(value, where)
    if abs(value) > NUMERIC_LIMIT:
        raise InvalidInput(f"numeric operands must lie within +-{NUMERIC_LIMIT:g}", field=where)
    return float(value)


def finite(value: float, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput("numbers must be finite (JSON has no NaN or Infinity)", field=where)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def describe(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if is_number(value):
        return "a number"
    return names.get(type(value), type(value).__name__)
