"""The OpenAPI fragment of the buckets API (``gateway.buckets_api``).

Registered at import. GETs and HEADs need the ``read`` scope; putting, copying and deleting
objects ``publish``; creating and deleting buckets and presigning URLs ``admin``.
"""

from __future__ import annotations

from squall.gateway import openapi
from squall.gateway.openapi import (
    API_PREFIX,
    Fragment,
    JSONSchema,
    PathItem,
    error_response,
    header,
    json_body,
    nullable,
    ok,
    operation,
    path_param,
    query,
    ref,
)
from squall.model.buckets import MAX_KEY_BYTES, MAX_LIST, MAX_OBJECT_BYTES
from squall.security.presign import MAX_EXPIRES_S

TAG = "buckets"
NAME_PATTERN = "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_BINARY: JSONSchema = {"type": "string", "format": "binary"}
_KEY: JSONSchema = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_KEY_BYTES,
    "description": "Object key: 1-1,024 bytes of UTF-8, no NUL, no '.' or '..' path segment",
}


def _object(required: list[str], properties: dict[str, JSONSchema]) -> JSONSchema:
    return {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": properties,
    }


def _schemas() -> dict[str, JSONSchema]:
    bucket: dict[str, JSONSchema] = {
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "max_object_bytes": {"type": "integer", "minimum": 1, "maximum": MAX_OBJECT_BYTES},
        "declared_by": {
            "type": "string",
            "enum": ["app", "api"],
            "description": "`app`: declared in the app's code, read-only here",
        },
        "objects": {"type": "integer", "minimum": 0},
        "bytes": {"type": "integer", "minimum": 0},
    }
    info: dict[str, JSONSchema] = {
        "bucket": {"type": "string"},
        "key": {"type": "string"},
        "version": {"type": "string", "description": "Unique per put: the event's sequencer"},
        "size": {"type": "integer", "minimum": 0},
        "etag": {"type": "string", "pattern": "^[0-9a-f]{32}$", "description": "MD5, hex"},
        "content_type": {"type": "string"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "created_at": {"type": "number"},
    }
    return {
        "Bucket": _object(list(bucket), bucket),
        "BucketList": _object(["buckets"], {"buckets": {"type": "array", "items": ref("Bucket")}}),
        "BucketCreate": _object(
            ["name"],
            {"name": bucket["name"], "max_object_bytes": bucket["max_object_bytes"]},
        ),
        "BucketDeleted": _object(["deleted"], {"deleted": {"type": "string"}}),
        "Object": _object(list(info), info),
        "ObjectPage": _object(
            ["bucket", "objects", "prefixes", "next_cursor"],
            {
                "bucket": {"type": "string"},
                "objects": {"type": "array", "items": ref("Object")},
                "prefixes": {"type": "array", "items": {"type": "string"}},
                "next_cursor": {
                    **nullable({"type": "string"}),
                    "description": "`cursor` for the next page (null: this was the last)",
                },
            },
        ),
        "ObjectDeleted": _object(
            ["bucket", "key", "deleted"],
            {
                "bucket": {"type": "string"},
                "key": {"type": "string"},
                "deleted": {"type": "boolean", "description": "false: there was no object"},
            },
        ),
        "ObjectCopy": _object(
            ["key", "to_key"],
            {
                "key": _KEY,
                "to_key": _KEY,
                "to_bucket": {"type": "string", "description": "Default: the same bucket"},
            },
        ),
        "PresignRequest": _object(
            ["key"],
            {
                "key": _KEY,
                "method": {"type": "string", "enum": ["GET", "PUT"], "default": "GET"},
                "expires_s": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_EXPIRES_S,
                    "default": 3600,
                },
            },
        ),
        "PresignedUrl": _object(
            ["url", "method", "expires_at"],
            {
                "url": {"type": "string"},
                "method": {"type": "string", "enum": ["GET", "PUT"]},
                "expires_at": {"type": "integer", "description": "Epoch seconds"},
            },
        ),
    }


def _bytes(description: str) -> JSONSchema:
    return {"description": description, "content": {"*/*": {"schema": _BINARY}}}


