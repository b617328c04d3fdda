"""Helpers of the compatibility checker (``events.compat``): type sets, numeric limits,
local references and JSON equality of schema values."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import msgspec

from squall.events.schemas import draft_name

Schema = dict[str, Any] | bool
_NUMERIC = frozenset({"number", "integer"})

OLD_DRAFTS = frozenset({"draft 4", "draft 6", "draft 7"})


def draft_of(root: Schema) -> str:
    return "draft 2020-12" if isinstance(root, bool) else draft_name(root)


def types_of(schema: dict[str, Any]) -> set[str] | None:
    value = schema.get("type")
    if value is None:
        return None
    return {value} if isinstance(value, str) else set(value)


def may_be(types: set[str] | None, kind: str) -> bool:
    if types is None:
        return True
    return bool(types & _NUMERIC) if kind == "number" else kind in types


def type_names(types: set[str]) -> str:
    return " or ".join(sorted(types))


def limit_of(schema: dict[str, Any], lower: bool) -> tuple[float, bool] | None:
    """The tighter of ``minimum``/``exclusiveMinimum`` (or the maxima) as (value, exclusive)."""
    inclusive = schema.get("minimum" if lower else "maximum")
    exclusive = schema.get("exclusiveMinimum" if lower else "exclusiveMaximum")
    if isinstance(exclusive, bool):  # draft 4: a flag on minimum/maximum
        exclusive, inclusive = (inclusive if exclusive else None), (
            None if exclusive else inclusive
        )
    limits = [(v, excl) for v, excl in ((inclusive, False), (exclusive, True)) if v is not None]
    if not limits:
        return None
    best = limits[0]
    for limit in limits[1:]:
        if tighter_or_equal(limit, best, lower):
            best = limit
    return best



def tighter_or_equal(a: tuple[float, bool], b: tuple[float, bool], lower: bool) -> bool:
    """Whether limit ``a`` admits no value that limit ``b`` rejects."""
    (va, xa), (vb, xb) = a, b
    if va != vb:
        return va > vb if lower else va < vb
    return xa or not xb


def limit_text(limit: tuple[float, bool], lower: bool) -> str:
    value, exclusive = limit
    if exclusive:
        return f"exclusive{'Minimum' if lower else 'Maximum'} {value}"
    return f"{'minimum' if lower else 'maximum'} {value}"


def fraction(value: float) -> Fraction:
    return Fraction(str(value))


def resolve_ref(root: Schema, ref: object, ptr: str) -> tuple[Schema | None, str]:
    """The target of a local ``$ref`` (``#``, ``#/$defs/x``) and its pointer, else None."""
    if not isinstance(ref, str) or not ref.startswith("#") or isinstance(root, bool):
        return None, ptr
    if ref == "#":
        return root, "#"
    if not ref.startswith("#/"):
        return None, ptr  # an $anchor
    node: Any = root
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None, ptr
    return (node if isinstance(node, dict | bool) else None), ref


def child_pointer(ptr: str, *parts: str) -> str:
    return ptr + "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def json_equal(a: Any, b: Any) -> bool:
    # JSON equality: 1 and True differ (Python's == would call them equal).
    return bool(msgspec.json.encode(a, order="sorted") == msgspec.json.encode(b, order="sorted"))


def refs_in(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str):
            found.add(ref)
        for item in value.values():
            found |= refs_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= refs_in(item)
    return found


def show_value(value: Any) -> str:
    text = msgspec.json.encode(value).decode()
    if isinstance(value, str):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
