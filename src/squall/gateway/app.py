"""Assemble the gateway: health probes plus the admin API, behind one error translator."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from squall.gateway.admin import AdminAPI
from squall.gateway.errors import EXCEPTION_HANDLERS
from squall.gateway.http import json_response
from squall.gateway.invoke import InvokeAPI

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager

    from squall.engine.platform import Platform

    Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]

API_PREFIX = "/api/v1"


def create_app(platform: Platform, *, lifespan: Lifespan | None = None) -> Starlette:
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
        Mount(API_PREFIX, routes=api),
    ]
    return Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
