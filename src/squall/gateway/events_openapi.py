"""The OpenAPI fragment of publishing events and testing patterns (``gateway.events_api``).

Registered at import; ``gateway.events_api`` imports this module. Publishing needs the
``publish`` scope. The document describes the CloudEvents HTTP binding's structured and batch
modes (binary mode puts the attributes into ``ce-`` headers, which OpenAPI cannot tie to a
content type, so it is described in words). Beyond the schema, the handler answers 400 naming
the attribute for what the CloudEvents spec and the platform check: a ``source`` or
``dataschema`` that is not a URI reference, a ``time`` that is not RFC 3339, extension values
the platform owns (``squallhops``, ``traceparent``, ``squallreplay``), and ``data`` that breaks
the registered schema of its type (``data.items[2].qty``).
"""

from __future__ import annotations

from squall.gateway import openapi
from squall.gateway.openapi import (
    API_PREFIX,
    Fragment,
    JSONSchema,
    json_content,
    ok,
    operation,
    query,
    ref,
)
from squall.model.cloudevent import INT_MAX, INT_MIN

TAG = "events"
EXTENSION_NAME = "^[a-z0-9]{1,20}$"
BUS_NAME = "^[a-z][a-z0-9_.-]{0,63}$"


def _schemas() -> dict[str, JSONSchema]:
    text = {"type": "string", "minLength": 1}
    return {
        "CloudEvent": {
            "type": "object",
            "description": (
                "A CloudEvent 1.0 in the JSON format. Attributes beyond the core ones are"
                " extensions: lower-case letters and digits, holding a string, an integer or a"
                " boolean."
            ),
            "required": ["specversion", "id", "source", "type"],
            "properties": {
                "specversion": {"const": "1.0"},
                "id": text,
                "source": {**text, "format": "uri-reference"},
                "type": text,
                "subject": text,
                "time": {"type": "string", "format": "date-time"},
                "datacontenttype": text,
                "dataschema": {**text, "format": "uri"},
                "data": {"description": "Any JSON value"},
                "data_base64": {"type": "string", "contentEncoding": "base64"},
            },
            "propertyNames": {
                "anyOf": [{"pattern": EXTENSION_NAME}, {"const": "data_base64"}]
            },
            "additionalProperties": {
                "anyOf": [
                    {"type": "string"},
                    {"type": "boolean"},
                    {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX},
                ]
            },
        },
        "Published": {
            "type": "object",
            "required": ["bus", "events"],
            "additionalProperties": False,
            "properties": {
                "bus": {"type": "string"},
                "events": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "duplicate", "matched", "looped"],
                        "additionalProperties": False,
                        "properties": {
                            "id": {"type": "string"},
                            "duplicate": {
                                "type": "boolean",
                                "description": "Its (source, id) was published within 24 h",
                            },
                            "matched": {
                                "type": "array",
                                "items": {"type": "string"},
                                "description": "The rules it matched",
                            },
                            "looped": {
                                "type": "boolean",
                                "description": "Too many hops deep: dead-lettered",
                            },
                        },
                    },
                },
            },
        },
        "PatternTest": {
            "type": "object",
            "required": ["pattern", "event"],
            "properties": {
                "pattern": {"type": "object", "description": "An EventBridge event pattern"},
                "event": {"type": "object", "description": "An event as JSON"},
            },
        },
        "PatternMatch": {
            "type": "object",
            "required": ["match"],
            "additionalProperties": False,
            "properties": {"match": {"type": "boolean"}},
        },
    }


def _publish() -> JSONSchema:
    return operation(
        "publishEvents",
        "Publish CloudEvents onto a bus",
        tag=TAG,
        description=(
            "The CloudEvents HTTP binding: structured mode (`application/cloudevents+json`, one"
            " event), batch mode (`application/cloudevents-batch+json`, an array), or binary"
            " mode (the attributes in `ce-` headers, the body is `data`). Every matching rule's"
            " targets get the event, durably, once the answer is 202. A batch is accepted or"
            " refused whole: a 400 names the event's index and attribute (`[3].time`)."
        ),
        parameters=[query("bus", {"type": "string", "pattern": BUS_NAME}, "Default: default")],
        body={
            "required": True,
            "content": {
                "application/cloudevents+json": {"schema": ref("CloudEvent")},
                "application/cloudevents-batch+json": {
                    "schema": {"type": "array", "items": ref("CloudEvent")}
                },
            },
        },
        responses=ok(ref("Published"), "Accepted: delivered at least once", status=202),
        errors=(400, 404, 413, 415),
    )


def _test_pattern() -> JSONSchema:
    return operation(
        "testEventPattern",
        "Whether an event pattern matches an event, or why the pattern is invalid",
        tag=TAG,
        description="A 400 names the pattern's offending path (`pattern.data.total[0]`).",
        body={"required": True, "content": json_content(ref("PatternTest"))},
        responses=ok(ref("PatternMatch")),
        errors=(400, 415),
    )


openapi.register(
    Fragment(
        paths={
            f"{API_PREFIX}/events": {"post": _publish()},
            f"{API_PREFIX}/events/test-pattern": {"post": _test_pattern()},
        },
        schemas=_schemas(),
    )
)
