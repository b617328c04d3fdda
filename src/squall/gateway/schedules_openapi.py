"""The OpenAPI fragment of the schedules API (``gateway.schedules_api``), registered at import."""

from __future__ import annotations

from squall.gateway import openapi
from squall.gateway.openapi import (
    API_PREFIX,
    Fragment,
    JSONSchema,
    PathItem,
    json_body,
    nullable,
    ok,
    operation,
    path_param,
    query,
    ref,
)
from squall.model.schedules import MAX_JITTER_S, MISSED

NAME_PATTERN = "^[a-zA-Z][a-zA-Z0-9_.-]{0,63}$"

TAG = "schedules"
_TIME: JSONSchema = {"type": "string", "format": "date-time", "description": "RFC 3339, UTC"}


def _object(properties: dict[str, JSONSchema], required: list[str] | None = None) -> JSONSchema:
    return {
        "type": "object",
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
        "properties": properties,
    }


def _schemas() -> dict[str, JSONSchema]:
    fields: dict[str, JSONSchema] = {
        "function": {"type": "string", "description": "A function of the app"},
        "expression": {
            "type": "string",
            "description": "rate(5 minutes), cron(0 9 ? * MON-FRI *), */15 * * * * or at(...)",
        },
        "tz": {"type": "string", "description": "IANA time zone of cron and at() times"},
        "payload": {"description": "Any JSON: the event's detail (null: {})"},
        "jitter_s": {"type": "integer", "minimum": 0, "maximum": MAX_JITTER_S},
        "missed": {"type": "string", "enum": list(MISSED)},
        "enabled": {"type": "boolean"},
        "description": {"type": "string"},
    }
    name: JSONSchema = {"type": "string", "pattern": NAME_PATTERN, "not": {"const": "next"}}
    schedule: dict[str, JSONSchema] = {
        "name": {"type": "string"},
        **fields,
        "origin": {"type": "string", "enum": ["app", "api"]},
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
        "ScheduleCreate": _object(
            {"name": name, **fields}, ["name", "function", "expression"]
        ),
        "SchedulePut": _object({"name": name, **fields}, ["function", "expression"]),
        "ScheduleChanges": _object(fields, []),
        "ScheduleDeleted": _object({"deleted": {"type": "string"}}),
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
            ),
            "post": operation(
                "createSchedule",
                "Create a schedule, kept in the store (admin)",
                tag=TAG,
                description=(
                    "Fires at once on its expression, without a restart. A taken name is 409;"
                    " an invalid expression, zone or unknown function 400 naming the field."
                ),
                body=json_body(ref("ScheduleCreate"), required=True),
                responses=ok(ref("Schedule"), "Created", status=201),
                errors=(400, 409, 413, 415),
            ),
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
    named = {
        **path_param("name", "Schedule name"),
        "schema": {"type": "string", "pattern": NAME_PATTERN},
    }
    paths[f"{p}/schedules/{{name}}"] = {
        "get": operation(
            "getSchedule", "One schedule with its next fire times", tag=TAG,
            parameters=[named], responses=ok(ref("Schedule")), errors=(400, 404),
        ),
        "put": operation(
            "putSchedule",
            "Create or replace a schedule (admin)",
            tag=TAG,
            description=(
                "A replaced schedule keeps its place when its expression and zone are"
                " unchanged. The app's schedules are read-only (409)."
            ),
            parameters=[named],
            body=json_body(ref("SchedulePut"), required=True),
            responses={
                **ok(ref("Schedule"), "Replaced"),
                **ok(ref("Schedule"), "Created", status=201),
            },
            errors=(400, 409, 413, 415),
        ),
        "patch": operation(
            "updateSchedule",
            "Change some fields of a schedule, e.g. {\"enabled\": false} (admin)",
            tag=TAG,
            parameters=[named],
            body=json_body(ref("ScheduleChanges"), required=True),
            responses=ok(ref("Schedule")),
            errors=(400, 404, 409, 413, 415),
        ),
        "delete": operation(
            "deleteSchedule", "Delete a schedule (admin); the app's are read-only (409)",
            tag=TAG, parameters=[named], responses=ok(ref("ScheduleDeleted")),
            errors=(400, 404, 409),
        ),
    }
    return Fragment(
        paths=paths,
        schemas=_schemas(),
        tags=[{"name": TAG, "description": "Schedules: rates, cron expressions and one-time runs"}],
    )


FRAGMENT = openapi.register(schedules_fragment())
