"""Assemble the gateway: health probes, the admin API and the dashboard, behind one error
translator."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from squall.engine.node import GATEWAY
from squall.gateway.admin import AdminAPI
from squall.gateway.archive_api import ArchiveAPI
from squall.gateway.auth import AdminAuthMiddleware
from squall.gateway.buckets_api import BucketsAPI
from squall.gateway.buses_api import BusesAPI
from squall.gateway.control_changes import ControlChanges
from squall.gateway.deploys_api import DeploysAPI
from squall.gateway.errors import EXCEPTION_HANDLERS
from squall.gateway.es_api import EventStoreAPI
from squall.gateway.events_api import EventsAPI
from squall.gateway.http import json_response
from squall.gateway.invoke import InvokeAPI
from squall.gateway.keys_api import KeysAPI
from squall.gateway.metrics_api import MetricsAPI
from squall.gateway.middleware import RequestIdMiddleware
from squall.gateway.openapi import openapi_json
from squall.gateway.presign import PresignedRoutes
from squall.gateway.queues_api import QueuesAPI
from squall.gateway.routes import Authorizer, FunctionRoutes
from squall.gateway.rules_api import RulesAPI
from squall.gateway.schedules_api import SchedulesAPI
from squall.gateway.schemas_api import SchemasAPI
from squall.gateway.streams_api import StreamsAPI
from squall.gateway.tables_api import TablesAPI
from squall.gateway.traces_api import TracesAPI
from squall.gateway.ui import ui_routes
from squall.gateway.workflows_api import WorkflowsAPI
from squall.model.http import CorsConfig
from squall.security.ratelimit import RateLimiter
from squall.security.routes import RouteAuthorizer

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager

    from squall.engine.platform import Platform
    from squall.gateway.host import Host

    Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]

API_PREFIX = "/api/v1"


def create_app(
    platform: Platform,
    *,
    lifespan: Lifespan | None = None,
    authorizer: Authorizer | None = None,
    host: Host | None = None,
) -> Starlette:
    """The gateway for a started ``platform``; ``lifespan`` lets the server own its shutdown.
    ``host`` (the server's) takes deploys; without it ``POST /deployments`` is refused."""

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

    if GATEWAY not in platform.config.roles:  # a cluster's worker node: probes only
        return Starlette(
            routes=[
                Route("/healthz", healthz, methods=["GET"]),
                Route("/readyz", readyz, methods=["GET"]),
            ],
            lifespan=lifespan,
        )
    settings = platform.manifest.settings
    # One bucket per API key, shared by the admin API and api_key routes.
    key_limiter = RateLimiter.of(settings.key_rate_limit)
    if authorizer is None:
        authorizer = RouteAuthorizer(platform.control, settings.jwt, key_limiter=key_limiter)
    events = EventsAPI(platform)
    metrics = MetricsAPI(platform, key_limiter)
    api = [
        *AdminAPI(platform).routes(),
        *InvokeAPI(platform).routes(),
        *KeysAPI(platform.control).routes(),
        *RulesAPI(platform.rule_book).routes(),
        *events.admin_routes(),
        *BusesAPI(platform).routes(),
        *SchemasAPI(platform.schemas).routes(),
        *ArchiveAPI(platform.archives, platform.replays).routes(),
        *StreamsAPI(platform.streams).routes(),
        *SchedulesAPI(platform.scheduler).routes(),
        *QueuesAPI(platform.queues).routes(),
        *BucketsAPI(platform.buckets).routes(),
        *TablesAPI(platform.tables).routes(),
        *metrics.routes(),
        *WorkflowsAPI(platform.workflows).routes(),
        *EventStoreAPI(platform.events_store, platform.projections).routes(),
        *TracesAPI(platform.traces).routes(),
        *DeploysAPI(platform, host).routes(),
    ]
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        metrics.scrape_route(),
        Route(f"{API_PREFIX}/openapi.json", openapi_json, methods=["GET"]),
        Mount(API_PREFIX, routes=api),
        *ui_routes(),
        *events.ingest_routes(),
        *PresignedRoutes(platform.buckets).routes(),
        *FunctionRoutes(platform, authorizer).routes(),
    ]
    # Outermost first: the request id covers every response; a CORS preflight needs no key.
    middleware = [Middleware(RequestIdMiddleware)]
    if platform.config.clustered:
        middleware.append(Middleware(ControlChanges, platform=platform, host=host))
    if settings.cors is not None:
        middleware.append(cors(settings.cors))
    middleware.append(
        Middleware(
            AdminAuthMiddleware,
            control=platform.control,
            prefix=API_PREFIX,
            key_limiter=key_limiter,
        )
    )
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )


def cors(config: CorsConfig) -> Middleware:
    return Middleware(
        CORSMiddleware,
        allow_origins=config.allow_origins,
        allow_methods=config.allow_methods,
        allow_headers=config.allow_headers,
        allow_credentials=config.allow_credentials,
        max_age=config.max_age_s,
        expose_headers=("x-request-id", "retry-after", "x-squall-invocation-id"),
    )
