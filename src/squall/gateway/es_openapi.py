"""The OpenAPI fragment of the event store API (``gateway.es_api``), registered at import."""

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
from squall.model.event_store import MAX_APPEND, MAX_READ, MAX_SCHEMA_VERSION

TAG = "event store"
STREAM_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$"
_EPOCH: JSONSchema = {"type": "number", "description": "Epoch seconds"}
_LIMIT = query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_READ})
_EXPECTED: JSONSchema = {
    "description": "'any', 'no_stream' or the version of the stream's last event",
    "oneOf": [
        {"type": "string", "enum": ["any", "no_stream"]},
        {"type": "integer", "minimum": 0},
    ],
}


def _object(properties: dict[str, JSONSchema], required: list[str] | None = None) -> JSONSchema:
    return {
        "type": "object",
        "required": list(properties) if required is None else required,
        "properties": properties,
    }


def _schemas() -> dict[str, JSONSchema]:
    metadata = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "max_age_s": nullable({"type": "number", "exclusiveMinimum": 0}),
            "max_count": nullable({"type": "integer", "minimum": 1}),
        },
    }
    event = _object(
        {
            "stream": {"type": "string"},
            "version": {"type": "integer", "minimum": 1},
            "position": nullable({"type": "integer", "minimum": 1}),
            "id": {"type": "string"},
            "type": {"type": "string"},
            "schema_version": {"type": "integer", "minimum": 1},
            "data": {"description": "Any JSON"},
            "metadata": {"type": "object"},
            "recorded_at": _EPOCH,
        }
    )
    new_event = {
        "type": "object",
        "required": ["type"],
        "additionalProperties": False,
        "properties": {
            "type": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_.-]{0,127}$"},
            "data": {"description": "Any JSON"},
            "metadata": {"type": "object"},
            "schema_version": {"type": "integer", "minimum": 1, "maximum": MAX_SCHEMA_VERSION},
            "id": {"type": "string", "pattern": "^[A-Za-z0-9._:@-]{1,128}$"},
        },
    }
    stream = _object(
        {
            "stream": {"type": "string"},
            "version": {"type": "integer", "minimum": 0},
            "deleted": {"type": "boolean"},
            "metadata": metadata,
            "created_at": _EPOCH,
            "updated_at": _EPOCH,
        }
    )
    rebuild = nullable(_object({
        "generation": {"type": "integer"},
        "checkpoint": {"type": "integer"},
        "lag": {"type": "integer"},
        "last_error": nullable({"type": "object"}),
    }))
    projection = _object(
        {
            "name": {"type": "string"},
            "function": {"type": "string"},
            "table": {"type": "string"},
            "from_streams": {"type": "array", "items": {"type": "string"}},
            "generation": {"type": "integer", "minimum": 1},
            "checkpoint": {"type": "integer", "minimum": 0},
            "head": {"type": "integer", "minimum": 0},
            "lag": {"type": "integer", "description": "head - checkpoint"},
            "last_error": nullable({"type": "object"}),
            "rebuild": rebuild,
        }
    )
    return {
        "EsEvent": event,
        "EsNewEvent": new_event,
        "EsStream": stream,
        "EsStreamMetadata": metadata,
        "EsStreamList": _object({
            "streams": {"type": "array", "items": ref("EsStream")},
            "next": nullable({"type": "string"}),
        }),
        "EsStreamPage": _object({
            "stream": {"type": "string"},
            "version": {"type": "integer", "minimum": 0},
            "events": {"type": "array", "items": ref("EsEvent")},
        }),
        "EsAllPage": _object({
            "events": {"type": "array", "items": ref("EsEvent")},
            "checkpoint": {"type": "integer", "minimum": 0},
            "head": {"type": "integer", "minimum": 0},
        }),
        "EsAppend": {
            "type": "object",
            "required": ["events"],
            "additionalProperties": False,
            "properties": {
                "events": {"type": "array", "minItems": 1, "maxItems": MAX_APPEND,
                           "items": ref("EsNewEvent")},
                "expected_version": _EXPECTED,
            },
        },
        "EsAppended": _object({
            "stream": {"type": "string"},
            "version": {"type": "integer"},
            "first_version": {"type": "integer"},
            "ids": {"type": "array", "items": {"type": "string"}},
        }),
        "Projection": projection,
        "ProjectionList": _object({"projections": {"type": "array",
                                                   "items": ref("Projection")}}),
    }


