"""Assemble the gateway: health probes plus the admin API, behind one error translator."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from squall.gateway.admin import AdminAPI
from squall.gateway.auth import AdminAuthMiddleware
from squall.gateway.errors import EXCEPTION_HANDLERS
from squall.gateway.http import json_response
from squall.gateway.invoke import InvokeAPI
from squall.gateway.keys_api import KeysAPI
from squall.gateway.middleware import RequestIdMiddleware
from squall.model.http import CorsConfig
from squall.security.ratelimit import RateLimiter
from squall.security.routes import RouteAuthorizer
from squall.gateway.openapi import openapi_json
from squall.gateway.routes import Authorizer, FunctionRoutes

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager

    from squall.engine.platform import Platform

    Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]

API_PREFIX = "/api/v1"


def create_app(
    platform: Platform,
    *,
    lifespan: Lifespan | None = None,
    authorizer: Authorizer | None = None,
) -> Starlette:
    """The gateway for a started ``platform``; ``lifespan`` lets the server own its shutdown."""

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        # Ready means the store answers a query, not merely that the process is alive.
        if not platform.started:
            return json_response({"status": "unavailable"}, 503)
        try:
            await platform.list_invocations(limit=1)
        except Exception:
            return json_response({"status": "unavailable"}, 503)
        return json_response({"status": "ready"})

    api = [*AdminAPI(platform).routes(), *InvokeAPI(platform).routes()]
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route(f"{API_PREFIX}/openapi.json", openapi_json, methods=["GET"]),
        Mount(API_PREFIX, routes=api),
        *FunctionRoutes(platform, authorizer).routes(),
    ]
    return Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