def buckets_fragment() -> Fragment:
    bucket = {**path_param("bucket", "Bucket name"), "schema": {"type": "string"}}
    key = {**query("key", _KEY), "required": True}
    p = API_PREFIX
    object_errors = (400, 404)
    object_ops: PathItem = {
        "put": operation(
            "putObject",
            "Store the body as the object at `key` (publish)",
            tag=TAG,
            description=(
                "The body is streamed to disk and becomes visible whole once stored; the"
                " request's Content-Type and `x-squall-meta-<name>` headers are kept with it."
                " A body over the bucket's `max_object_bytes` is 413 with `size` and `limit`,"
                " and nothing is stored. A `squall.object.created` event is published in the"
                " same commit."
            ),
            parameters=[bucket, key],
            body={
                "required": True,
                "content": {"application/octet-stream": {"schema": _BINARY}},
            },
            responses=ok(ref("Object")),
            errors=(*object_errors, 413),
        ),
        "get": operation(
            "getObject",
            "The object's bytes, or the byte range asked for",
            tag=TAG,
            description=(
                "`Range: bytes=a-b`, `bytes=a-` or `bytes=-n` asks for one range (206 with"
                " `Content-Range`); a range past the end is 416; other Range values are"
                " ignored. ETag is the quoted MD5."
            ),
            parameters=[bucket, key, header("Range", {"type": "string"}, "One byte range")],
            responses={
                "200": _bytes("The whole object"),
                "206": _bytes("The range asked for"),
                "416": error_response(416, "The range is outside the object"),
            },
            errors=object_errors,
        ),
        "head": operation(
            "headObject",
            "The object's headers: size, ETag, content type, metadata",
            tag=TAG,
            parameters=[bucket, key],
            responses={"200": {"description": "The object exists"}},
            errors=object_errors,
        ),
        "delete": operation(
            "deleteObject",
            "Delete the object at `key` (publish)",
            tag=TAG,
            description="A `squall.object.removed` event is published when there was one.",
            parameters=[bucket, key],
            responses=ok(ref("ObjectDeleted")),
            errors=object_errors,
        ),
    }
    paths: dict[str, PathItem] = {
        f"{p}/buckets": {
            "get": operation(
                "listBuckets",
                "The buckets, their object counts and bytes",
                tag=TAG,
                responses=ok(ref("BucketList")),
            ),
            "post": operation(
                "createBucket",
                "Create a bucket (admin)",
                tag=TAG,
                description="A name already taken is 409.",
                body=json_body(ref("BucketCreate"), required=True),
                responses=ok(ref("Bucket"), "Created", status=201),
                errors=(400, 409, 413, 415),
            ),
        },
        f"{p}/buckets/{{bucket}}": {
            "get": operation(
                "getBucket",
                "One bucket",
                tag=TAG,
                parameters=[bucket],
                responses=ok(ref("Bucket")),
                errors=(404,),
            ),
            "delete": operation(
                "deleteBucket",
                "Delete an empty bucket made through the API (admin)",
                tag=TAG,
                parameters=[bucket],
                responses=ok(ref("BucketDeleted")),
                errors=(404, 409),
            ),
        },
        f"{p}/buckets/{{bucket}}/objects": {
            "get": operation(
                "listObjects",
                "Objects by key, a page at a time",
                tag=TAG,
                parameters=[
                    bucket,
                    query("prefix", {"type": "string"}, "Only keys starting with this"),
                    query("delimiter", {"type": "string"}, "Roll keys up into `prefixes`"),
                    query("cursor", {"type": "string"}, "`next_cursor` of the page before"),
                    query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": MAX_LIST},
                        f"Page size (default {MAX_LIST})",
                    ),
                ],
                responses=ok(ref("ObjectPage")),
                errors=(400, 404),
            ),
        },
        f"{p}/buckets/{{bucket}}/object": object_ops,
        f"{p}/buckets/{{bucket}}/copy": {
            "post": operation(
                "copyObject",
                "Copy an object to another key (publish)",
                tag=TAG,
                parameters=[bucket],
                body=json_body(ref("ObjectCopy"), required=True),
                responses=ok(ref("Object"), "Copied", status=201),
                errors=(400, 404, 413, 415),
            ),
        },
        f"{p}/buckets/{{bucket}}/presign": {
            "post": operation(
                "presignObject",
                "A URL to GET or PUT one object without an API key, until it expires (admin)",
                tag=TAG,
                parameters=[bucket],
                body=json_body(ref("PresignRequest"), required=True),
                responses=ok(ref("PresignedUrl")),
                errors=(400, 404, 413, 415),
            ),
        },
    }
    return Fragment(
        paths=paths,
        schemas=_schemas(),
        tags=[{"name": TAG, "description": "Object storage: buckets of keyed objects"}],
    )


FRAGMENT = openapi.register(buckets_fragment())
