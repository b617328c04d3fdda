"""The OpenAPI fragment of the traces API (``gateway.traces_api``), registered at import."""

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
    path_param,
    query,
    ref,
)

TAG = "traces"
_EPOCH: JSONSchema = {"type": "number", "description": "Epoch seconds"}
_HEX32: JSONSchema = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
_HEX16: JSONSchema = {"type": "string", "pattern": "^[0-9a-f]{16}$"}


def _object(properties: dict[str, JSONSchema]) -> JSONSchema:
    return {
        "type": "object",
        "required": list(properties),
        "additionalProperties": False,
        "properties": properties,
    }


def _schemas() -> dict[str, JSONSchema]:
    summary = _object(
        {
            "trace_id": _HEX32,
            "name": {"type": "string", "description": "The root span's name"},
            "start": _EPOCH,
            "duration_ms": {"type": "number", "minimum": 0},
            "spans": {"type": "integer", "minimum": 1},
            "error": {"type": "boolean", "description": "A span of it failed"},
            "functions": {"type": "array", "items": {"type": "string"}},
        }
    )
    event = _object({"name": {"type": "string"}, "time": _EPOCH, "attributes": {"type": "object"}})
    span = _object(
        {
            "span_id": _HEX16,
            "parent_id": nullable({**_HEX16, "description": "null for the root"}),
            "name": {"type": "string"},
            "kind": {
                "type": "string",
                "enum": ["internal", "server", "client", "producer", "consumer"],
            },
            "start": _EPOCH,
            "end": _EPOCH,
            "status": {"type": "string", "enum": ["ok", "error", "unset"]},
            "attributes": {
                "type": "object",
                "description": "squall.function, squall.invocation_id, squall.cold_start, …",
            },
            "events": {"type": "array", "items": ref("SpanEvent")},
        }
    )
    return {
        "TraceSummary": summary,
        "SpanEvent": event,
        "Span": span,
        "TraceList": _object(
            {
                "traces": {"type": "array", "items": ref("TraceSummary")},
                "next": nullable({"type": "string", "description": "Cursor for `before`"}),
            }
        ),
        "Trace": _object(
            {"trace_id": _HEX32, "spans": {"type": "array", "items": ref("Span")}}
        ),
    }


def traces_fragment() -> Fragment:
    p = API_PREFIX
    paths: dict[str, PathItem] = {
        f"{p}/traces": {
            "get": operation(
                "listTraces",
                "Traces, newest first",
                tag=TAG,
                description=(
                    "Each trace with its root span's name, start, duration, span count,"
                    " whether a span failed and the functions that ran in it. A full page"
                    " has `next`: pass it as `before` for the page after."
                ),
                parameters=[
                    query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    query("function", {"type": "string"}, "Only traces this function ran in"),
                    query(
                        "before",
                        {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?:[0-9a-f]{32}$"},
                        "`next` of the previous page",
                    ),
                ],
                responses=ok(ref("TraceList")),
                errors=(400,),
            ),
        },
        f"{p}/traces/{{trace_id}}": {
            "get": operation(
                "getTrace",
                "One trace's spans, sorted by start",
                tag=TAG,
                parameters=[
                    {**path_param("trace_id", "32 lower-case hex digits"), "schema": _HEX32}
                ],
                responses=ok(ref("Trace")),
                errors=(400, 404),
            ),
        },
    }
    return Fragment(
        paths=paths,
        schemas=_schemas(),
        tags=[{"name": TAG, "description": "Distributed traces across every hop"}],
    )


FRAGMENT = openapi.register(traces_fragment())
