"""The request object a route's handler receives (in the sandbox)."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

import msgspec

from squall.model.http import HttpRequest


class Headers:
    """Case-insensitive, read-only view of request headers (repeated names kept)."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items

    def get(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for key, value in self._items:
            if key == name:
                return value
        return default

    def getlist(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self._items if key == name]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class Request:
    """An HTTP request routed to a function: method, path, params, query, headers, body."""

    __slots__ = ("_data", "_json", "headers")

    def __init__(self, data: HttpRequest) -> None:
        self._data = data
        self.headers = Headers(data.headers)

    method = property(lambda self: self._data.method)
    path = property(lambda self: self._data.path)
    path_params = property(lambda self: dict(self._data.path_params))
    body = property(lambda self: self._data.body)
    client = property(lambda self: self._data.client)
    request_id = property(lambda self: self._data.request_id)
    route = property(lambda self: self._data.route)
    claims = property(lambda self: self._data.claims)

    @property
    def query(self) -> dict[str, str]:
        """The first value of each query parameter (``query_list`` keeps them all)."""
        first: dict[str, str] = {}
        for key, value in self._data.query:
            first.setdefault(key, value)
        return first

    @property
    def query_list(self) -> list[tuple[str, str]]:
        return list(self._data.query)

    @property
    def cookies(self) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        for header in self.headers.getlist("cookie"):
            jar.load(header)
        return {name: morsel.value for name, morsel in jar.items()}

    def text(self, encoding: str = "utf-8") -> str:
        return self._data.body.decode(encoding)

    def json(self) -> Any:
        return msgspec.json.decode(self._data.body)

    def __repr__(self) -> str:
        return f"Request({self.method} {self.path})"
