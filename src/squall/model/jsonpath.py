"""The JSON paths of input transforms: ``$``, ``$.data.order``, ``$.data.items[0].sku``.

Our own small evaluator, for only the subset EventBridge documents for input paths: a ``$``
root, then ``.name`` steps (letters, digits, ``_``, ``-``, ``/``) and ``[N]`` array indices.
No wildcards, filters, slices or bracketed names: a full JSONPath library would accept
paths EventBridge refuses, and rules must mean the same thing here as there.
"""

from __future__ import annotations

import re
from typing import Any

from squall.errors import InvalidInput

MAX_PATH_LENGTH = 256
_STEP = re.compile(r"\.([A-Za-z0-9_/-]+)|\[(0|[1-9][0-9]{0,8})\]")

Step = str | int
MISSING: Any = object()  # what a path finds where the event has nothing


def parse_path(path: object, *, field: str) -> tuple[Step, ...]:
    """The steps of ``path``; ``InvalidInput`` naming ``field`` if it is not in the subset."""
    if not isinstance(path, str):
        raise InvalidInput(f"{field} must be a JSON path string such as '$.data'", field=field)
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidInput(f"{field} is longer than {MAX_PATH_LENGTH} characters", field=field)
    if not path.startswith("$"):
        raise InvalidInput(f"{field} {path!r} must start with '$'", field=field)
    steps: list[Step] = []
    at = 1
    while at < len(path):
        match = _STEP.match(path, at)
        if match is None:
            raise InvalidInput(
                f"{field} {path!r} is not a supported path at character {at + 1}: use"
                " '.name' steps (letters, digits, '_', '-', '/') and '[N]' indices",
                field=field,
            )
        name, index = match.groups()
        steps.append(name if name is not None else int(index))
        at = match.end()
    return tuple(steps)


def select(document: Any, steps: tuple[Step, ...]) -> Any:
    """The value at ``steps`` in ``document``, or :data:`MISSING`."""
    value = document
    for step in steps:
        if isinstance(step, str):
            if not isinstance(value, dict) or step not in value:
                return MISSING
            value = value[step]
        else:
            if not isinstance(value, list) or step >= len(value):
                return MISSING
            value = value[step]
    return value
