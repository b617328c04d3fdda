"""Pure-ASGI middleware every request passes: the request id.

``X-Request-Id`` from the client is kept when it is 1-200 printable ASCII characters without
spaces; anything else (absent, too long, spaces, control characters, non-ASCII) is replaced by
a fresh id, so a client cannot inject into logs or headers through it. The id is put in
``request.state.request_id`` and echoed on every response.
"""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
_VALID = re.compile(rb"[\x21-\x7e]{1,200}")


def request_id_of(raw: bytes | None) -> str:
    if raw is not None and _VALID.fullmatch(raw):
        return raw.decode("ascii")
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = next((value for name, value in scope["headers"] if name == HEADER), None)
        request_id = request_id_of(raw)
        scope.setdefault("state", {})["request_id"] = request_id
        echoed = (HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0].lower() != HEADER]
                headers.append(echoed)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)
