"""Admin API for schedules.

    GET    /api/v1/schedules          every schedule, with its last and next fire times
    POST   /api/v1/schedules          create one (409 if the name is taken)
    GET    /api/v1/schedules/next     the next fire times of any expression, to check it first
    GET    /api/v1/schedules/{name}
    PUT    /api/v1/schedules/{name}   create (201) or replace (200)
    PATCH  /api/v1/schedules/{name}   change some fields, e.g. {"enabled": false}
    DELETE /api/v1/schedules/{name}

``next`` takes ``expression``, ``tz`` (IANA, default UTC), ``from`` (RFC 3339, default now)
and ``count`` (1-100, default 5); a bad one is a 400 naming it. Schedules made here are kept
in the store; the app's own are read-only here (409).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.engine.schedules.expressions import preview
from squall.errors import InvalidInput
from squall.gateway import schedules_openapi  # noqa: F401  (registers the OpenAPI fragment)
from squall.gateway.http import json_object, json_response, query_int
from squall.model.schedules import ScheduleInput, parse_schedule

MAX_BODY = 512 * 1024
PATCHABLE = tuple(f for f in ScheduleInput.__struct_fields__ if f != "name")

if TYPE_CHECKING:
    from squall.engine.schedules.scheduler import Scheduler


class SchedulesAPI:
    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def routes(self) -> list[Route]:
        return [
            Route("/schedules", self.list_schedules, methods=["GET"]),
            Route("/schedules", self.create_schedule, methods=["POST"]),
            Route("/schedules/next", self.next_times, methods=["GET"]),
            Route("/schedules/{name}", self.get_schedule, methods=["GET"]),
            Route("/schedules/{name}", self.put_schedule, methods=["PUT"]),
            Route("/schedules/{name}", self.patch_schedule, methods=["PATCH"]),
            Route("/schedules/{name}", self.delete_schedule, methods=["DELETE"]),
        ]

    async def list_schedules(self, request: Request) -> Response:
        count = query_int(request, "count", 3, minimum=1, maximum=100)
        return json_response({"schedules": self.scheduler.describe(count)})

    async def next_times(self, request: Request) -> Response:
        params = request.query_params
        expression = params.get("expression")
        if expression is None:
            raise InvalidInput("query parameter 'expression' is required", field="expression")
        tz = params.get("tz", "UTC")
        count = query_int(request, "count", 5, minimum=1, maximum=100)
        times = preview(expression, tz, params.get("from"), count, now=time.time())
        return json_response({"expression": expression, "tz": tz, "times": times})

    async def get_schedule(self, request: Request) -> Response:
        return json_response(self.scheduler.get(request.path_params["name"]))

    async def create_schedule(self, request: Request) -> Response:
        config = parse_schedule(await json_object(request, MAX_BODY))
        await self.scheduler.put(config, create=True)
        return json_response(self.scheduler.get(config.name), 201)

    async def put_schedule(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await json_object(request, MAX_BODY)
        if body.get("name", name) != name:
            raise InvalidInput(
                f"the body names schedule {body['name']!r}, the path {name!r}: leave 'name'"
                " out or make them equal",
                field="name",
            )
        config = parse_schedule({**body, "name": name})
        created = await self.scheduler.put(config)
        return json_response(self.scheduler.get(name), 201 if created else 200)

    async def patch_schedule(self, request: Request) -> Response:
        name = request.path_params["name"]
        changes = await json_object(request, MAX_BODY)
        unknown = sorted(set(changes) - set(PATCHABLE))
        if unknown:
            raise InvalidInput(
                f"{unknown[0]!r} cannot be changed (fields: {', '.join(PATCHABLE)})",
                field=unknown[0],
            )
        current = self.scheduler.get(name)
        base = {field: current[field] for field in PATCHABLE}
        config = parse_schedule({**base, **changes, "name": name})
        await self.scheduler.put(config)
        return json_response(self.scheduler.get(name))

    async def delete_schedule(self, request: Request) -> Response:
        name = request.path_params["name"]
        await self.scheduler.delete(name)
        return json_response({"deleted": name})
