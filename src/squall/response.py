"""The value a handler returns when it wants to control status and headers."""

from __future__ import annotations

from typing import Any


class Response:
    """``Response(body, status=200, headers=None)``; body is JSON-able, ``str`` or ``bytes``."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self, body: Any = None, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        self.body = body
        self.status = status
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"Response(status={self.status}, body={self.body!r})"
