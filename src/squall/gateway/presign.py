"""Presigned object URLs, served without an API key (``security/presign.py`` signs them).

    GET, HEAD, PUT  /_squall/buckets/{bucket}/{key}?expires=…&signature=…

A signature that does not match the method (HEAD counts as GET), the bucket and the key, or
an expired URL, is 403 with the gateway's JSON error body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.gateway.buckets_api import object_headers, object_response, put_from_request
from squall.gateway.http import json_response
from squall.model.buckets import check_key
from squall.security.presign import PATH_PREFIX

if TYPE_CHECKING:
    from squall.engine.buckets.service import Buckets


class PresignedRoutes:
    def __init__(self, buckets: Buckets) -> None:
        self.buckets = buckets

    def routes(self) -> list[Route]:
        return [
            Route(
                f"{PATH_PREFIX}/{{bucket}}/{{key:path}}", self.serve, methods=["GET", "HEAD", "PUT"]
            ),
        ]

    async def serve(self, request: Request) -> Response:
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        method = "GET" if request.method == "HEAD" else request.method
        assert self.buckets.presigner is not None
        self.buckets.presigner.verify(
            method,
            bucket,
            key,
            request.query_params.get("expires"),
            request.query_params.get("signature"),
        )
        self.buckets.get(bucket)
        check_key(key)
        if method == "PUT":
            info = await put_from_request(self.buckets, request, bucket, key)
            return json_response(info.public(), headers=object_headers(info))
        stored = await self.buckets.head(bucket, key)
        return await object_response(self.buckets, request, stored)
