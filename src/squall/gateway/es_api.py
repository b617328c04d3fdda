"""Admin API for the event store and its projections.

    GET    /api/v1/es/streams                      streams by name (``prefix``, ``after``,
                                                   ``limit``)
    GET    /api/v1/es/streams/{stream}             its version, metadata, deletion mark
    GET    /api/v1/es/streams/{stream}/events      read (``start``, ``limit``,
                                                   ``direction=forward|backward``)
    POST   /api/v1/es/streams/{stream}/events      append {"events", "expected_version"}
    PUT    /api/v1/es/streams/{stream}/metadata    {"max_age_s", "max_count"}
    DELETE /api/v1/es/streams/{stream}             soft delete
    GET    /api/v1/es/all                          every stream in global order (``after``,
                                                   ``limit``, ``prefix`` repeated)
    GET    /api/v1/projections                     checkpoint, head and lag of each
    GET    /api/v1/projections/{name}              one of them
    POST   /api/v1/projections/{name}/rebuild      replay into a fresh table, then swap

An append here commits at once (201); a stream that moved on answers 409
``WrongExpectedVersion`` with the stream's ``current`` version and nothing appended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.errors import InvalidInput
from squall.gateway import es_openapi  # noqa: F401  (registers the OpenAPI fragment)
from squall.gateway.http import (
    json_object,
    json_response,
    query_choice,
    query_int,
    query_optional_int,
)
from squall.model.event_store import MAX_READ

if TYPE_CHECKING:
    from squall.engine.event_store.projections import Projections
    from squall.engine.event_store.service import EventStoreService

MAX_BODY = 8 * 1024 * 1024


class EventStoreAPI:
    def __init__(self, es: EventStoreService, projections: Projections) -> None:
        self.es = es
        self.projections = projections

    def routes(self) -> list[Route]:
        return [
            Route("/es/streams", self.list_streams, methods=["GET"]),
            Route("/es/all", self.read_all, methods=["GET"]),
            Route("/es/streams/{stream}", self.describe, methods=["GET"]),
            Route("/es/streams/{stream}", self.delete, methods=["DELETE"]),
            Route("/es/streams/{stream}/events", self.read, methods=["GET"]),
            Route("/es/streams/{stream}/events", self.append, methods=["POST"]),
            Route("/es/streams/{stream}/metadata", self.metadata, methods=["PUT"]),
            Route("/projections", self.list_projections, methods=["GET"]),
            Route("/projections/{name}", self.projection, methods=["GET"]),
            Route("/projections/{name}/rebuild", self.rebuild, methods=["POST"]),
        ]

    async def list_streams(self, request: Request) -> Response:
        params = request.query_params
        page = await self.es.streams(
            params.get("prefix", ""), params.get("after", ""),
            query_int(request, "limit", 100, maximum=MAX_READ),
        )
        return json_response(page)

    async def describe(self, request: Request) -> Response:
        return json_response(await self.es.describe(request.path_params["stream"]))

    async def delete(self, request: Request) -> Response:
        return json_response(await self.es.delete(request.path_params["stream"]))

    async def read(self, request: Request) -> Response:
        direction = query_choice(request, "direction", ("forward", "backward")) or "forward"
        page = await self.es.read(
            request.path_params["stream"],
            start=query_optional_int(request, "start"),
            limit=query_int(request, "limit", 100, maximum=MAX_READ),
            backward=direction == "backward",
        )
        return json_response(page)

    async def append(self, request: Request) -> Response:
        stream = request.path_params["stream"]
        body = await json_object(request, MAX_BODY)
        unknown = sorted(set(body) - {"events", "expected_version"})
        if unknown:
            raise InvalidInput(
                f"{unknown[0]!r} is not a field of an append (fields: events,"
                " expected_version)",
                field=unknown[0],
            )
        result = await self.es.append(stream, body.get("events"), body.get("expected_version"))
        return json_response(result, 201)

    async def metadata(self, request: Request) -> Response:
        body = await json_object(request, 64 * 1024)
        return json_response(await self.es.set_metadata(request.path_params["stream"], body))

    async def read_all(self, request: Request) -> Response:
        page = await self.es.read_all(
            query_optional_int(request, "after") or 0,
            query_int(request, "limit", 100, maximum=MAX_READ),
            request.query_params.getlist("prefix"),
        )
        return json_response(page)

    async def list_projections(self, request: Request) -> Response:
        return json_response({"projections": await self.projections.status()})

    async def projection(self, request: Request) -> Response:
        return json_response(await self.projections.status(request.path_params["name"]))

    async def rebuild(self, request: Request) -> Response:
        return json_response(await self.projections.rebuild(request.path_params["name"]), 202)
