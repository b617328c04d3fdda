"""Admin API for schedules.

    GET /api/v1/schedules          the app's schedules, with their last and next fire times
    GET /api/v1/schedules/next     the next fire times of any expression, to check it first

``next`` takes ``expression``, ``tz`` (IANA, default UTC), ``from`` (RFC 3339, default now)
and ``count`` (1-100, default 5); a bad one is a 400 naming it.
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
from squall.gateway.http import json_response, query_int

if TYPE_CHECKING:
    from squall.engine.schedules.scheduler import Scheduler


class SchedulesAPI:
    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def routes(self) -> list[Route]:
        return [
            Route("/schedules", self.list_schedules, methods=["GET"]),
            Route("/schedules/next", self.next_times, methods=["GET"]),
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
