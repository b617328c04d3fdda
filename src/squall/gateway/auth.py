"""Every ``/api/v1`` request carries a valid API key with the scope its action needs.

    GET, HEAD                                 read
    POST /functions/{name}/invoke             invoke
    POST /events…                             publish
    POST /streams/{name}/records              publish
    POST /queues/{name}/messages[/batch]      publish  (sending to a queue)
    PUT, DELETE /buckets/{name}/object        publish  (writing objects)
    POST /buckets/{name}/copy                 publish
    PUT, PATCH, DELETE /tables/{name}/items…  publish  (writing items; POST …/transact too)
    POST /tables/{name}/query                 read
    /keys…, /secrets… (any method)            admin
    anything else that changes state          admin   (config, dead-letter redrive/purge, …)

``GET /api/v1/openapi.json`` (and ``/healthz``, ``/readyz``, outside the prefix) need no
key. A missing, unknown or revoked key is 401 with ``WWW-Authenticate: Bearer``; a key
without the scope is 403; a key over its rate limit is 429 with ``Retry-After``. Unknown
paths need ``admin``, so new resources are closed until a rule opens them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from squall.errors import SquallError
from squall.gateway.errors import error_response
from squall.security.routes import authenticate_key, require_scopes

if TYPE_CHECKING:
    from squall.security.ratelimit import RateLimiter
    from squall.storage.control import ControlStore

PUBLIC = frozenset({("GET", "/openapi.json"), ("HEAD", "/openapi.json")})
RULES: tuple[tuple[str | None, re.Pattern[str], str, str], ...] = (
    (None, re.compile(r"/(keys|secrets)(/.*)?"), "admin", "manage keys and secrets"),
    ("POST", re.compile(r"/functions/[^/]+/invoke"), "invoke", "invoke functions"),
    ("POST", re.compile(r"/events(/.*)?"), "publish", "publish events"),
    ("POST", re.compile(r"/streams/[^/]+/records"), "publish", "put records to streams"),
    ("POST", re.compile(r"/queues/[^/]+/messages(/batch)?"), "publish", "send to queues"),
    ("PUT", re.compile(r"/buckets/[^/]+/object"), "publish", "write objects"),
    ("DELETE", re.compile(r"/buckets/[^/]+/object"), "publish", "write objects"),
    ("POST", re.compile(r"/buckets/[^/]+/copy"), "publish", "write objects"),
    ("POST", re.compile(r"/tables/transact"), "publish", "write table items"),
    ("POST", re.compile(r"/tables/[^/]+/query"), "read", "query tables"),
    ("PUT", re.compile(r"/tables/[^/]+/items"), "publish", "write table items"),
    ("PATCH", re.compile(r"/tables/[^/]+/items/[^/]+"), "publish", "write table items"),
    ("DELETE", re.compile(r"/tables/[^/]+/items/[^/]+"), "publish", "write table items"),
)


def required_scope(method: str, path: str) -> tuple[str, str]:
    """The scope an admin API call needs and what it does, for the 403 message."""
    for rule_method, pattern, scope, what in RULES:
        if (rule_method is None or rule_method == method) and pattern.fullmatch(path):
            return scope, what
    if method in ("GET", "HEAD"):
        return "read", "read the admin API"
    return "admin", f"{method} {path}"


class AdminAuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        control: ControlStore,
        prefix: str,
        key_limiter: RateLimiter | None = None,
    ) -> None:
        self.app = app
        self.control = control
        self.prefix = prefix
        self.key_limiter = key_limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (
            path == self.prefix or path.startswith(self.prefix + "/")
        ):
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        sub = path[len(self.prefix) :] or "/"
        if (method, sub) in PUBLIC:
            await self.app(scope, receive, send)
            return
        try:
            key = await authenticate_key(self.control, Headers(scope=scope))
            needed, what = required_scope(method, sub)
            require_scopes(key, (needed,), what)
            if self.key_limiter is not None:
                self.key_limiter.check(key.id, f"API key {key.id}")
        except SquallError as exc:
            await error_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})["api_key"] = key
        await self.app(scope, receive, send)
