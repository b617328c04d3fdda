"""``POST /api/v1/functions/{name}/invoke``: sync by default, async on request.

A sync call answers with the function's own result (status, headers and body when the handler
returned ``squall.Response``). A failed invocation answers with the error JSON, its status from
the error class, and ``X-Squall-Function-Error`` so clients can tell it from a handler that
deliberately returned an error status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.errors import InvalidInput, SquallError
from squall.gateway.body import read_body
from squall.gateway.errors import error_body
from squall.gateway.http import JSON, json_response, require_json
from squall.model import InvocationRecord

if TYPE_CHECKING:
    from squall.engine.platform import Platform

# The platform sets these; a handler's own headers may not override or corrupt framing.
_RESERVED = frozenset({"content-length", "transfer-encoding", "connection"})


class InvokeAPI:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def routes(self) -> list[Route]:
        return [Route("/functions/{name}/invoke", self.invoke, methods=["POST"])]

    async def invoke(self, request: Request) -> Response:
        name = request.path_params["name"]
        run_async = wants_async(request)
        config = self.platform.config
        limit = config.max_async_payload if run_async else config.max_sync_payload
        mode = "async" if run_async else "sync"
        require_json(request)
        payload = await read_body(request, limit, what=f"{mode} payload", field="payload")
        payload = payload or b"null"
        key = request.headers.get("idempotency-key") or None
        request_id = getattr(request.state, "request_id", None)
        if run_async:
            record = await self.platform.invoke_async(
                name, payload, idempotency_key=key, request_id=request_id
            )
            return accepted(record)
        record = await self.platform.invoke(
            name, payload, idempotency_key=key, request_id=request_id
        )
        if record.status == "succeeded":
            return result_response(record)
        if record.error is not None:
            return failure_response(record)
        # An idempotency key that names an invocation still in flight.
        return accepted(record)


def wants_async(request: Request) -> bool:
    kind = request.headers.get("x-squall-invocation-type")
    if kind is not None:
        if kind.lower() == "event":
            return True
        if kind.lower() == "requestresponse":
            return False
        raise InvalidInput(
            f"header X-Squall-Invocation-Type={kind!r} must be Event or RequestResponse",
            field="X-Squall-Invocation-Type",
        )
    # RFC 7240: comma-separated preferences, each optionally followed by ;parameters.
    prefer = request.headers.get("prefer", "")
    return any(p.split(";")[0].strip().lower() == "respond-async" for p in prefer.split(","))


def _headers(record: InvocationRecord) -> dict[str, str]:
    headers = {"X-Squall-Invocation-Id": record.id, "X-Squall-Cold": str(bool(record.cold)).lower()}
    if record.duration_ms is not None:
        headers["X-Squall-Duration-Ms"] = f"{record.duration_ms:.3f}"
    return headers


def accepted(record: InvocationRecord) -> Response:
    url = f"/api/v1/invocations/{record.id}"
    body = {"invocation_id": record.id, "status": record.status, "status_url": url}
    return json_response(body, 202, {"Location": url, "X-Squall-Invocation-Id": record.id})


def result_response(record: InvocationRecord) -> Response:
    body = record.result if record.result is not None else b"null"
    spec = record.response
    if spec is None:
        return Response(body, 200, _headers(record), media_type=JSON)
    own = spec.get("headers")
    headers = {
        str(k): str(v)
        for k, v in (own.items() if isinstance(own, dict) else ())
        if str(k).lower() not in _RESERVED
    }
    headers.update(_headers(record))
    status = spec.get("status")
    media_type = spec.get("content_type")
    return Response(
        body,
        status if isinstance(status, int) else 200,
        headers,
        media_type=media_type if isinstance(media_type, str) and media_type else JSON,
    )


def failure_response(record: InvocationRecord) -> Response:
    error = dict(record.error or {})
    status = SquallError.from_dict(error).status
    error["invocation_id"] = record.id
    headers = _headers(record)
    headers["X-Squall-Function-Error"] = str(error.get("type", "InvocationError"))
    return json_response(error_body(error), status, headers)
