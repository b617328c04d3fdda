"""Admin API for buckets and their objects.

    GET    /api/v1/buckets                          every bucket, its objects and bytes
    POST   /api/v1/buckets                          {"name", "max_object_bytes"?}
    GET    /api/v1/buckets/{bucket}                 one bucket
    DELETE /api/v1/buckets/{bucket}                 an empty bucket made here
    GET    /api/v1/buckets/{bucket}/objects         ?prefix=&delimiter=&cursor=&limit=
    PUT    /api/v1/buckets/{bucket}/object?key=K    the body, streamed; Content-Type and
                                                    x-squall-meta-* headers are kept
    GET    /api/v1/buckets/{bucket}/object?key=K    the bytes (Range: bytes=a-b, a-, -n)
    HEAD   /api/v1/buckets/{bucket}/object?key=K    the headers only
    DELETE /api/v1/buckets/{bucket}/object?key=K
    POST   /api/v1/buckets/{bucket}/copy            {"key", "to_key", "to_bucket"?}
    POST   /api/v1/buckets/{bucket}/presign         {"key", "method"?, "expires_s"?}

Object bytes never sit whole in memory: a PUT is written to a staging file chunk by chunk
as it arrives, a GET is read from the object's file chunk by chunk (in a cluster, from this
node's copy of it, fetched whole from the object store first: see
``engine/buckets/cache.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from squall.errors import InvalidInput
from squall.gateway import buckets_openapi  # noqa: F401  (registers the OpenAPI fragment)
from squall.gateway.http import json_object, json_response, query_int
from squall.gateway.ranges import parse_range
from squall.model.buckets import MAX_LIST, ObjectInfo, check_key
from squall.storage.buckets import StoredObject

if TYPE_CHECKING:
    from squall.engine.buckets.service import Buckets

META_PREFIX = "x-squall-meta-"
READ_CHUNK = 1024 * 1024


class BucketsAPI:
    def __init__(self, buckets: Buckets) -> None:
        self.buckets = buckets

    def routes(self) -> list[Route]:
        return [
            Route("/buckets", self.list_buckets, methods=["GET"]),
            Route("/buckets", self.create, methods=["POST"]),
            Route("/buckets/{bucket}", self.get, methods=["GET"]),
            Route("/buckets/{bucket}", self.delete, methods=["DELETE"]),
            Route("/buckets/{bucket}/objects", self.list_objects, methods=["GET"]),
            Route("/buckets/{bucket}/object", self.put_object, methods=["PUT"]),
            Route("/buckets/{bucket}/object", self.get_object, methods=["GET", "HEAD"]),
            Route("/buckets/{bucket}/object", self.delete_object, methods=["DELETE"]),
            Route("/buckets/{bucket}/copy", self.copy, methods=["POST"]),
            Route("/buckets/{bucket}/presign", self.presign, methods=["POST"]),
        ]

    async def list_buckets(self, request: Request) -> Response:
        views = [await self.buckets.describe(b.name) for b in self.buckets.all()]
        return json_response({"buckets": views})

    async def create(self, request: Request) -> Response:
        body = await json_object(request, 64 * 1024)
        only(body, {"name", "max_object_bytes"})
        if "name" not in body:
            raise InvalidInput("'name' is required", field="name")
        size = body.get("max_object_bytes")
        if isinstance(size, float) and size.is_integer():
            size = int(size)
        config = await self.buckets.create(body["name"], size)
        return json_response(await self.buckets.describe(config.name), 201)

    async def get(self, request: Request) -> Response:
        return json_response(await self.buckets.describe(request.path_params["bucket"]))

    async def delete(self, request: Request) -> Response:
        name = self.buckets.get(request.path_params["bucket"]).name
        await self.buckets.delete(name)
        return json_response({"deleted": name})

    async def list_objects(self, request: Request) -> Response:
        bucket = self.buckets.get(request.path_params["bucket"]).name
        params = request.query_params
        page = await self.buckets.list_objects(
            bucket,
            prefix=params.get("prefix") or "",
            delimiter=params.get("delimiter") or None,
            cursor=params.get("cursor") or None,
            limit=query_int(request, "limit", MAX_LIST, maximum=MAX_LIST),
        )
        return json_response(
            {
                "bucket": bucket,
                "objects": [info.public() for info in page.objects],
                "prefixes": page.prefixes,
                "next_cursor": page.next_cursor,
            }
        )

    async def put_object(self, request: Request) -> Response:
        bucket = self.buckets.get(request.path_params["bucket"]).name
        info = await put_from_request(self.buckets, request, bucket, object_key(request))
        return json_response(info.public(), headers=object_headers(info))

    async def get_object(self, request: Request) -> Response:
        bucket = self.buckets.get(request.path_params["bucket"]).name
        stored = await self.buckets.head(bucket, object_key(request))
        return await object_response(self.buckets, request, stored)

    async def delete_object(self, request: Request) -> Response:
        bucket = self.buckets.get(request.path_params["bucket"]).name
        key = object_key(request)
        existed = await self.buckets.delete_object(bucket, key)
        return json_response({"bucket": bucket, "key": key, "deleted": existed})

    async def copy(self, request: Request) -> Response:
        bucket = self.buckets.get(request.path_params["bucket"]).name
        body = await json_object(request, 64 * 1024)
        only(body, {"key", "to_key", "to_bucket"})
        for field in ("key", "to_key"):
            if field not in body:
                raise InvalidInput(f"'{field}' is required", field=field)
        to_bucket = body.get("to_bucket", bucket)
        if not isinstance(to_bucket, str):
            raise InvalidInput("'to_bucket' must be a bucket name", field="to_bucket")
        self.buckets.get(to_bucket)
        info = await self.buckets.copy(
            bucket, check_key(body["key"]), to_bucket, check_key(body["to_key"], "to_key")
        )
        return json_response(info.public(), 201, object_headers(info))

    async def presign(self, request: Request) -> Response:
        bucket = self.buckets.get(request.path_params["bucket"]).name
        body = await json_object(request, 64 * 1024)
        only(body, {"key", "method", "expires_s"})
        if "key" not in body:
            raise InvalidInput("'key' is required", field="key")
        expires_s = body.get("expires_s", 3600)
        if isinstance(expires_s, float) and expires_s.is_integer():
            expires_s = int(expires_s)
        path, expires_at = self.buckets.presign(
            bucket, check_key(body["key"]), body.get("method", "GET"), expires_s
        )
        base = f"{request.url.scheme}://{request.url.netloc}"
        return json_response(
            {
                "url": base + path,
                "method": str(body.get("method", "GET")).upper(),
                "expires_at": expires_at,
            }
        )


def object_key(request: Request) -> str:
    key = request.query_params.get("key")
    if key is None:
        raise InvalidInput("query parameter 'key' is required", field="key")
    return check_key(key)


def declared_length(request: Request) -> int | None:
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    if not declared.isdigit():
        raise InvalidInput(f"Content-Length {declared!r} is not a number", field="Content-Length")
    return int(declared)


async def put_from_request(buckets: Buckets, request: Request, bucket: str, key: str) -> ObjectInfo:
    """Stream the request body into the object at ``key``, with the request's Content-Type
    and ``x-squall-meta-*`` headers."""
    metadata = {
        name[len(META_PREFIX) :]: value
        for name, value in request.headers.items()
        if name.startswith(META_PREFIX)
    }
    return await buckets.put(
        bucket,
        key,
        _body(request),
        content_type=request.headers.get("content-type"),
        metadata={k: v for k, v in metadata.items()},
        declared_size=declared_length(request),
    )


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        yield chunk


def object_headers(info: ObjectInfo) -> dict[str, str]:
    headers = {
        "ETag": f'"{info.etag}"',
        "Last-Modified": formatdate(info.created_at, usegmt=True),
        "x-squall-version": info.version,
    }
    for name, value in info.metadata.items():
        headers[META_PREFIX + name] = value
    return headers


async def object_response(buckets: Buckets, request: Request, stored: StoredObject) -> Response:
    """The object's bytes (or the part its Range asks for), or its headers for a HEAD."""
    info = stored.info
    wanted = parse_range(request.headers.get("range"), info.size)
    # As stored: media_type= would append a charset to text types.
    headers = {**object_headers(info), "Accept-Ranges": "bytes", "Content-Type": info.content_type}
    if wanted is None:
        start, end, status = 0, info.size - 1, 200
    else:
        start, end, status = wanted[0], wanted[1], 206
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    headers["Content-Length"] = str(end - start + 1)
    if request.method == "HEAD":
        return Response(b"", status, headers)
    file = await buckets.open(stored)
    return StreamingResponse(_chunks(file, start, end - start + 1), status, headers)


async def _chunks(file: Any, start: int, length: int) -> AsyncIterator[bytes]:
    try:
        file.seek(start)
        while length > 0:
            chunk = await asyncio.to_thread(file.read, min(READ_CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
    finally:
        file.close()


def only(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})",
            field=unknown[0],
        )
