"""Admin API for archives and replays.

    POST   /api/v1/archives            {"name", "bus", "retention_s"?, "pattern"?}
    GET    /api/v1/archives            every archive, with how many events it holds
    GET    /api/v1/archives/{name}
    DELETE /api/v1/archives/{name}     the archive and its events
    POST   /api/v1/replays             {"bus"?, "archive"?, "from", "to"?, "pattern"?} -> 202
    GET    /api/v1/replays             recent replays, newest first
    GET    /api/v1/replays/{id}        state, published / total, last event time
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.errors import InvalidInput
from squall.gateway import archive_openapi  # noqa: F401  (registers the OpenAPI fragment)
from squall.gateway.http import json_object, json_response
from squall.model.archive import DEFAULT_RETENTION_S, ArchiveConfig

if TYPE_CHECKING:
    from squall.engine.archive import Archives
    from squall.engine.replay import Replays

MAX_BODY = 64 * 1024


class ArchiveAPI:
    def __init__(self, archives: Archives, replays: Replays) -> None:
        self.archives = archives
        self.replays = replays

    def routes(self) -> list[Route]:
        return [
            Route("/archives", self.create, methods=["POST"]),
            Route("/archives", self.list_archives, methods=["GET"]),
            Route("/archives/{name}", self.get, methods=["GET"]),
            Route("/archives/{name}", self.delete, methods=["DELETE"]),
            Route("/replays", self.start_replay, methods=["POST"]),
            Route("/replays", self.list_replays, methods=["GET"]),
            Route("/replays/{id}", self.get_replay, methods=["GET"]),
        ]

    async def _view(self, config: ArchiveConfig) -> dict[str, Any]:
        count, first, last = await self.archives.stats(config.name)
        return {
            **msgspec.structs.asdict(config),
            "events": count,
            "first_event_at": first,
            "last_event_at": last,
        }

    async def create(self, request: Request) -> Response:
        body = await _body(request, {"name", "bus", "retention_s", "pattern"}, {"name", "bus"})
        pattern = body.get("pattern")
        if pattern is not None and not isinstance(pattern, dict):
            raise InvalidInput("pattern must be a JSON object (an event pattern)", field="pattern")
        config = await self.archives.create(
            body["name"],
            body["bus"],
            pattern=pattern,
            retention_s=body.get("retention_s", DEFAULT_RETENTION_S),
        )
        return json_response(await self._view(config), 201)

    async def list_archives(self, request: Request) -> Response:
        return json_response({"archives": [await self._view(c) for c in self.archives.all()]})

    async def get(self, request: Request) -> Response:
        return json_response(await self._view(self.archives.get(request.path_params["name"])))

    async def delete(self, request: Request) -> Response:
        name = self.archives.get(request.path_params["name"]).name
        await self.archives.delete(name)
        return json_response({"deleted": name})

    async def start_replay(self, request: Request) -> Response:
        body = await _body(request, {"bus", "archive", "from", "to", "pattern"}, {"from"})
        for field in ("bus", "archive"):
            if body.get(field) is not None and not isinstance(body[field], str):
                raise InvalidInput(f"{field} must be a string", field=field)
        pattern = body.get("pattern")
        if pattern is not None and not isinstance(pattern, dict):
            raise InvalidInput("pattern must be a JSON object (an event pattern)", field="pattern")
        status = self.replays.start(
            bus=body.get("bus"),
            archive=body.get("archive"),
            start=_epoch(body, "from"),
            end=_epoch(body, "to") if body.get("to") is not None else None,
            pattern=pattern,
        )
        return json_response(status, 202)

    async def list_replays(self, request: Request) -> Response:
        return json_response({"replays": self.replays.all()})

    async def get_replay(self, request: Request) -> Response:
        return json_response(self.replays.get(request.path_params["id"]))


async def _body(request: Request, allowed: set[str], required: set[str]) -> dict[str, Any]:
    body = await json_object(request, MAX_BODY)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})",
            field=unknown[0],
        )
    for field in sorted(required):
        if field not in body:
            raise InvalidInput(f"{field!r} is required", field=field)
    return body


def _epoch(body: dict[str, Any], field: str) -> float:
    value = body[field]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{field!r} must be a time in epoch seconds", field=field)
    if not 0 <= value <= 1e11:
        raise InvalidInput(f"{field!r}={value} is out of range (0 to 1e11)", field=field)
    return float(value)
