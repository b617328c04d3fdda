"""Small request/response helpers shared by the gateway's routes.

Every parser raises :class:`~squall.errors.InvalidInput` naming the offending field, so a
bad query string gets the same JSON error shape as a bad payload.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from squall.errors import InvalidInput

JSON = "application/json"


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # msgspec encodes Structs and bytes-free dicts directly and much faster than json.dumps.
    return Response(msgspec.json.encode(data), status, headers, media_type=JSON)


def query_str(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if value else None


def query_int(
    request: Request, name: str, default: int, *, minimum: int = 1, maximum: int = 1000
) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(
            f"query parameter {name!r} must be an integer, got {raw!r}", field=name
        ) from None
    if not minimum <= value <= maximum:
        raise InvalidInput(
            f"query parameter {name!r}={value} is out of range (allowed {minimum}-{maximum})",
            field=name,
        )
    return value


def query_optional_int(request: Request, name: str) -> int | None:
    if not request.query_params.get(name):
        return None
    return query_int(request, name, 0, minimum=0, maximum=2**63 - 1)


def query_float(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise InvalidInput(
            f"query parameter {name!r} must be a number (epoch seconds), got {raw!r}", field=name
        ) from None


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is ``{}``."""
    body = await request.body()
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            field="body",
            line=exc.lineno,
            column=exc.colno,
        ) from None
    except UnicodeDecodeError:
        raise InvalidInput("request body is not UTF-8", field="body") from None
    if not isinstance(data, dict):
        raise InvalidInput(
            f"request body must be a JSON object, got {type(data).__name__}", field="body"
        )
    return data
