"""Choice rules: every comparison operator (and its ``*Path`` variant), the type tests,
``StringMatches`` wildcards, and ``And``/``Or``/``Not``."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from squall.asl import paths
from squall.asl.errors import RUNTIME, StatesError

_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: bool(a == b),
    "LessThan": lambda a, b: bool(a < b),
    "GreaterThan": lambda a, b: bool(a > b),
    "LessThanEquals": lambda a, b: bool(a <= b),
    "GreaterThanEquals": lambda a, b: bool(a >= b),
}
KINDS = ("String", "Numeric", "Timestamp")
TYPE_TESTS = ("IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp")
OPERATORS = frozenset(
    [f"{kind}{cmp}{suffix}" for kind in KINDS for cmp in _COMPARE for suffix in ("", "Path")]
    + ["BooleanEquals", "BooleanEqualsPath", "StringMatches", *TYPE_TESTS]
)


class RuleError(ValueError):
    """A rule that cannot work; ``where`` is the field inside the rule."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where


@dataclass(frozen=True)
class Comparison:
    variable: paths.Path
    operator: str
    value: Any  # a literal, or a paths.Path for the *Path operators


@dataclass(frozen=True)
class Combined:
    operator: str  # And, Or, Not
    rules: tuple[Rule, ...]


Rule = Comparison | Combined


def parse_rule(spec: Any, where: str) -> Rule:
    """A rule from its JSON (without ``Next``, which the caller takes off)."""
    if not isinstance(spec, dict):
        raise RuleError(where, "a choice rule must be an object")
    for combinator in ("And", "Or"):
        if combinator in spec:
            _only(spec, {combinator}, where)
            rules = spec[combinator]
            if not isinstance(rules, list) or not rules:
                raise RuleError(f"{where}.{combinator}", "must be a non-empty array of rules")
            return Combined(combinator, tuple(
                parse_rule(r, f"{where}.{combinator}[{i}]") for i, r in enumerate(rules)
            ))
    if "Not" in spec:
        _only(spec, {"Not"}, where)
        return Combined("Not", (parse_rule(spec["Not"], f"{where}.Not"),))
    if "Variable" not in spec:
        raise RuleError(where, "a choice rule needs Variable and an operator, or And/Or/Not")
    operators = [key for key in spec if key != "Variable"]
    if len(operators) != 1 or operators[0] not in OPERATORS:
        unknown = [op for op in operators if op not in OPERATORS]
        raise RuleError(
            f"{where}.{unknown[0]}" if unknown else where,
            f"{unknown[0]!r} is not a comparison operator" if unknown
            else "a choice rule needs exactly one comparison operator",
        )
    operator = operators[0]
    try:
        variable = paths.parse(spec["Variable"], reference=True)
    except paths.PathError as exc:
        raise RuleError(f"{where}.Variable", str(exc)) from None
    return Comparison(variable, operator, _operand(operator, spec[operator],
                                                   f"{where}.{operator}"))


def _only(spec: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(spec) - allowed)
    if extra:
        raise RuleError(f"{where}.{extra[0]}", f"{extra[0]!r} cannot stand beside "
                        f"{'/'.join(sorted(allowed))}")


def _operand(operator: str, value: Any, where: str) -> Any:
    if operator.endswith("Path"):
        try:
            return paths.parse(value, reference=True)
        except paths.PathError as exc:
            raise RuleError(where, str(exc)) from None
    if operator in TYPE_TESTS or operator == "BooleanEquals":
        if not isinstance(value, bool):
            raise RuleError(where, f"{operator} takes true or false, not {value!r}")
    elif operator.startswith("Numeric"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RuleError(where, f"{operator} takes a number, not {value!r}")
    elif operator.startswith("Timestamp"):
        if not is_timestamp(value):
            raise RuleError(where, f"{operator} takes an RFC 3339 timestamp, not {value!r}")
    elif not isinstance(value, str):
        raise RuleError(where, f"{operator} takes a string, not {value!r}")
    return value


def is_timestamp(value: Any) -> bool:
    return isinstance(value, str) and _TIMESTAMP.match(value) is not None


def timestamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def evaluate(rule: Rule, document: Any, context: Any = None) -> bool:
    """Whether ``rule`` holds for ``document``. A ``Variable`` that finds nothing is
    ``States.Runtime``, except for ``IsPresent``."""
    if isinstance(rule, Combined):
        if rule.operator == "And":
            return all(evaluate(r, document, context) for r in rule.rules)
        if rule.operator == "Or":
            return any(evaluate(r, document, context) for r in rule.rules)
        return not evaluate(rule.rules[0], document, context)
    try:
        value = rule.variable.find(document, context)
    except paths.PathError as exc:
        if rule.operator == "IsPresent":
            return rule.value is False
        raise StatesError(RUNTIME, f"Invalid path {rule.variable.text!r}: {exc}") from None
    operand = rule.value
    operator = rule.operator
    if operator.endswith("Path"):
        try:
            operand = operand.find(document, context)
        except paths.PathError as exc:
            raise StatesError(RUNTIME, f"Invalid path {operand.text!r}: {exc}") from None
        operator = operator[: -len("Path")]
    return _test(operator, value, operand)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not (
        isinstance(value, float) and math.isnan(value)
    )


def _test(operator: str, value: Any, operand: Any) -> bool:
    if operator in TYPE_TESTS:
        holds = {
            "IsNull": value is None,
            "IsPresent": True,
            "IsNumeric": _number(value),
            "IsString": isinstance(value, str),
            "IsBoolean": isinstance(value, bool),
            "IsTimestamp": is_timestamp(value),
        }[operator]
        return holds is operand
    if operator == "BooleanEquals":
        return isinstance(value, bool) and isinstance(operand, bool) and value is operand
    if operator == "StringMatches":
        return isinstance(value, str) and wildcard(operand).fullmatch(value) is not None
    for kind in KINDS:
        if operator.startswith(kind):
            compare = _COMPARE[operator[len(kind):]]
            if kind == "String":
                return isinstance(value, str) and isinstance(operand, str) and compare(
                    value, operand)
            if kind == "Numeric":
                return _number(value) and _number(operand) and compare(value, operand)
            return is_timestamp(value) and is_timestamp(operand) and compare(
                timestamp(value), timestamp(operand))
    raise StatesError(RUNTIME, f"unknown operator {operator!r}")  # pragma: no cover


def wildcard(pattern: str) -> re.Pattern[str]:
    """``StringMatches``: ``*`` is any run of characters, ``\\*`` a star, ``\\\\`` a
    backslash."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "*" else re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)
