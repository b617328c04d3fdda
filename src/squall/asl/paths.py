"""ASL paths: reference paths (``$.order.items[0]``, ``$['a b']``) and the JSONPath subset
that ``InputPath``, ``OutputPath`` and ``Parameters`` values may use (``[*]``, ``.*``).

A path on ``$$`` reads the context object (execution, state, map item) instead of the
state's input. ``ResultPath`` writes: :func:`put` builds the missing objects along the way.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

MAX_PATH_LENGTH = 512
WILDCARD = "*"
_NAME = re.compile(r"[^.\[\]'\"\s$@()?*,]+")
_INDEX = re.compile(r"-?(0|[1-9][0-9]{0,8})")

Step = str | int


class PathError(ValueError):
    """A path that does not parse, or does not match where a match is required."""


@dataclass(frozen=True)
class Path:
    """A parsed path: whether it reads the context object (``$$``) and its steps."""

    text: str
    context: bool
    steps: tuple[Step, ...]

    @property
    def is_reference(self) -> bool:
        """A reference path names one node: no wildcards."""
        return WILDCARD not in self.steps

    def find(self, document: Any, context: Any = None) -> Any:
        """The value the path selects; ``PathError`` when nothing is there. A path with a
        wildcard gives the list of every match."""
        root = context if self.context else document
        if self.is_reference:
            return _walk(root, self.steps, self.text)
        return _expand(root, self.steps)


def parse(text: object, *, reference: bool = False) -> Path:
    """Parse ``text``; ``reference=True`` refuses wildcards (ResultPath, ItemsPath,
    Choice ``Variable``, ``*Path`` fields)."""
    if not isinstance(text, str):
        raise PathError(f"{text!r} is not a path string such as '$.order'")
    if len(text) > MAX_PATH_LENGTH:
        raise PathError(f"the path is longer than {MAX_PATH_LENGTH} characters")
    if text.startswith("$$"):
        context, at = True, 2
    elif text.startswith("$"):
        context, at = False, 1
    else:
        raise PathError(f"{text!r} must start with '$' (or '$$' for the context object)")
    steps: list[Step] = []
    while at < len(text):
        at = _step(text, at, steps)
    path = Path(text, context, tuple(steps))
    if reference and not path.is_reference:
        raise PathError(f"{text!r} is not a reference path: wildcards are not allowed here")
    return path


def _step(text: str, at: int, steps: list[Step]) -> int:
    char = text[at]
    if char == "." and text.startswith(".*", at):
        steps.append(WILDCARD)
        return at + 2
    if char == ".":
        match = _NAME.match(text, at + 1)
        if match is None:
            raise PathError(f"{text!r}: expected a field name at character {at + 2}")
        steps.append(match.group())
        return match.end()
    if char == "[":
        close = _bracket_end(text, at)
        inner = text[at + 1 : close]
        if inner == "*":
            steps.append(WILDCARD)
        elif len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
            steps.append(inner[1:-1].replace("\\" + inner[0], inner[0]))
        elif _INDEX.fullmatch(inner):
            steps.append(int(inner))
        else:
            raise PathError(
                f"{text!r}: [{inner}] at character {at + 1} is not an index, '*' or a"
                " quoted field name (filters and slices are not supported)"
            )
        return close + 1
    raise PathError(f"{text!r}: unexpected {char!r} at character {at + 1}")


def _bracket_end(text: str, at: int) -> int:
    quote = text[at + 1] if at + 1 < len(text) and text[at + 1] in "'\"" else None
    i = at + 2 if quote else at + 1
    while i < len(text):
        if quote and text[i] == "\\":
            i += 2
            continue
        if quote and text[i] == quote:
            quote = None
        elif quote is None and text[i] == "]":
            return i
        i += 1
    raise PathError(f"{text!r}: '[' at character {at + 1} is not closed")


def _has(node: Any, step: Step) -> bool:
    if isinstance(step, str):
        return isinstance(node, dict) and step in node
    return isinstance(node, list) and -len(node) <= step < len(node)


def _walk(value: Any, steps: tuple[Step, ...], text: str) -> Any:
    for step in steps:
        if not _has(value, step):
            raise PathError(f"the path {text!r} found nothing at {step!r}")
        value = value[step]
    return value


def _expand(value: Any, steps: tuple[Step, ...]) -> list[Any]:
    found = [value]
    for step in steps:
        following: list[Any] = []
        for node in found:
            if step == WILDCARD:
                if isinstance(node, dict):
                    following.extend(node.values())
                elif isinstance(node, list):
                    following.extend(node)
            elif _has(node, step):
                following.append(node[step])
        found = following
    return found


def put(document: Any, path: Path, value: Any) -> Any:
    """``document`` with ``value`` at ``path`` (a reference path on ``$``): a copy, the
    objects missing along the way created. ``PathError`` if a step meets a non-object."""
    if not path.steps:
        return value
    root = copy.deepcopy(document)
    if not isinstance(root, dict):
        raise PathError(
            f"ResultPath {path.text!r} cannot be applied: the state's input is not an object"
        )
    node: Any = root
    for i, step in enumerate(path.steps):
        last = i == len(path.steps) - 1
        if isinstance(step, int):
            if not isinstance(node, list) or not -len(node) <= step < len(node):
                raise PathError(f"ResultPath {path.text!r}: no array element [{step}]")
            if last:
                node[step] = value
            else:
                node = node[step]
            continue
        if not isinstance(node, dict):
            raise PathError(f"ResultPath {path.text!r}: {step!r} is not inside an object")
        if last:
            node[step] = value
        else:
            node = node.setdefault(step, {})
    return root
