"""The OpenAPI fragment of the event schemas API (``gateway.schemas_api``), registered at import.

GETs need the ``read`` scope; PUT and DELETE need ``admin``.
"""

from __future__ import annotations

from squall.gateway import openapi
from squall.gateway.openapi import (
    API_PREFIX,
    Fragment,
    JSONSchema,
    PathItem,
    json_body,
    ok,
    operation,
    path_param,
    query,
    ref,
)

TAG = "schemas"
TYPE_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._~-]{0,255}$"
VERSION_PATTERN = "^[1-9][0-9]{0,8}$"
_VERSION: JSONSchema = {"type": "integer", "minimum": 1}
_URI: JSONSchema = {
    "type": "string", "pattern": "^squall:schemas/", "examples": ["squall:schemas/a.b/2"]
}


def _object(required: list[str], properties: dict[str, JSONSchema], **extra: object) -> JSONSchema:
    return {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": properties,
        **extra,
    }


def _schemas() -> dict[str, JSONSchema]:
    record = {
        "type": {"type": "string", "pattern": TYPE_PATTERN},
        "version": _VERSION,
        "schema": {"type": "object", "description": "The JSON Schema itself"},
        "created_at": {"type": "number", "description": "Epoch seconds"},
        "uri": _URI,
    }
    return {
        "EventSchema": _object(list(record), record, description="One version of a type's schema"),
        "EventSchemaRegistered": _object(
            [*record, "created", "forced"],
            {
                **record,
                "created": {
                    "type": "boolean",
                    "description": "False when the same schema was already this version",
                },
                "forced": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The incompatibilities registered anyway (force=true)",
                },
            },
        ),
        "EventSchemaTypes": _object(
            ["schemas"],
            {
                "schemas": {
                    "type": "array",
                    "items": _object(
                        ["type", "versions", "latest"],
                        {
                            "type": {"type": "string", "pattern": TYPE_PATTERN},
                            "versions": {"type": "array", "items": _VERSION, "minItems": 1},
                            "latest": _VERSION,
                        },
                    ),
                }
            },
        ),
        "EventSchemaVersions": _object(
            ["type", "latest", "versions"],
            {
                "type": {"type": "string", "pattern": TYPE_PATTERN},
                "latest": _VERSION,
                "versions": {
                    "type": "array",
                    "minItems": 1,
                    "items": _object(
                        ["version", "uri", "created_at"],
                        {"version": _VERSION, "uri": _URI, "created_at": {"type": "number"}},
                    ),
                },
            },
        ),
        "EventSchemaDeleted": _object(
            ["type", "deleted"],
            {
                "type": {"type": "string", "pattern": TYPE_PATTERN},
                "deleted": {"type": "array", "items": _VERSION, "minItems": 1},
            },
        ),
    }


def schemas_fragment() -> Fragment:
    base = f"{API_PREFIX}/schemas"
    event_type = {
        **path_param("type", "The event type (URI-unreserved characters only)"),
        "schema": {"type": "string", "pattern": TYPE_PATTERN},
    }
    version = {
        **path_param("version", "A positive integer"),
        "schema": {"type": "string", "pattern": VERSION_PATTERN},
    }
    force = query(
        "force",
        {"type": "string", "enum": ["true", "false"]},
        "Register a version that is not backward compatible with the previous one",
    )
    paths: dict[str, PathItem] = {
        base: {
            "get": operation(
                "listSchemas",
                "Event types with registered schemas, and their versions",
                tag=TAG,
                responses=ok(ref("EventSchemaTypes")),
            )
        },
        f"{base}/{{type}}": {
            "get": operation(
                "listSchemaVersions",
                "The registered versions of one event type",
                tag=TAG,
                parameters=[event_type],
                responses=ok(ref("EventSchemaVersions")),
                errors=(400, 404),
            ),
            "delete": operation(
                "deleteSchemas",
                "Delete every version of a type's schema (admin)",
                tag=TAG,
                parameters=[event_type],
                responses=ok(ref("EventSchemaDeleted")),
                errors=(400, 404),
            ),
        },
        f"{base}/{{type}}/{{version}}": {
            "get": operation(
                "getSchema",
                "One version of a type's schema",
                tag=TAG,
                parameters=[event_type, version],
                responses=ok(ref("EventSchema")),
                errors=(400, 404),
            ),
            "put": operation(
                "putSchema",
                "Register a version of a type's schema (admin)",
                tag=TAG,
                description=(
                    "The body is a JSON Schema (draft 2020-12 unless its `$schema` names"
                    " another draft); one that is not valid is 400 naming the problem. Versions"
                    " are registered in order (409 otherwise); putting the same schema again"
                    " is a 200 that changes nothing, a different one for a registered version"
                    " is 409. Version N+1 must be BACKWARD compatible with version N (every"
                    " document valid under N stays valid): if not, 409 with the reasons, unless"
                    " `force=true`. At most 512 KiB (413 beyond)."
                ),
                parameters=[event_type, version, force],
                body=json_body({"type": "object"}, required=True),
                responses={
                    **ok(ref("EventSchemaRegistered"), "Registered", status=201),
                    **ok(ref("EventSchemaRegistered"), "Already registered: nothing changed"),
                },
                errors=(400, 409, 413, 415),
            ),
            "delete": operation(
                "deleteSchema",
                "Delete one version of a type's schema (admin)",
                tag=TAG,
                parameters=[event_type, version],
                responses=ok(ref("EventSchemaDeleted")),
                errors=(400, 404),
            ),
        },
    }
    return Fragment(
        paths=paths,
        schemas=_schemas(),
        tags=[{"name": TAG, "description": "JSON Schemas that published event data must meet"}],
    )


FRAGMENT = openapi.register(schemas_fragment())
