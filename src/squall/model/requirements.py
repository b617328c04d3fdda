"""Requirement lists: parsing ``requirements.txt`` text and the canonical form envs are keyed by.

A requirement is one line pip understands (``requests==2.31``, ``tinydep @ file:///…``,
``./pkgs/tinydep``, ``--find-links …``). Local paths are made absolute against the app's
directory, so a list means the same thing whatever directory the platform runs from, and
two spellings of one set (order, repeats, blank lines) give one environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from squall.errors import ConfigError

FILE = "requirements.txt"  # read beside the app file, before the app is imported
PATH_OPTIONS = ("-e", "--editable", "-f", "--find-links")
# A nested file's contents would not be part of the environment's key.
NESTED_OPTIONS = ("-r", "--requirement", "-c", "--constraint")


def parse(text: str) -> list[str]:
    """The requirement lines of a requirements file: comments and blank lines dropped."""
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            continue
        line = line.split(" #", 1)[0].strip()  # pip's inline comments need the space
        if line:
            lines.append(line)
    return lines


def check(requirements: object, *, function: str | None = None) -> tuple[str, ...]:
    """``requirements`` as a tuple of lines, or a ConfigError naming what is wrong."""
    owner = f"function {function!r}" if function else "the app"
    if isinstance(requirements, str) or not isinstance(requirements, Sequence):
        raise ConfigError(
            f"{owner}: requirements must be a list of requirement strings"
            f" (got {type(requirements).__name__})",
            field="requirements",
            value=repr(requirements),
            **({"function": function} if function else {}),
        )
    for line in requirements:
        if not isinstance(line, str) or not line.strip() or "\n" in line:
            raise ConfigError(
                f"{owner}: requirement {line!r} is not one non-empty line",
                field="requirements",
                value=repr(line),
                **({"function": function} if function else {}),
            )
        if line.split(maxsplit=1)[0].split("=")[0] in NESTED_OPTIONS:
            raise ConfigError(
                f"{owner}: requirement {line!r} includes another file; list its requirements"
                " instead (an environment is keyed by the requirement text)",
                field="requirements",
                value=line,
                **({"function": function} if function else {}),
            )
    return tuple(line.strip() for line in requirements)


def _absolute(line: str, base: Path) -> str:
    """``line`` with a relative local path made absolute: ``./x``, ``../x``,
    ``name @ ./x``, and the path of ``-e``/``--editable``/``-f``/``--find-links``."""
    option, space, value = line.partition(" ")
    if space and option in PATH_OPTIONS:
        return f"{option} {_absolute(value.strip(), base)}"
    name, at, target = line.partition(" @ ")
    path = target if at else line
    if not path.startswith(("./", "../")):
        return line
    absolute = os.path.normpath(base / path)
    return f"{name} @ {Path(absolute).as_uri()}" if at else absolute


def normalize(requirements: Iterable[str], base: Path) -> tuple[str, ...]:
    """The canonical form of a set: stripped, local paths absolute, unique, sorted."""
    return tuple(sorted({_absolute(line.strip(), base) for line in requirements}))


def read_file(path: Path) -> tuple[str, ...]:
    """The checked requirements in ``path``, or a ConfigError naming the file."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"requirements file {str(path)!r} cannot be read: {exc}",
            field="requirements",
            value=str(path),
        ) from None
    return check(parse(text))
