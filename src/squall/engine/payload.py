"""Checks on an invocation's payload at the edge: size, then JSON with a precise position."""

from __future__ import annotations

import json

import msgspec

from squall.errors import InvalidInput, PayloadTooLarge


def check_payload(payload: bytes, limit: int, mode: str, kind: str) -> bytes:
    """The payload to send (empty means ``null``), or the error that rejects it.

    ``kind="http"`` payloads are built by the gateway, so only their size is checked.
    """
    if len(payload) > limit:
        raise PayloadTooLarge(
            f"{mode} payload is {len(payload)} bytes; the limit is {limit} bytes",
            field="payload",
            size=len(payload),
            limit=limit,
        )
    if kind == "http":
        return payload
    if not payload.strip():
        return b"null"
    try:
        msgspec.json.decode(payload)  # fast path; its errors lack line and column
    except (msgspec.DecodeError, UnicodeDecodeError):
        try:
            json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise json_error(exc) from None
        raise InvalidInput("payload is not valid JSON", field="payload") from None
    return payload


def json_error(exc: json.JSONDecodeError | UnicodeDecodeError) -> InvalidInput:
    if isinstance(exc, UnicodeDecodeError):
        return InvalidInput(
            f"payload is not UTF-8 text: invalid byte at position {exc.start}",
            field="payload",
            position=exc.start,
        )
    return InvalidInput(
        f"payload is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        f" (char {exc.pos})",
        field="payload",
        line=exc.lineno,
        column=exc.colno,
        position=exc.pos,
    )
