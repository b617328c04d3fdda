"""HTTP routes and the request a route's handler receives, as plain data."""

from __future__ import annotations

import re

import msgspec

from squall.errors import ConfigError

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
AUTH_MODES = ("none", "api_key", "jwt")
RESERVED_PREFIXES = ("/api/", "/healthz", "/readyz", "/metrics", "/events", "/ui")
_PATH_RE = re.compile(r"^/([A-Za-z0-9._~!$&'()*+,;=:@%-]+|\{[A-Za-z_][A-Za-z0-9_]*\}|/)*$")


class RateLimit(msgspec.Struct, frozen=True, kw_only=True):
    """A token bucket: ``rate`` requests per second on average, bursts up to ``burst``."""

    rate: float
    burst: int


class RouteConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``@app.http("POST /orders/{order_id}")`` binds a method and path to a function."""

    method: str
    path: str
    function: str
    auth: str = "none"
    timeout_s: float = 29.0  # the integration timeout: past it the caller gets 504
    scopes: tuple[str, ...] = ()  # scopes the API key (or the JWT's scope claim) must carry
    rate_limit: RateLimit | None = None  # per route, across callers
    alias: str | None = None  # the function alias serving it (None: live, else the newest)

    @staticmethod
    def parse(spec: str, function: str, **options: object) -> RouteConfig:
        method, _, path = spec.strip().partition(" ")
        route = RouteConfig(
            method=method.upper(),
            path=path.strip(),
            function=function,
            **options,  # type: ignore[arg-type]
        )
        route.validate()
        return route

    def validate(self) -> None:
        where = f"function {self.function!r}: route {self.method} {self.path}"
        if self.method not in (*METHODS, "ANY"):
            raise ConfigError(
                f"{where}: method must be one of {', '.join(METHODS)} or ANY",
                field="method",
                value=self.method,
            )
        if not self.path.startswith("/") or not _PATH_RE.match(self.path):
            raise ConfigError(
                f"{where}: path must start with '/' and hold segments or {{name}} parameters",
                field="path",
                value=self.path,
            )
        if self.path.startswith(RESERVED_PREFIXES):
            raise ConfigError(
                f"{where}: paths under {', '.join(RESERVED_PREFIXES)} belong to the platform",
                field="path",
                value=self.path,
            )
        if self.auth not in AUTH_MODES:
            raise ConfigError(
                f"{where}: auth={self.auth!r} is not one of {', '.join(AUTH_MODES)}",
                field="auth",
                value=self.auth,
            )
        if not 0.05 <= self.timeout_s <= 900:
            raise ConfigError(
                f"{where}: timeout_s={self.timeout_s} is out of range (allowed 0.05-900)",
                field="timeout_s",
                value=repr(self.timeout_s),
                allowed="0.05-900",
            )


class HttpRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What the gateway hands a route's function (JSON-encodable: ``body`` travels as base64)."""

    method: str
    path: str
    path_params: dict[str, str]
    query: list[tuple[str, str]]
    headers: list[tuple[str, str]]  # lower-case names, in arrival order
    body: bytes
    client: str | None
    request_id: str
    route: str  # the route's pattern, e.g. "/orders/{order_id}"
    claims: dict[str, object] | None = None  # verified JWT claims, for auth="jwt"


class CorsConfig(msgspec.Struct, frozen=True, kw_only=True):
    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE")
    allow_headers: tuple[str, ...] = ("authorization", "content-type")
    allow_credentials: bool = False
    max_age_s: int = 600


class JwtConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How routes with ``auth="jwt"`` verify tokens (in the platform, not the sandbox).

    The key material is named, never embedded: ``secret_env`` is an environment
    variable of the platform process holding the HS256 secret; ``jwks_file`` a
    JWKS JSON file of public keys for RS256.
    """

    algorithms: tuple[str, ...] = ("HS256",)
    issuer: str | None = None
    audience: str | None = None
    secret_env: str | None = None
    jwks_file: str | None = None
    leeway_s: int = 0


class AppSettings(msgspec.Struct, frozen=True, kw_only=True):
    debug: bool = False  # tracebacks in HTTP error bodies
    cors: CorsConfig | None = None
    jwt: JwtConfig | None = None
    key_rate_limit: RateLimit | None = None  # per API key, on every authenticated request
