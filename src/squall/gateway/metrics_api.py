"""Metrics, usage summaries and cost over HTTP.

    GET /metrics                      Prometheus text format; an API key with ``read`` scope
    GET /api/v1/metrics/summary       per function over a window: invocations, errors, error
                                      rate, throttles, cold starts, p50/p99 duration
    GET /api/v1/metrics/series        the same per ``step`` seconds, with cost: the
                                      dashboard's charts
    GET /api/v1/cost                  requests, GB-seconds and USD by function or UTC day

``/metrics`` sits outside the admin API's prefix, where Prometheus expects it, but is
guarded like it: ``Authorization: Bearer <key>`` (Prometheus ``authorization:
credentials_file``) with the ``read`` scope, 401/403 otherwise. It names functions, queues,
streams and rules, which are not for anyone who can reach the port.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.errors import InvalidInput
from squall.gateway import metrics_openapi  # noqa: F401  (registers the OpenAPI fragment)
from squall.gateway.http import json_response, query_choice, query_float, query_str
from squall.observe.cost import BY
from squall.observe.metrics import CONTENT_TYPE
from squall.security.routes import authenticate_key, require_scopes

if TYPE_CHECKING:
    from squall.engine.platform import Platform
    from squall.security.ratelimit import RateLimiter

SUMMARY_WINDOW_S = 3600.0
SERIES_STEP_S = 60.0
COST_WINDOW_S = 7 * 86400.0


class MetricsAPI:
    def __init__(self, platform: Platform, key_limiter: RateLimiter | None = None) -> None:
        self.platform = platform
        self.key_limiter = key_limiter

    def routes(self) -> list[Route]:
        """Under the admin API's prefix (its middleware checks the key)."""
        return [
            Route("/metrics/summary", self.summary, methods=["GET"]),
            Route("/metrics/series", self.series, methods=["GET"]),
            Route("/cost", self.cost, methods=["GET"]),
        ]

    def scrape_route(self) -> Route:
        return Route("/metrics", self.scrape, methods=["GET"])

    async def scrape(self, request: Request) -> Response:
        key = await authenticate_key(self.platform.control, request.headers)
        require_scopes(key, ("read",), "read metrics")
        if self.key_limiter is not None:
            self.key_limiter.check(key.id, f"API key {key.id}")
        body = await self.platform.observability.scrape()
        return Response(body, media_type=CONTENT_TYPE)

    async def summary(self, request: Request) -> Response:
        since, until = _window(request, SUMMARY_WINDOW_S)
        return json_response(await self.platform.observability.summary(since, until))

    async def series(self, request: Request) -> Response:
        since, until = _window(request, SUMMARY_WINDOW_S)
        step = _seconds(request, "step", SERIES_STEP_S)
        function = query_str(request, "function")
        return json_response(await self.platform.observability.series(since, until, step, function))

    async def cost(self, request: Request) -> Response:
        by = query_choice(request, "by", BY) or "function"
        since, until = _window(request, COST_WINDOW_S)
        return json_response(await self.platform.observability.cost(by, since, until))


def _window(request: Request, default_s: float) -> tuple[float, float]:
    until = query_float(request, "until")
    until = time.time() if until is None else until
    since = query_float(request, "since")
    return (until - default_s if since is None else since), until


def _seconds(request: Request, name: str, default: float) -> float:
    try:
        value = query_float(request, name)
    except InvalidInput:
        raw = request.query_params.get(name)
        raise InvalidInput(
            f"query parameter {name!r} must be a number of seconds, got {raw!r}", field=name
        ) from None
    return default if value is None else value
