"""Translate exceptions into the gateway's one error shape: ``{"error": {"type", "message", …}}``.

Platform errors carry their own HTTP status; routing errors become NotFound/MethodNotAllowed;
anything unexpected is a bare 500 so no traceback or internal detail leaks to clients.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from squall.errors import SquallError, TooManyRequests, Unauthorized
from squall.gateway.http import json_response

_HTTP_TYPES = {404: "NotFound", 405: "MethodNotAllowed"}


def error_body(error: dict[str, object]) -> dict[str, object]:
    return {"error": error}


def error_headers(exc: SquallError) -> dict[str, str] | None:
    """What the status obliges: a challenge with 401 (RFC 6750), ``Retry-After`` with 429."""
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": 'Bearer realm="squall"'}
    retry_after = exc.details.get("retry_after")
    if isinstance(exc, TooManyRequests) and isinstance(retry_after, int):
        return {"Retry-After": str(retry_after)}
    return None


def error_response(exc: SquallError) -> Response:
    return json_response(error_body(exc.to_dict()), exc.status, error_headers(exc))


async def squall_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SquallError)
    return error_response(exc)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no route for {request.method} {request.url.path}"
    else:
        message = str(exc.detail)
    kind = _HTTP_TYPES.get(exc.status_code, "HTTPError")
    headers = dict(exc.headers) if exc.headers else None
    return json_response(error_body({"type": kind, "message": message}), exc.status_code, headers)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after this handler, so the traceback still reaches the server log.
    return json_response(
        error_body({"type": "InternalError", "message": "internal server error"}), 500
    )


EXCEPTION_HANDLERS = {
    SquallError: squall_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
