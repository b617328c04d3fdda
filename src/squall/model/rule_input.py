"""A rule as the admin API takes it: parsed from JSON with errors that name the field.

The shape is checked by msgspec; its messages (``Expected `str`, got `int` - at
`$.targets[0].function```) become ``InvalidInput`` with ``field="targets[0].function"``.
What the shape cannot say is checked by ``RuleConfig.validate`` and the rule book.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from squall.errors import InvalidInput
from squall.model.rules import DEFAULT_BUS, RuleConfig
from squall.model.targets import Target, with_ids

TRANSFORMS = ("input", "input_path", "input_transformer")


class RuleInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A rule as the API takes it (its origin is always ``api``)."""

    name: str
    bus: str = DEFAULT_BUS
    pattern: dict[str, Any]
    targets: tuple[Target, ...] = ()
    description: str = ""
    enabled: bool = True


def parse_rule(body: dict[str, Any]) -> RuleConfig:
    """A rule from a JSON body; ``InvalidInput`` naming the field for a wrong shape."""
    try:
        msgspec.json.encode(body)
    except UnicodeEncodeError:  # JSON may escape a lone surrogate ("\ud800"): not text
        raise InvalidInput("the body holds a lone surrogate: not text", field="body") from None
    try:
        given = msgspec.convert(_integral_retries(body), RuleInput)
    except msgspec.ValidationError as exc:
        raise shape_error(str(exc), body) from None
    return RuleConfig(
        name=given.name,
        bus=given.bus,
        pattern=given.pattern,
        targets=with_ids(given.targets),
        description=given.description,
        enabled=given.enabled,
        origin="api",
    )


_AT = re.compile(r"^(?P<rule>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED = re.compile(r"(?:unknown|missing required) field `(?P<name>[^`]+)`")


def shape_error(message: str, body: dict[str, Any]) -> InvalidInput:
    """msgspec's ``Expected `str`, got `int` - at `$.targets[0].function``` as our error."""
    match = _AT.match(message)
    rule, path = (match.group("rule"), match.group("path") or "") if match else (message, "")
    field = path.removeprefix(".")
    named = _NAMED.search(rule)
    if named is not None:
        field = f"{field}.{named.group('name')}" if field else named.group("name")
    target = re.fullmatch(r"targets\[(\d+)\]\.(\w+)", field)
    if target is not None:
        index, name = int(target.group(1)), target.group(2)
        kind = _kind_at(body, index)
        if name == "kind":
            return InvalidInput(
                f"{field} {kind!r} is not a target kind (function, bus, http)", field=field
            )
        if kind == "bus" and name in TRANSFORMS:
            return InvalidInput(
                f"{field}: a bus target forwards the event unchanged; input transforms apply"
                " to function and http targets",
                field=field,
            )
    rule = rule.replace("`", "'")
    return InvalidInput(f"{field or 'body'}: {rule[0].lower()}{rule[1:]}", field=field or "body")


def _integral_retries(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with retry counts like 3.0 as 3: JSON (and JSON Schema's "integer") does not
    tell them apart. Only there: elsewhere, as in an ``input`` constant, 3.0 stays as sent."""
    targets = body.get("targets")
    if not isinstance(targets, list):
        return body
    fixed = []
    for target in targets:
        retry = target.get("retry") if isinstance(target, dict) else None
        if isinstance(retry, dict):
            integral = {
                k: int(v) if isinstance(v, float) and v.is_integer() else v
                for k, v in retry.items()
            }
            target = {**target, "retry": integral}
        fixed.append(target)
    return {**body, "targets": fixed}


def _kind_at(body: dict[str, Any], index: int) -> Any:
    targets = body.get("targets")
    if isinstance(targets, list) and index < len(targets) and isinstance(targets[index], dict):
        return targets[index].get("kind")
    return None
