"""Small request/response helpers shared by the gateway's routes.

Every parser raises :class:`~squall.errors.InvalidInput` naming the offending field, so a
bad query string gets the same JSON error shape as a bad payload.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from squall.errors import InvalidInput, UnsupportedMediaType
from squall.gateway.body import read_body

JSON = "application/json"


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # msgspec encodes Structs and bytes-free dicts directly and much faster than json.dumps.
    return Response(msgspec.json.encode(data), status, headers, media_type=JSON)


def query_str(request: Request, name: str) -> str | None:
    """A free-text filter; absent or empty means no filter."""
    value = request.query_params.get(name)
    return value if value else None


# Plain ASCII digits: int() would also take "1_000", " 7 " and non-ASCII digits.
_INT_RE = re.compile(r"-?[0-9]{1,100}")  # longer ones are out of range, said so below
_FLOAT_RE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def query_int(
    request: Request, name: str, default: int, *, minimum: int = 1, maximum: int = 1000
) -> int:
    """An integer parameter; absent means ``default``, present but empty is an error."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not _INT_RE.fullmatch(raw):
        raise InvalidInput(
            f"query parameter {name!r} must be an integer, got {raw!r}", field=name
        ) from None
    value = int(raw)
    if not minimum <= value <= maximum:
        raise InvalidInput(
            f"query parameter {name!r}={value} is out of range (allowed {minimum}-{maximum})",
            field=name,
        )
    return value


def query_optional_int(request: Request, name: str) -> int | None:
    if request.query_params.get(name) is None:
        return None
    return query_int(request, name, 0, minimum=0, maximum=2**63 - 1)


def query_float(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not _FLOAT_RE.fullmatch(raw):
        raise InvalidInput(
            f"query parameter {name!r} must be a number (epoch seconds), got {raw!r}", field=name
        ) from None
    value = float(raw)
    if not math.isfinite(value):
        raise InvalidInput(f"query parameter {name!r}={raw} is out of range", field=name)
    return value


_TRACE_ID_RE = re.compile(r"[0-9a-f]{32}")


def query_trace_id(request: Request, name: str) -> str | None:
    """A trace id filter: 32 lower-case hex digits; absent means None."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not _TRACE_ID_RE.fullmatch(raw):
        raise InvalidInput(
            f"query parameter {name!r}={raw!r} is not a trace id (32 lower-case hex digits)",
            field=name,
        )
    return raw


def query_choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    """One of ``allowed``; absent means None, anything else (empty included) is an error."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if raw not in allowed:
        raise InvalidInput(
            f"query parameter {name!r}={raw!r} is not one of {', '.join(allowed)}", field=name
        )
    return raw


def _not_json(constant: str) -> Any:
    # json.loads takes NaN and Infinity, which are not JSON.
    raise InvalidInput(
        f"request body is not valid JSON: {constant} is not a JSON value", field="body"
    )


def require_json(request: Request) -> None:
    """Refuse a body declared as something other than JSON (no Content-Type is fine)."""
    declared = request.headers.get("content-type")
    if declared is None:
        return
    media = declared.split(";")[0].strip().lower()
    if media != JSON and not (media.startswith("application/") and media.endswith("+json")):
        raise UnsupportedMediaType(
            f"Content-Type {declared!r} is not JSON: send application/json",
            field="content-type",
        )


async def json_object(request: Request, limit: int = 1024 * 1024) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is ``{}``."""
    require_json(request)
    body = await read_body(request, limit)
    if not body.strip():
        return {}
    try:
        data = json.loads(body, parse_constant=_not_json)
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
