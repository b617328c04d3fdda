"""Publishing events over HTTP and a pattern tester (rules: ``gateway.rules_api``).

    POST /api/v1/events?bus=NAME          CloudEvents HTTP binding: structured, binary, batch
    POST /events?bus=NAME                 the same, for producers outside the admin API
    POST /api/v1/events/test-pattern      {"pattern", "event"} -> {"match"} or 400
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.engine.router.patterns import compile_pattern
from squall.errors import InvalidInput
from squall.events.http_binding import parse_request
from squall.gateway import events_openapi  # noqa: F401  (registers the events fragment)
from squall.gateway.body import read_body
from squall.gateway.http import json_object, json_response, query_str
from squall.model.rules import DEFAULT_BUS
from squall.security.routes import authenticate_key, require_scopes

if TYPE_CHECKING:
    from squall.engine.platform import Platform


class EventsAPI:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def admin_routes(self) -> list[Route]:
        return [
            Route("/events", self.publish, methods=["POST"]),
            Route("/events/test-pattern", self.test_pattern, methods=["POST"]),
        ]

    def ingest_routes(self) -> list[Route]:
        return [Route("/events", self.ingest, methods=["POST"])]

    async def ingest(self, request: Request) -> Response:
        # Outside /api/v1 the admin middleware does not look: check the key here.
        key = await authenticate_key(self.platform.control, request.headers)
        require_scopes(key, ("publish",), "publish events")
        return await self.publish(request)

    async def publish(self, request: Request) -> Response:
        bus = query_str(request, "bus") or DEFAULT_BUS
        body = await read_body(request, self.platform.config.max_async_payload)
        headers = {name.lower(): value for name, value in request.headers.items()}
        events = parse_request(headers, body)
        outcomes = await self.platform.publish(events, bus=bus)
        return json_response(
            {
                "bus": bus,
                "events": [
                    {"id": o.id, "duplicate": o.duplicate, "matched": o.matched, "looped": o.looped}
                    for o in outcomes
                ],
            },
            202,
        )

    async def test_pattern(self, request: Request) -> Response:
        payload = await json_object(request)
        for field in ("pattern", "event"):
            if field not in payload:
                raise InvalidInput(f"body needs {field!r}", field=field)
        pattern: Any = payload["pattern"]
        event: Any = payload["event"]
        if not isinstance(event, dict):
            raise InvalidInput("event must be a JSON object", field="event")
        try:
            compiled = compile_pattern(pattern)
        except InvalidInput as exc:  # name the body's field, as the rules API does
            exc.field = f"pattern.{exc.field}" if exc.field else "pattern"
            raise
        return json_response({"match": compiled.matches(event)})
