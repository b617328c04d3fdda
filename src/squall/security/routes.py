"""Who may call a function route: ``auth="none" | "api_key" | "jwt"``, then rate limits.

The gateway calls :meth:`RouteAuthorizer.authorize` before it builds the invocation. It
raises ``Unauthorized`` (401: no, unknown, revoked or unverifiable credentials),
``Forbidden`` (403: a valid key or token without the route's scopes) or
``TooManyRequests`` (429, with ``retry_after`` seconds), and returns a JWT's verified
claims for the handler.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from squall.errors import Forbidden, SquallError, Unauthorized
from squall.model.http import JwtConfig, RateLimit, RouteConfig
from squall.security.keys import ApiKey
from squall.security.ratelimit import RateLimiter
from squall.security.tokens import JwtVerifier, rejected

if TYPE_CHECKING:
    from starlette.requests import Request

    from squall.storage.control import ControlStore

KEY_HINT = "send 'Authorization: Bearer <key>' (or 'X-Api-Key: <key>')"


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The credential of an ``Authorization: Bearer`` header; raises on another scheme."""
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise rejected("malformed", "the Authorization header must be 'Bearer <credential>'")
    return token.strip()


async def authenticate_key(control: ControlStore, headers: Mapping[str, str]) -> ApiKey:
    """The valid, unrevoked API key a request carries; ``Unauthorized`` otherwise."""
    text = bearer_token(headers) or headers.get("x-api-key")
    if not text:
        raise Unauthorized(f"missing API key: {KEY_HINT}", field="authorization", reason="missing")
    key = await control.authenticate(text)
    if key is None:
        raise Unauthorized(
            "API key is not valid (unknown or revoked)", field="authorization", reason="invalid"
        )
    return key


def require_scopes(key: ApiKey, scopes: tuple[str, ...], what: str) -> None:
    missing = [scope for scope in scopes if not key.allows(scope)]
    if missing:
        raise Forbidden(
            f"API key {key.id} ({key.name!r}) lacks the {', '.join(missing)} scope"
            f" needed to {what}",
            field="scopes",
            required=list(scopes),
            key_id=key.id,
        )


class RouteAuthorizer:
    """One per gateway. ``key_limiter`` is shared with the admin API's key check, so a key's
    rate limit holds across both; by default it is built from ``key_rate_limit``."""

    def __init__(
        self,
        control: ControlStore,
        jwt_config: JwtConfig | None,
        *,
        key_rate_limit: RateLimit | None = None,
        key_limiter: RateLimiter | None = None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._control = control
        self._jwt = JwtVerifier(jwt_config, env) if jwt_config is not None else None
        self._key_limiter = key_limiter or RateLimiter.of(key_rate_limit, clock=clock)
        self._clock = clock
        self._route_limiters: dict[tuple[str, str], RateLimiter] = {}

    async def authorize(self, route: RouteConfig, request: Request) -> dict[str, object] | None:
        claims: dict[str, object] | None = None
        where = f"call {route.method} {route.path}"
        if route.auth == "api_key":
            key = await authenticate_key(self._control, request.headers)
            require_scopes(key, ("invoke", *route.scopes), where)
            request.state.api_key = key
            if self._key_limiter is not None:
                self._key_limiter.check(key.id, f"API key {key.id}")
        elif route.auth == "jwt":
            claims = self._verify_jwt(route, request)
        if route.rate_limit is not None:
            self._route_limiter(route, route.rate_limit).check(
                f"{route.method} {route.path}", f"route {route.method} {route.path}"
            )
        return claims

    def _verify_jwt(self, route: RouteConfig, request: Request) -> dict[str, object]:
        if self._jwt is None:
            raise SquallError(
                f"route {route.method} {route.path} uses auth='jwt' but the app sets no"
                " jwt settings (squall.App(..., jwt=JwtConfig(...)))",
                field="jwt",
            )
        token = bearer_token(request.headers)
        if token is None:
            raise rejected("missing", "missing JWT: send 'Authorization: Bearer <token>'")
        claims = self._jwt.verify(token)
        granted = token_scopes(claims)
        missing = [scope for scope in route.scopes if scope not in granted]
        if missing:
            raise Forbidden(
                f"JWT lacks the {', '.join(missing)} scope needed to"
                f" call {route.method} {route.path}",
                field="scopes",
                required=list(route.scopes),
            )
        return claims

    def _route_limiter(self, route: RouteConfig, limit: RateLimit) -> RateLimiter:
        limiter = self._route_limiters.get((route.method, route.path))
        if limiter is None:
            limiter = RateLimiter(limit.rate, limit.burst, clock=self._clock)
            self._route_limiters[(route.method, route.path)] = limiter
        return limiter


def token_scopes(claims: Mapping[str, object]) -> set[str]:
    """OAuth 2 scopes a token grants: ``scope`` (space-separated) or ``scp`` (a list)."""
    granted: set[str] = set()
    scope = claims.get("scope")
    if isinstance(scope, str):
        granted.update(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, list):
        granted.update(str(item) for item in scp)
    elif isinstance(scp, str):
        granted.update(scp.split())
    return granted
