"""HTTP byte ranges (RFC 9110 §14): one range of ``bytes=a-b``, ``a-`` or ``-n``.

A header that is not a bytes range, or asks for several ranges, is ignored (the whole
object is served, as the RFC allows); a range that starts past the end is 416 with
``Content-Range: bytes */size``.
"""

from __future__ import annotations

import re

from squall.errors import SquallError

_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")


class RangeNotSatisfiable(SquallError):
    status = 416


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte, inclusive, or None for the whole object."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:  # the last n bytes
        count = int(last)
        if count == 0:
            raise unsatisfiable(header, size)
        return max(0, size - count), size - 1
    start = int(first)
    end = size - 1 if not last else min(int(last), size - 1)
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise unsatisfiable(header, size)
    return start, end


def unsatisfiable(header: str, size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(
        f"range {header!r} is outside the object's {size} bytes",
        field="Range",
        size=size,
    )
