"""The OpenAPI 3.1 document of the admin API, served at ``GET /api/v1/openapi.json``.

The document is assembled from :class:`Fragment` s: each names some paths (path -> method ->
operation object) and the component schemas those paths reference. This module holds the
fragments of the core admin API (functions, invoke, invocations, logs, dead letters, health);
other gateway modules contribute theirs in one of two ways:

* at import time, ``openapi.register(Fragment(...))`` (the module must be imported by
  ``gateway/app.py`` anyway, to mount its routes, so the fragment is in before the first request);
* or explicitly, ``openapi_document(extra=[fragment, ...])``.

The helpers below (:func:`operation`, :func:`query`, :func:`json_body`, :func:`ok`, :func:`ref`)
keep a fragment short and give every operation the same conventions: an ``operationId``, the
error schema ``{"error": {"type", "message", "field"?}}`` on every 4xx/5xx, and the bearer
security scheme (``Authorization: Bearer <key>``) on everything under ``/api/v1``, with the
401/403/429 answers that go with it.

Component schemas come from the model Structs where the API serves them as they are
(:func:`struct_schemas`, via ``msgspec.json.schema_components``) and are written by hand where
the API serves a view of them (an invocation record with its result decoded, for instance).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from squall.gateway.admin import LOG_LEVELS
from squall.model import FunctionConfig, InvocationStatus, LogRow, Trigger
from squall.model.config import RANGES, UPDATABLE

JSONSchema = dict[str, Any]
Operation = dict[str, Any]
PathItem = dict[str, Operation]

OPENAPI_VERSION = "3.1.0"
API_PREFIX = "/api/v1"
SECURITY_SCHEME = "bearer"
# Answers any secured operation may give, whatever it does.
SECURED_ERRORS = (401, 403, 429)

_REASONS = {
    400: "Invalid input: the error names the field and the rule it broke",
    401: "Missing or invalid credentials",
    403: "The key is valid but lacks the scope this operation needs",
    404: "No such resource",
    405: "Method not allowed",
    409: "The resource is in a state that forbids the call",
    413: "Payload over the configured limit",
    415: "Unsupported media type",
    429: "Too many requests: a rate limit or the function's concurrency is exhausted",
    500: "Internal error (no detail is exposed)",
    502: "The invocation failed (handler error, crash, out of memory, bad result)",
    503: "Not ready",
    504: "The invocation ran past its deadline",
}


@dataclass(frozen=True, slots=True)
class Fragment:
    """Some paths of the document and the component schemas they reference."""

    paths: Mapping[str, PathItem]
    schemas: Mapping[str, JSONSchema] = field(default_factory=dict)
    tags: Sequence[Mapping[str, str]] = ()


_registry: list[Fragment] = []


def register(fragment: Fragment) -> Fragment:
    """Add ``fragment`` to every document built from now on; returns it for convenience."""
    _registry.append(fragment)
    return fragment


# --- helpers for writing fragments -------------------------------------------------------


def ref(name: str) -> JSONSchema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: JSONSchema) -> JSONSchema:
    return {"anyOf": [schema, {"type": "null"}]}


def json_content(schema: JSONSchema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def json_body(schema: JSONSchema, *, required: bool = False, description: str = "") -> JSONSchema:
    body: JSONSchema = {"required": required, "content": json_content(schema)}
    if description:
        body["description"] = description
    return body


def ok(
    schema: JSONSchema,
    description: str = "OK",
    *,
    status: int | str = 200,
    headers: Mapping[str, JSONSchema] | None = None,
) -> dict[str, JSONSchema]:
    """A successful JSON response; ``headers`` maps header names to their schema."""
    response: JSONSchema = {"description": description, "content": json_content(schema)}
    if headers:
        response["headers"] = {name: {"schema": s} for name, s in headers.items()}
    return {str(status): response}


def error_response(status: int, description: str | None = None) -> JSONSchema:
    return {
        "description": description or _REASONS.get(status, "Error"),
        "content": json_content(ref("Error")),
    }


def query(name: str, schema: JSONSchema, description: str = "") -> JSONSchema:
    param: JSONSchema = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        param["description"] = description
    return param


def path_param(name: str, description: str = "") -> JSONSchema:
    param: JSONSchema = {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
    if description:
        param["description"] = description
    return param


def header(name: str, schema: JSONSchema, description: str = "") -> JSONSchema:
    param: JSONSchema = {"name": name, "in": "header", "required": False, "schema": schema}
    if description:
        param["description"] = description
    return param


def operation(
    operation_id: str,
    summary: str,
    *,
    tag: str,
    responses: Mapping[str, JSONSchema],
    errors: Iterable[int] = (),
    parameters: Sequence[JSONSchema] = (),
    body: JSONSchema | None = None,
    secured: bool = True,
    description: str = "",
) -> Operation:
    """One operation object; ``errors`` are the 4xx/5xx it answers with the error schema.

    A secured operation also documents 401/403/429; every operation documents 500.
    """
    all_responses: dict[str, JSONSchema] = dict(responses)
    codes = {*errors, *(SECURED_ERRORS if secured else ()), 500}
    for code in sorted(codes):
        all_responses.setdefault(str(code), error_response(code))
    op: Operation = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "security": [{SECURITY_SCHEME: []}] if secured else [],
        "responses": all_responses,
    }
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = list(parameters)
    if body is not None:
        op["requestBody"] = body
    return op


def struct_schemas(*types: type[msgspec.Struct], all_required: bool = True) -> JSONSchema:
    """Component schemas for msgspec Structs, ``$ref`` s pointing into the document.

    ``all_required``: the API always serves every field, so responses can promise them all.
    """
    _, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    if all_required:
        for schema in components.values():
            if schema.get("type") == "object" and "properties" in schema:
                schema["required"] = list(schema["properties"])
    return components


# --- the core admin API -------------------------------------------------------------------


def _error_schema() -> JSONSchema:
    return {
        "type": "object",
        "description": "Every 4xx/5xx answer of the gateway has this shape.",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {
            "error": {
                "type": "object",
                "required": ["type", "message"],
                "properties": {
                    "type": {"type": "string", "examples": ["InvalidInput", "NotFound"]},
                    "message": {"type": "string"},
                    "field": {"type": "string", "description": "The offending field, if any"},
                    "invocation_id": {"type": "string"},
                },
                # Errors carry extra details (limits, positions, a failed handler's type).
                "additionalProperties": True,
            }
        },
    }


def _number_or_null() -> JSONSchema:
    return nullable({"type": "number"})


def _config_property(name: str, base: JSONSchema) -> JSONSchema:
    schema = {k: v for k, v in base.items() if k not in ("default", "title")}
    if name in RANGES:
        schema["minimum"], schema["maximum"] = RANGES[name]
    return schema


def _function_schemas() -> dict[str, JSONSchema]:
    components = struct_schemas(FunctionConfig)
    config = components["FunctionConfig"]
    props: dict[str, JSONSchema] = config["properties"]
    for name in list(props):
        props[name] = _config_property(name, props[name])
    props["name"]["pattern"] = "^[a-zA-Z][a-zA-Z0-9_-]{0,63}$"
    updatable: dict[str, JSONSchema] = {name: props[name] for name in UPDATABLE}
    updatable["permissions"] = {
        "type": "array",
        "items": {"type": "string", "pattern": "^invoke:.+$"},
    }
    updatable["secrets"] = {
        "type": "array",
        "items": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]{0,127}$"},
    }
    update = {
        "type": "object",
        "description": (
            "Fields to change; the others keep their value. The result is validated as a whole"
            " (for instance min_instances may not exceed concurrency)."
        ),
        "properties": updatable,
        "additionalProperties": False,
    }
    stats = {
        "type": "object",
        "required": ["warm", "busy", "starting", "cold_starts"],
        "properties": {
            name: {"type": "integer", "minimum": 0}
            for name in ("warm", "busy", "starting", "cold_starts")
        },
    }
    function = {
        "allOf": [ref("FunctionConfig")],
        "type": "object",
        "required": ["stats"],
        "properties": {"stats": stats},
    }
    return {**components, "Function": function, "FunctionUpdate": update}


def _invocation_schemas() -> dict[str, JSONSchema]:
    summary_props: dict[str, JSONSchema] = {
        "id": {"type": "string"},
        "function": {"type": "string"},
        "version": {"type": "string"},
        "trigger": {"type": "string", "enum": [t.value for t in Trigger]},
        "status": ref("InvocationStatus"),
        "attempt": {"type": "integer", "minimum": 0},
        "created_at": {"type": "number", "description": "Epoch seconds"},
        "start": _number_or_null(),
        "end": _number_or_null(),
        "duration_ms": _number_or_null(),
        "billed_ms": nullable({"type": "integer"}),
        "memory_mb": {"type": "integer"},
        "peak_rss_kb": nullable({"type": "integer"}),
        "cold": nullable({"type": "boolean"}),
        "init_ms": _number_or_null(),
        "error": nullable({"type": "object", "required": ["type", "message"]}),
        "response": nullable(
            {
                "type": "object",
                "description": "Status, headers and content type a handler's Response set",
            }
        ),
        "idempotency_key": nullable({"type": "string"}),
        "trace_id": nullable({"type": "string", "description": "Its trace (32 hex digits)"}),
    }
    summary = {
        "type": "object",
        "description": "An invocation record without its result and captured logs",
        "required": list(summary_props),
        "properties": summary_props,
    }
    log_entry = {
        "type": "object",
        "required": ["time", "level", "stream", "message"],
        "properties": {
            "time": {"type": "number"},
            "level": {"type": "string"},
            "stream": {"type": "string"},
            "message": {"type": "string"},
            "fields": nullable({"type": "object", "description": "Structured fields"}),
            "trace_id": nullable({"type": "string"}),
            "span_id": nullable({"type": "string"}),
        },
    }
    record = {
        "type": "object",
        "description": "An invocation record; `result` is present once it succeeded",
        "required": [*summary_props, "logs"],
        "properties": {
            **summary_props,
            "logs": {"type": "array", "items": ref("LogEntry")},
            "result": {"description": "The handler's result (JSON, or text for other types)"},
        },
    }
    accepted = {
        "type": "object",
        "required": ["invocation_id", "status", "status_url"],
        "properties": {
            "invocation_id": {"type": "string"},
            "status": ref("InvocationStatus"),
            "status_url": {"type": "string"},
        },
    }
    dead_letter = {
        "type": "object",
        "required": [
            "id",
            "function",
            "invocation_id",
            "payload",
            "error",
            "attempts",
            "enqueued_at",
            "failed_at",
        ],
        "properties": {
            "id": {"type": "string"},
            "function": {"type": "string"},
            "invocation_id": {"type": "string"},
            "payload": {"description": "The invocation's JSON payload"},
            "error": {"type": "object"},
            "attempts": {"type": "integer", "minimum": 0},
            "enqueued_at": {"type": "number"},
            "failed_at": {"type": "number"},
        },
    }
    selection = {
        "type": "object",
        "description": "Which dead letters: those of `function`, those in `ids`, or all"
        " (null means the same as leaving a field out)",
        "properties": {
            "function": {"type": ["string", "null"]},
            "ids": {"type": ["array", "null"], "items": {"type": "string"}},
        },
        "additionalProperties": False,
    }
    return {
        "InvocationStatus": {"type": "string", "enum": [s.value for s in InvocationStatus]},
        "InvocationSummary": summary,
        "Invocation": record,
        "InvocationAccepted": accepted,
        "LogEntry": log_entry,
        **struct_schemas(LogRow),
        "DeadLetter": dead_letter,
        "DeadLetterSelection": selection,
    }


def _core() -> Fragment:
    p = API_PREFIX
    name = path_param("name", "Function name")
    invocation_id = path_param("id", "Invocation id")
    limit_1000 = {"type": "integer", "minimum": 1, "maximum": 1000}
    limit_5000 = {"type": "integer", "minimum": 1, "maximum": 5000}
    logs_page = {
        "type": "object",
        "required": ["logs", "next"],
        "properties": {
            "logs": {"type": "array", "items": ref("LogRow")},
            "next": nullable({"type": "integer"}),
        },
    }
    id_header = {"X-Squall-Invocation-Id": {"type": "string"}}
    paths: dict[str, PathItem] = {
        "/healthz": {
            "get": operation(
                "healthz",
                "Liveness: the process answers",
                tag="health",
                secured=False,
                responses=ok(
                    {
                        "type": "object",
                        "required": ["status"],
                        "properties": {"status": {"const": "ok"}},
                    }
                ),
            )
        },
        "/readyz": {
            "get": operation(
                "readyz",
                "Readiness: the platform started and its store answers",
                tag="health",
                secured=False,
                responses={
                    **ok(
                        {
                            "type": "object",
                            "required": ["status"],
                            "properties": {"status": {"const": "ready"}},
                        }
                    ),
                    "503": {
                        "description": "Not ready",
                        "content": json_content(
                            {
                                "type": "object",
                                "required": ["status"],
                                "properties": {"status": {"const": "unavailable"}},
                            }
                        ),
                    },
                },
            )
        },
        f"{p}/openapi.json": {
            "get": operation(
                "openapi",
                "This document",
                tag="meta",
                secured=False,
                responses=ok({"type": "object"}, "An OpenAPI 3.1 document"),
            )
        },
        f"{p}/functions": {
            "get": operation(
                "listFunctions",
                "List the app's functions with their configuration and pool statistics",
                tag="functions",
                responses=ok(
                    {
                        "type": "object",
                        "required": ["functions"],
                        "properties": {"functions": {"type": "array", "items": ref("Function")}},
                    }
                ),
            )
        },
        f"{p}/functions/{{name}}": {
            "get": operation(
                "getFunction",
                "One function's configuration and pool statistics",
                tag="functions",
                parameters=[name],
                responses=ok(ref("Function")),
                errors=(404,),
            ),
            "patch": operation(
                "updateFunction",
                "Change a function's configuration (applies to new invocations; kept in the"
                " store, over the code's, across restarts and on every node)",
                tag="functions",
                parameters=[name],
                body=json_body(ref("FunctionUpdate")),
                responses=ok(ref("Function")),
                errors=(400, 404, 413),
            ),
        },
        f"{p}/functions/{{name}}/invoke": {
            "post": operation(
                "invokeFunction",
                "Invoke a function, synchronously by default",
                description=(
                    "The body is the event (any JSON; empty means null). A synchronous call"
                    " answers with the function's own result: 200 with its JSON, or the status,"
                    " headers and body of the `squall.Response` it returned. With"
                    " `Prefer: respond-async` (or `X-Squall-Invocation-Type: Event`) the"
                    " invocation is queued durably and the answer is 202 with a status URL. A"
                    " failed invocation answers with the error schema and the header"
                    " `X-Squall-Function-Error`. An `Idempotency-Key` makes repeats return the"
                    " first invocation's outcome."
                ),
                tag="invoke",
                parameters=[
                    name,
                    header(
                        "Prefer",
                        {"type": "string", "examples": ["respond-async"]},
                        "RFC 7240; `respond-async` queues the invocation",
                    ),
                    header(
                        "X-Squall-Invocation-Type",
                        {"type": "string", "enum": ["RequestResponse", "Event"]},
                        "Event = async (takes precedence over Prefer)",
                    ),
                    header(
                        "Idempotency-Key",
                        {"type": "string"},
                        "Repeats with the same key return the first invocation",
                    ),
                ],
                body=json_body({}, description="The event: any JSON value"),
                responses={
                    "2XX": {
                        "description": "The function's result (sync)",
                        "headers": {
                            "X-Squall-Invocation-Id": {"schema": {"type": "string"}},
                            "X-Squall-Cold": {
                                "schema": {"type": "string", "enum": ["true", "false"]}
                            },
                        },
                        "content": {"application/json": {"schema": {}}, "*/*": {"schema": {}}},
                    },
                    **ok(
                        ref("InvocationAccepted"),
                        "Queued (async), or an idempotent repeat of an invocation in flight",
                        status=202,
                        headers={"Location": {"type": "string"}, **id_header},
                    ),
                    "502": {
                        **error_response(502),
                        "headers": {
                            "X-Squall-Function-Error": {"schema": {"type": "string"}},
                            **{k: {"schema": v} for k, v in id_header.items()},
                        },
                    },
                    "504": {
                        **error_response(504),
                        "headers": {
                            "X-Squall-Function-Error": {"schema": {"type": "string"}},
                            **{k: {"schema": v} for k, v in id_header.items()},
                        },
                    },
                },
                errors=(400, 404, 413, 429),
            )
        },
        f"{p}/invocations": {
            "get": operation(
                "listInvocations",
                "Invocations, newest first, one page at a time",
                tag="invocations",
                parameters=[
                    query("function", {"type": "string"}, "Only this function's"),
                    query("status", ref("InvocationStatus"), "Only those in this status"),
                    query("limit", limit_1000, "Page size (default 50)"),
                    query("before", {"type": "string"}, "Cursor: the `next` of the last page"),
                ],
                responses=ok(
                    {
                        "type": "object",
                        "required": ["invocations", "next"],
                        "properties": {
                            "invocations": {"type": "array", "items": ref("InvocationSummary")},
                            "next": nullable({"type": "string"}),
                        },
                    }
                ),
                errors=(400,),
            )
        },
        f"{p}/invocations/{{id}}": {
            "get": operation(
                "getInvocation",
                "One invocation: status, timings, error and, once done, its result",
                tag="invocations",
                parameters=[invocation_id],
                responses=ok(ref("Invocation")),
                errors=(404,),
            )
        },
        f"{p}/invocations/{{id}}/logs": {
            "get": operation(
                "invocationLogs",
                "The log lines one invocation wrote",
                tag="invocations",
                parameters=[invocation_id, query("limit", limit_5000, "Default 500")],
                responses=ok(logs_page),
                errors=(400, 404),
            )
        },
        f"{p}/logs": {
            "get": operation(
                "listLogs",
                "Log lines of all functions, oldest first; `next` is the cursor for `after`",
                tag="logs",
                parameters=[
                    query("function", {"type": "string"}),
                    query("invocation_id", {"type": "string"}),
                    query("since", {"type": "number"}, "Epoch seconds"),
                    query(
                        "after",
                        {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                        "Sequence cursor",
                    ),
                    query("level", {"type": "string", "enum": list(LOG_LEVELS)}, "Minimum level"),
                    query("limit", limit_5000, "Default 500"),
                    query("grep", {"type": "string"}, "Only lines containing this text"),
                    query(
                        "trace",
                        {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                        "Only lines written in this trace",
                    ),
                ],
                responses=ok(logs_page),
                errors=(400,),
            )
        },
        f"{p}/dead-letters": {
            "get": operation(
                "listDeadLetters",
                "Async invocations that ran out of retries or event age",
                tag="dead-letters",
                parameters=[
                    query("function", {"type": "string"}),
                    query("limit", limit_1000, "Default 100"),
                ],
                responses=ok(
                    {
                        "type": "object",
                        "required": ["dead_letters"],
                        "properties": {
                            "dead_letters": {"type": "array", "items": ref("DeadLetter")}
                        },
                    }
                ),
                errors=(400,),
            )
        },
        f"{p}/dead-letters/redrive": {
            "post": operation(
                "redriveDeadLetters",
                "Queue dead letters again as fresh attempts of the same invocations",
                tag="dead-letters",
                body=json_body(ref("DeadLetterSelection")),
                responses=ok(
                    {
                        "type": "object",
                        "required": ["redriven"],
                        "properties": {
                            "redriven": {
                                "type": "array",
                                "items": {"type": "string"},
                                "description": "Invocation ids queued again",
                            }
                        },
                    }
                ),
                errors=(400, 413),
            )
        },
        f"{p}/dead-letters/purge": {
            "post": operation(
                "purgeDeadLetters",
                "Delete dead letters for good",
                tag="dead-letters",
                body=json_body(ref("DeadLetterSelection")),
                responses=ok(
                    {
                        "type": "object",
                        "required": ["purged"],
                        "properties": {"purged": {"type": "integer", "minimum": 0}},
                    }
                ),
                errors=(400, 413),
            )
        },
    }
    return Fragment(
        paths=paths,
        schemas={"Error": _error_schema(), **_function_schemas(), **_invocation_schemas()},
        tags=[
            {"name": "health", "description": "Probes; no key needed"},
            {"name": "functions", "description": "The app's functions and their configuration"},
            {"name": "invoke", "description": "Sync and async invocation"},
            {"name": "invocations", "description": "Invocation records and their logs"},
            {"name": "logs", "description": "Captured log lines"},
            {"name": "dead-letters", "description": "Failed async invocations"},
            {"name": "meta", "description": "This document"},
        ],
    )


# --- assembling -------------------------------------------------------------------------------


def openapi_document(extra: Iterable[Fragment] = ()) -> dict[str, Any]:
    """The whole document: the core API, registered fragments, then ``extra``.

    Two fragments may share a path but not a path's method; component schemas with the same
    name must be equal. Either clash is a programming error and raises ``ValueError``.
    """
    from squall import __version__

    paths: dict[str, PathItem] = {}
    schemas: dict[str, JSONSchema] = {}
    tags: dict[str, Mapping[str, str]] = {}
    for fragment in (_core(), *_registry, *extra):
        for path, item in fragment.paths.items():
            merged = paths.setdefault(path, {})
            for method, op in item.items():
                if method in merged:
                    raise ValueError(f"OpenAPI: {method.upper()} {path} is defined twice")
                merged[method] = op
        for name, schema in fragment.schemas.items():
            if name in schemas and schemas[name] != schema:
                raise ValueError(f"OpenAPI: component schema {name!r} is defined twice")
            schemas[name] = schema
        for tag in fragment.tags:
            tags.setdefault(tag["name"], tag)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Squall admin API",
            "version": __version__,
            "description": (
                "Every route under /api/v1 except this document needs an API key, sent as"
                " `Authorization: Bearer <key>`. Errors are JSON"
                ' `{"error": {"type", "message", "field"?}}`.'
            ),
        },
        "tags": list(tags.values()),
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key: `squall keys create`, or SQUALL_ADMIN_KEY",
                }
            },
        },
        "security": [{SECURITY_SCHEME: []}],
    }


_cache: tuple[int, bytes] | None = None


async def openapi_json(request: Request) -> Response:
    """``GET /api/v1/openapi.json``: built once (rebuilt if a fragment registers later)."""
    global _cache
    if _cache is None or _cache[0] != len(_registry):
        _cache = (len(_registry), msgspec.json.encode(openapi_document()))
    return Response(_cache[1], media_type="application/json")
