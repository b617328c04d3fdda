"""Input transforms: what a function, HTTP or queue target receives instead of the whole event.

As in EventBridge, a target takes at most one of:

- ``input``: a constant JSON value;
- ``input_path``: the part of the event at a JSON path (``$.data.order``); null if absent;
- ``input_transformer``: ``input_paths_map`` names values by path (``{"total":
  "$.data.total"}``) and ``input_template`` places them at ``<total>`` placeholders.

A template that is JSON once its placeholders are filled (``{"sum": <total>}``) renders
JSON: a value outside a string literal is inserted as JSON (strings quoted), a value inside
one (``"total: <total>"``) as its text, escaped. Any other template renders text, values as
their text. A path the event lacks gives null. Placeholders with no variable of that name
are left as they are.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from squall.errors import InvalidInput
from squall.model.jsonpath import MISSING, Step, parse_path, select

if TYPE_CHECKING:
    from squall.model.targets import FunctionTarget, HttpTarget, QueueTarget

_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]{1,64})>")


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes  # JSON if ``json``, else UTF-8 text
    json: bool


class _Slot(NamedTuple):
    name: str
    quoted: bool  # inside a JSON string literal of the template


def check_template(template: str, variables: frozenset[str], *, field: str) -> None:
    """Refuse a template that opens like a JSON object but is not one once filled in."""
    parts = _parts(template, variables)
    if template.lstrip().startswith("{") and not _is_json(parts):
        raise InvalidInput(
            f"{field} looks like a JSON object but is not valid JSON once its placeholders"
            " are filled (a placeholder cannot be an object key; one inside a string needs"
            " the quotes around it)",
            field=field,
        )


def render(
    target: FunctionTarget | HttpTarget | QueueTarget, event: dict[str, Any], whole: bytes
) -> Rendered:
    """What ``target`` receives for ``event`` (``whole`` is the event's JSON)."""
    if target.input is not msgspec.UNSET:
        return Rendered(msgspec.json.encode(target.input), True)
    if target.input_path is not None:
        return Rendered(msgspec.json.encode(_value(select(event, _steps(target.input_path)))), True)
    transformer = target.input_transformer
    if transformer is None:
        return Rendered(whole, True)
    values = {
        name: select(event, _steps(path)) for name, path in transformer.input_paths_map.items()
    }
    parts = _parts(transformer.input_template, frozenset(values))
    as_json = _is_json(parts)
    out = [
        part if isinstance(part, str) else _fill(values[part.name], as_json, part.quoted)
        for part in parts
    ]
    return Rendered("".join(out).encode(), as_json)


def _fill(value: Any, as_json: bool, quoted: bool) -> str:
    if as_json and not quoted:
        return msgspec.json.encode(_value(value)).decode()
    text = value if isinstance(value, str) else msgspec.json.encode(_value(value)).decode()
    if as_json:  # inside a string literal: escaped, without the quotes
        return msgspec.json.encode(text).decode()[1:-1]
    return text


def _value(found: Any) -> Any:
    return None if found is MISSING else found


@functools.lru_cache(maxsize=4096)
def _steps(path: str) -> tuple[Step, ...]:
    return parse_path(path, field="path")  # validated when the rule was made


@functools.lru_cache(maxsize=1024)
def _parts(template: str, variables: frozenset[str]) -> tuple[str | _Slot, ...]:
    """The template as literal text and placeholder slots, each knowing if it is quoted."""
    parts: list[str | _Slot] = []
    start = at = 0
    in_string = escaped = False
    while at < len(template):
        char = template[at]
        if char == "<":
            match = _PLACEHOLDER.match(template, at)
            if match is not None and match.group(1) in variables:
                parts.append(template[start:at])
                parts.append(_Slot(match.group(1), in_string))
                at = start = match.end()
                continue
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        at += 1
    parts.append(template[start:])
    return tuple(part for part in parts if part != "")


@functools.lru_cache(maxsize=1024)
def _is_json(parts: tuple[str | _Slot, ...]) -> bool:
    probe = "".join(
        part if isinstance(part, str) else ("" if part.quoted else "null") for part in parts
    )
    try:
        msgspec.json.decode(probe.encode())
    except msgspec.DecodeError:
        return False
    return True
