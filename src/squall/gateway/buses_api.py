"""What the buses did with published events, and its OpenAPI fragment.

    GET /api/v1/buses/stats    per bus: published, duplicates, matched, deliveries, looped

The counters live in the platform's memory (``engine.bus_stats``) and restart from zero with
it; ``since`` says when counting began. The fragment is registered at import, and
``gateway/app.py`` imports this module to mount the route.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.engine.bus_stats import BusCounters
from squall.gateway import openapi
from squall.gateway.http import json_response
from squall.gateway.openapi import API_PREFIX, Fragment, JSONSchema, ok, operation, ref

if TYPE_CHECKING:
    from squall.engine.platform import Platform


class BusesAPI:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def routes(self) -> list[Route]:
        return [Route("/buses/stats", self.stats, methods=["GET"])]

    async def stats(self, request: Request) -> Response:
        stats = self.platform.bus_stats
        return json_response({"since": stats.since, "buses": stats.snapshot()})


_COUNTERS = {
    "published": "Events taken in (duplicates not included)",
    "duplicates": "Events dropped: their (source, id) was published within the 24 h dedup window",
    "matched": "Published events that matched at least one rule",
    "deliveries": "Async invocations queued: one per rule an event matched",
    "looped": (
        "Matched events not delivered because they were more than 16 event-triggered"
        " invocations deep: each left a RecursiveLoop dead letter per rule it matched"
    ),
}


def _schemas() -> dict[str, JSONSchema]:
    counters: JSONSchema = {
        "type": "object",
        "required": list(BusCounters.__struct_fields__),
        "additionalProperties": False,
        "properties": {
            "bus": {"type": "string"},
            **{
                name: {"type": "integer", "minimum": 0, "description": _COUNTERS[name]}
                for name in BusCounters.__struct_fields__
                if name != "bus"
            },
        },
    }
    return {
        "BusCounters": counters,
        "BusStats": {
            "type": "object",
            "required": ["since", "buses"],
            "additionalProperties": False,
            "properties": {
                "since": {
                    "type": "number",
                    "description": "When counting began (epoch seconds): the platform's start",
                },
                "buses": {"type": "array", "items": ref("BusCounters")},
            },
        },
    }


openapi.register(
    Fragment(
        paths={
            f"{API_PREFIX}/buses/stats": {
                "get": operation(
                    "busStats",
                    "What each bus did with the events published to it",
                    tag="events",
                    description=(
                        "Counters kept in the platform's memory since it started (a restart"
                        " resets them), one entry per bus, by name."
                    ),
                    responses=ok(ref("BusStats")),
                )
            }
        },
        schemas=_schemas(),
        tags=[{"name": "events", "description": "Event buses, rules and publishing"}],
    )
)