def es_fragment() -> Fragment:
    p = API_PREFIX
    stream = {**path_param("stream", "Stream name, e.g. order-42"),
              "schema": {"type": "string", "pattern": STREAM_PATTERN}}
    name = {**path_param("name", "Projection name"), "schema": {"type": "string"}}
    paths: dict[str, PathItem] = {
        f"{p}/es/streams": {
            "get": operation(
                "listEventStreams", "Event streams by name", tag=TAG,
                parameters=[
                    query("prefix", {"type": "string"}, "Only streams whose names start so"),
                    query("after", {"type": "string"}, "`next` of the previous page"),
                    _LIMIT,
                ],
                responses=ok(ref("EsStreamList")), errors=(400,),
            ),
        },
        f"{p}/es/all": {
            "get": operation(
                "readAllEvents", "Events of every stream after a global position", tag=TAG,
                parameters=[
                    query("after", {"type": "integer", "minimum": 0}, "A checkpoint"),
                    _LIMIT,
                    query("prefix", {"type": "string"}, "Only streams starting so (repeat)"),
                ],
                responses=ok(ref("EsAllPage")), errors=(400,),
            ),
        },
        f"{p}/es/streams/{{stream}}": {
            "get": operation(
                "getEventStream", "A stream's version, metadata and deletion mark", tag=TAG,
                parameters=[stream], responses=ok(ref("EsStream")), errors=(400, 404),
            ),
            "delete": operation(
                "deleteEventStream",
                "Soft-delete a stream (admin): no more reads or appends; read-all keeps it",
                tag=TAG, parameters=[stream], responses=ok(ref("EsStream")),
                errors=(400, 404),
            ),
        },
        f"{p}/es/streams/{{stream}}/events": {
            "get": operation(
                "readEventStream", "Events of a stream, forward or backward", tag=TAG,
                parameters=[
                    stream,
                    query("start", {"type": "integer", "minimum": 0},
                          "First version read (backward: the highest)"),
                    _LIMIT,
                    query("direction", {"type": "string", "enum": ["forward", "backward"]}),
                ],
                responses=ok(ref("EsStreamPage")), errors=(400, 409),
            ),
            "post": operation(
                "appendEvents",
                "Append events (admin), all or none",
                tag=TAG,
                description=(
                    "409 WrongExpectedVersion (with `expected` and `current`) when the stream"
                    " is not at `expected_version`; 409 Conflict when it is deleted; 400 naming"
                    " the field for an invalid stream name, event type or expected version."
                ),
                parameters=[stream],
                body=json_body(ref("EsAppend"), required=True),
                responses=ok(ref("EsAppended"), "Appended", status=201),
                errors=(400, 409, 413, 415),
            ),
        },
        f"{p}/es/streams/{{stream}}/metadata": {
            "put": operation(
                "putEventStreamMetadata",
                "Set what reads of a stream keep: max age and count (admin)",
                tag=TAG, parameters=[stream],
                body=json_body(ref("EsStreamMetadata"), required=True),
                responses=ok(ref("EsStream")), errors=(400, 409, 413, 415),
            ),
        },
        f"{p}/projections": {
            "get": operation(
                "listProjections", "Projections: generation, checkpoint, head and lag",
                tag=TAG, responses=ok(ref("ProjectionList")),
            ),
        },
        f"{p}/projections/{{name}}": {
            "get": operation(
                "getProjection", "A projection's checkpoint, lag and rebuild", tag=TAG,
                parameters=[name], responses=ok(ref("Projection")), errors=(404,),
            ),
        },
        f"{p}/projections/{{name}}/rebuild": {
            "post": operation(
                "rebuildProjection",
                "Replay every event into a fresh table, swapped in once caught up (admin)",
                tag=TAG, parameters=[name],
                responses=ok(ref("Projection"), "Rebuild started", status=202),
                errors=(404, 409),
            ),
        },
    }
    return Fragment(
        paths=paths,
        schemas=_schemas(),
        tags=[{"name": TAG, "description": "Event streams, read-all and projections"}],
    )


FRAGMENT = openapi.register(es_fragment())
