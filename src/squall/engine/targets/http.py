"""One delivery to an HTTP target: POST the payload, and judge the answer.

2xx is delivered. 429, 5xx, timeouts and connection errors may pass, so they are retried
(a ``Retry-After`` in seconds is honoured, within the backoff cap); any other answer will
not change on a retry, so it is final. Only the first KiB of an answer is read, to quote
it in the error.
"""

from __future__ import annotations

import httpx
import msgspec

from squall.engine.targets.attempt import DELIVERED, Attempt
from squall.model.targets import HttpTarget
from squall.storage.protocols import Delivery

ERROR_BODY_BYTES = 1024
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


async def post(client: httpx.AsyncClient, target: HttpTarget, delivery: Delivery) -> Attempt:
    content, content_type = _body(delivery)
    headers = httpx.Headers(
        {
            "Content-Type": content_type,
            # Delivery is at least once: a receiver may drop repeats of a key it has seen.
            "Idempotency-Key": delivery.id,
            "X-Squall-Rule": delivery.headers.get("rule", ""),
        }
    )
    headers.update(target.headers)
    try:
        async with client.stream(
            "POST", target.url, content=content, headers=headers, timeout=target.timeout_s
        ) as response:
            if response.is_success:
                return DELIVERED
            text = await _start_of(response)
    except httpx.TimeoutException:
        return _retryable("Timeout", f"POST {target.url}: no answer within {target.timeout_s:g} s")
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        return _retryable("ConnectionError", f"POST {target.url}: {reason}")
    status = response.status_code
    error = {
        "type": "HttpError",
        "message": f"POST {target.url} answered {status} {response.reason_phrase}".rstrip(),
        "status": status,
        "body": text,
    }
    retryable = status == 429 or status >= 500
    after = _retry_after(response.headers.get("retry-after")) if retryable else None
    return Attempt(ok=False, retryable=retryable, error=error, retry_after_s=after)


def _body(delivery: Delivery) -> tuple[bytes, str]:
    if delivery.headers.get("content") == "text":  # kept as a JSON string in the queue
        return str(msgspec.json.decode(delivery.payload)).encode(), TEXT
    return delivery.payload, JSON


async def _start_of(response: httpx.Response) -> str:
    chunks = bytearray()
    async for chunk in response.aiter_bytes():
        chunks += chunk
        if len(chunks) >= ERROR_BODY_BYTES:
            break
    return bytes(chunks[:ERROR_BODY_BYTES]).decode("utf-8", "replace")


def _retryable(kind: str, message: str) -> Attempt:
    return Attempt(ok=False, retryable=True, error={"type": kind, "message": message})


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None  # an HTTP date is rare from APIs; the backoff applies then
    return float(value.strip())
