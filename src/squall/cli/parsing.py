"""Parsing of option values that Typer's types cannot express: ``--data`` and ``--since``.

Both raise :class:`InputError` with a message fit to print after ``error:``.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class InputError(ValueError):
    """An option value the command cannot use; the message names the option and the fix."""


def read_payload(spec: str, stdin: BinaryIO, option: str = "--data") -> bytes:
    """``--data`` (or ``option``) as bytes: inline JSON, ``@path`` for a file, ``-`` for stdin.

    The bytes are checked to be JSON but sent as given, so numbers keep their exact text.
    """
    if spec == "-":
        data, source = stdin.read(), f"{option} - (stdin)"
    elif spec.startswith("@"):
        path = Path(spec[1:])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {option} file '{path}': {exc.strerror}") from None
        source = f"{option} file '{path}'"
    else:
        data, source = spec.encode(), option
    check_json(data, source)
    return data


def check_json(data: bytes, source: str) -> None:
    try:
        json.loads(data)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"invalid JSON in {source}: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except UnicodeDecodeError:
        raise InputError(f"invalid JSON in {source}: not UTF-8 text") from None


def parse_duration(text: str, option: str) -> float:
    """A positive duration (``30s``, ``10m``, ``1h``, ``7d``) in seconds."""
    match = _DURATION.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise InputError(f"{option} {text!r} is not a positive duration (30s, 10m, 1h, 7d)")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def parse_since(text: str, now: float | None = None) -> float:
    """``--since`` as epoch seconds: a duration back from now (``30s``, ``10m``, ``1h``, ``2d``)
    or an ISO 8601 time (``2024-05-01T12:00:00``, local time unless it names a zone)."""
    match = _DURATION.match(text)
    if match:
        now = time.time() if now is None else now
        return now - float(match.group(1)) * _UNIT_S[match.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"--since {text!r} is neither a duration (30s, 10m, 1h, 2d) nor an ISO 8601 time"
        ) from None
    # A naive time means the user's local clock; astimezone() assumes exactly that.
    return moment.astimezone().timestamp()
