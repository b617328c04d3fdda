"""The value a handler returns when it wants to control status and headers."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any


class Response:
    """``Response(body, status=200, headers=None)``; body is JSON-able, ``str`` or ``bytes``."""

    __slots__ = ("body", "cookies", "headers", "status")

    def __init__(
        self, body: Any = None, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        self.body = body
        self.status = status
        self.headers = dict(headers or {})
        self.cookies: list[str] = []  # Set-Cookie values, added by set_cookie

    def set_cookie(
        self,
        name: str,
        value: str,
        *,
        max_age: int | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: str | None = "lax",
    ) -> None:
        """Add a Set-Cookie header (quoted and validated by http.cookies)."""
        jar: SimpleCookie = SimpleCookie()
        jar[name] = value
        morsel = jar[name]
        morsel["path"] = path
        if max_age is not None:
            morsel["max-age"] = max_age
        if domain is not None:
            morsel["domain"] = domain
        if secure:
            morsel["secure"] = True
        if httponly:
            morsel["httponly"] = True
        if samesite is not None:
            morsel["samesite"] = samesite
        self.cookies.append(morsel.OutputString())

    def __repr__(self) -> str:
        return f"Response(status={self.status}, body={self.body!r})"
