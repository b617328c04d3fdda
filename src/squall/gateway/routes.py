"""Function routes: ``@app.http("POST /orders/{order_id}")`` served by the gateway.

Each request becomes an ``HttpRequest`` (method, path, params, query, headers, body,
client, request id, verified claims) that the function's handler gets as a
``squall.Request``. The route's integration timeout answers 504 while the invocation
itself runs on to its own ``timeout_s``, as an API gateway in front of a function does.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import defaultdict
from typing import TYPE_CHECKING, Protocol

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.errors import InvalidInput, SquallError, Unauthorized
from squall.gateway.body import read_body
from squall.gateway.errors import error_body
from squall.gateway.http import json_response
from squall.gateway.invoke import accepted, wants_async
from squall.model.http import METHODS, HttpRequest, RouteConfig
from squall.model.ids import new_id
from squall.model.invocation import InvocationRecord, Trigger
from squall.observe.tracing import (
    ROOT,
    SpanKind,
    Status,
    StatusCode,
    parent_of,
    trace_id_of,
    use_span,
)

if TYPE_CHECKING:
    from squall.engine.platform import Platform

_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,200}$")  # printable ASCII, no spaces
_RESERVED = frozenset({"content-length", "transfer-encoding", "connection"})
_encode_request = msgspec.json.Encoder().encode


class Authorizer(Protocol):
    async def authorize(
        self, route: RouteConfig, request: Request
    ) -> dict[str, object] | None:
        """Verified claims (for JWT routes) or None; raises Unauthorized or Forbidden."""
        ...


class OpenRoutesOnly:
    """The authorizer when no security is wired in: routes that need credentials fail closed."""

    async def authorize(
        self, route: RouteConfig, request: Request
    ) -> dict[str, object] | None:
        if route.auth == "none":
            return None
        raise Unauthorized(
            f"route {route.method} {route.path} requires {route.auth} authentication,"
            " which this platform has not configured",
            field="authorization",
        )


class FunctionRoutes:
    def __init__(self, platform: Platform, authorizer: Authorizer | None = None) -> None:
        self.platform = platform
        self.authorizer = authorizer or OpenRoutesOnly()

    def routes(self) -> list[Route]:
        by_path: dict[str, dict[str, RouteConfig]] = defaultdict(dict)
        for route in self.platform.manifest.routes:
            by_path[route.path][route.method] = route
        routes = []
        for path, by_method in by_path.items():
            methods = list(METHODS) if "ANY" in by_method else list(by_method)
            if "GET" in methods and "HEAD" not in methods:
                methods.append("HEAD")

            async def endpoint(
                request: Request, by_method: dict[str, RouteConfig] = by_method
            ) -> Response:
                return await self.handle(request, by_method)

            routes.append(Route(path, endpoint, methods=methods))
        return routes

    async def handle(self, request: Request, by_method: dict[str, RouteConfig]) -> Response:
        method = request.method
        route = by_method.get(method) or by_method.get("ANY")
        if route is None and method == "HEAD":
            route = by_method["GET"]
        assert route is not None  # Starlette answered 405 for methods not listed
        span = self.platform.tracing.start(
            f"{method} {route.path}",
            parent_of(request.headers.get("traceparent")) or ROOT,  # W3C trace context
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "http.route": route.path,
                "url.path": request.url.path,
                "squall.function": route.function,
            },
        )
        try:
            with use_span(span, end_on_exit=False, record_exception=False):
                response = await self._serve(request, route)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
        except SquallError as exc:
            span.set_attribute("http.response.status_code", exc.status)
            span.set_status(Status(StatusCode.ERROR, exc.message))
            raise
        finally:
            span.end()
        trace_id = trace_id_of(span)
        if trace_id is not None:
            response.headers["X-Squall-Trace-Id"] = trace_id
        return response

    async def _serve(self, request: Request, route: RouteConfig) -> Response:
        method = request.method
        _check_path_params(request.path_params)
        claims = await self.authorizer.authorize(route, request)
        request_id = _request_id(request)
        is_async = wants_async(request)
        config = self.platform.config
        body = await read_body(
            request, config.max_async_payload if is_async else config.max_sync_payload
        )
        client = request.client
        payload = _encode_request(
            HttpRequest(
                method=method,
                path=request.url.path,
                path_params={k: str(v) for k, v in request.path_params.items()},
                query=list(request.query_params.multi_items()),
                headers=[
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                ],
                body=body,
                client=f"{client.host}:{client.port}" if client else None,
                request_id=request_id,
                route=route.path,
                claims=claims,
            )
        )
        if is_async:
            record = await self.platform.invoke_async(
                route.function,
                payload,
                trigger=Trigger.HTTP,
                kind="http",
                request_id=request_id,
                qualifier=route.alias,
            )
            response = accepted(record)
        else:
            response = await self._invoke(route, payload, request_id)
        return response  # the request-id middleware adds X-Request-Id

    async def _invoke(self, route: RouteConfig, payload: bytes, request_id: str) -> Response:
        invocation_id = new_id()
        running = asyncio.ensure_future(
            self.platform.invoke(
                route.function,
                payload,
                trigger=Trigger.HTTP,
                kind="http",
                request_id=request_id,
                invocation_id=invocation_id,
                qualifier=route.alias,
            )
        )
        try:
            # Shielded: the invocation runs on past the integration timeout, like a function
            # behind an API gateway; its record tells how it ended.
            record = await asyncio.wait_for(asyncio.shield(running), route.timeout_s)
        except TimeoutError:
            error: dict[str, object] = {
                "type": "GatewayTimeout",
                "message": f"function {route.function!r} did not answer within the route's"
                f" integration timeout of {route.timeout_s:g} s",
                "invocation_id": invocation_id,
            }
            return json_response(error_body(error), 504, {"X-Squall-Invocation-Id": invocation_id})
        if record.status == "succeeded":
            return self._success(record)
        return self._failure(record)

    def _success(self, record: InvocationRecord) -> Response:
        body = record.result if record.result is not None else b"null"
        spec = record.response or {}
        status = spec.get("status", 200)
        media_type = spec.get("content_type", "application/json")
        own = spec.get("headers", {})
        headers = {"X-Squall-Invocation-Id": record.id}
        for name, value in (own.items() if isinstance(own, dict) else ()):
            if str(name).lower() in _RESERVED:
                continue
            if not _safe_header(str(name), str(value)):
                return self._failure(record, bad_header=str(name))
            headers[str(name)] = str(value)
        response = Response(
            body,
            status if isinstance(status, int) and 100 <= status <= 599 else 200,
            headers,
            media_type=media_type if isinstance(media_type, str) else "application/json",
        )
        cookies = spec.get("cookies")
        for cookie in cookies if isinstance(cookies, list) else ():
            if _safe_header("set-cookie", str(cookie)):
                response.raw_headers.append((b"set-cookie", str(cookie).encode("latin-1")))
        return response

    def _failure(self, record: InvocationRecord, *, bad_header: str | None = None) -> Response:
        error: dict[str, object]
        if bad_header is not None:
            error = {
                "type": "InvalidResponse",
                "message": f"the handler returned header {bad_header!r} with a value that"
                " cannot be sent (line breaks or non-Latin-1 characters)",
            }
            status = 502
        else:
            error = dict(record.error or {})
            status = SquallError.from_dict(dict(error)).status
            if not self.platform.manifest.settings.debug:
                error.pop("traceback", None)
        error["invocation_id"] = record.id
        return json_response(error_body(error), status, {"X-Squall-Invocation-Id": record.id})


def _check_path_params(params: dict[str, object]) -> None:
    for name, value in params.items():
        text = str(value)
        if text in (".", "..") or any(ord(c) < 32 or ord(c) == 127 for c in text):
            raise InvalidInput(
                f"path parameter {name!r} may not be '.' or '..' or hold control characters",
                field=name,
            )


def _request_id(request: Request) -> str:
    from_state = getattr(request.state, "request_id", None)
    if isinstance(from_state, str):
        return from_state
    offered = request.headers.get("x-request-id")
    if offered is not None and _REQUEST_ID.match(offered):
        return offered
    return uuid.uuid4().hex


def _safe_header(name: str, value: str) -> bool:
    try:
        name.encode("latin-1")
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return not any(c in name + value for c in "\r\n\x00") and bool(name.strip())
