"""The OpenAPI fragment of the schedules API (``gateway.schedules_api``), registered at import."""

from __future__ import annotations

from squall.gateway import openapi
from squall.gateway.openapi import (
    API_PREFIX,
    Fragment,
    JSONSchema,
    PathItem,
    nullable,
    ok,
    operation,
    query,
    ref,
)
from squall.model.schedules import MAX_JITTER_S, MISSED

TAG = "schedules"
_TIME: JSONSchema = {"type": "string", "format": "date-time", "description": "RFC 3339, UTC"}


def _object(properties: dict[str, JSONSchema]) -> JSONSchema:
    return {
        "type": "object",
        "required": list(properties),
        "additionalProperties": False,
        "properties": properties,
    }


def _schemas() -> dict[str, JSONSchema]:
    schedule: dict[str, JSONSchema] = {
        "name": {"type": "string"},
        "function": {"type": "string"},
        "expression": {"type": "string"},
        "tz": {"type": "string", "description": "IANA time zone of cron and at() times"},
        "jitter_s": {"type": "integer", "minimum": 0, "maximum": MAX_JITTER_S},
        "missed": {"type": "string", "enum": list(MISSED)},
        "enabled": {"type": "boolean"},
        "description": {"type": "string"},
        "last_fire": {**nullable(_TIME), "description": "The last tick fired (nominal time)"},
        "next_fires": {
            "type": "array",
            "items": _TIME,
            "description": "The next ticks (nominal times; jitter comes on top)",
        },
        "fired": {"type": "integer", "minimum": 0, "description": "Ticks fired so far"},
    }
    return {
        "Schedule": _object(schedule),
        "ScheduleList": _object({"schedules": {"type": "array", "items": ref("Schedule")}}),
        "ScheduleTimes": _object(
            {
                "expression": {"type": "string"},
                "tz": {"type": "string"},
                "times": {"type": "array", "items": _TIME},
            }
        ),
    }


def schedules_fragment() -> Fragment:
    count = query(
        "count", {"type": "integer", "minimum": 1, "maximum": 100}, "How many fire times"
    )
    p = API_PREFIX
    paths: dict[str, PathItem] = {
        f"{p}/schedules": {
            "get": operation(
                "listSchedules",
                "The app's schedules with their last and next fire times",
                tag=TAG,
                parameters=[count],
                responses=ok(ref("ScheduleList")),
                errors=(400,),
            )
        },
        f"{p}/schedules/next": {
            "get": operation(
                "nextScheduleTimes",
                "The next fire times of a schedule expression",
                tag=TAG,
                description=(
                    "Checks an expression before it is deployed: `rate(5 minutes)`,"
                    " `cron(0 9 ? * MON-FRI *)` (AWS, six fields), `*/15 * * * *` (Unix) or"
                    " `at(2026-12-01T09:00:00)`. An invalid expression, zone, start or count is"
                    " 400 naming it (`expression`, `tz`, `from`, `count`)."
                ),
                parameters=[
                    {
                        **query("expression", {"type": "string"}, "The expression"),
                        "required": True,
                        "example": "cron(0 9 ? * MON-FRI *)",
                    },
                    {
                        **query("tz", {"type": "string"}, "IANA time zone (default UTC)"),
                        "example": "Europe/Paris",
                    },
                    {
                        **query(
                            "from",
                            {"type": "string"},
                            "RFC 3339 start (default now); without offset, a wall time in tz",
                        ),
                        "example": "2026-03-29T00:00:00Z",
                    },
                    count,
                ],
                responses=ok(ref("ScheduleTimes")),
                errors=(400,),
            )
        },
    }
    return Fragment(
        paths=paths,
        schemas=_schemas(),
        tags=[{"name": TAG, "description": "Schedules: rates, cron expressions and one-time runs"}],
    )


FRAGMENT = openapi.register(schedules_fragment())
