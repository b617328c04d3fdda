"""Read a request body under a size limit, refusing it before it is all read.

A declared ``Content-Length`` over the limit is refused before a byte of the body is read;
a chunked body is counted as it streams and refused as soon as it passes the limit. The
server then closes the connection instead of draining the rest.
"""

from __future__ import annotations

from starlette.requests import Request

from squall.errors import InvalidInput, PayloadTooLarge


async def read_body(
    request: Request, limit: int, *, what: str = "request body", field: str = "body"
) -> bytes:
    """The whole body, or ``PayloadTooLarge`` (``size`` and ``limit`` in its details)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise InvalidInput(
                f"Content-Length {declared!r} is not a number", field="Content-Length"
            ) from None
        if size > limit:
            raise too_large(what, field, size, limit)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise too_large(what, field, received, limit, complete=False)
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # later request.body() calls see it instead of an exhausted stream
    return body


def too_large(
    what: str, field: str, size: int, limit: int, *, complete: bool = True
) -> PayloadTooLarge:
    size_text = f"{size} bytes" if complete else f"over {limit} bytes (read {size} so far)"
    return PayloadTooLarge(
        f"{what} is {size_text}; the limit is {limit} bytes",
        field=field,
        size=size,
        limit=limit,
    )
