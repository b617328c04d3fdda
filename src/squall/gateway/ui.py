"""The dashboard: a single-page app of static files served at ``/ui``.

The files (``gateway/ui/``: ``index.html``, ``style.css`` and plain ES modules under ``js/``)
ship in the package and need no build step. Loading them needs no key; every data call the
app makes goes to the admin API with the signed-in key as ``Authorization: Bearer``, so the
page shows nothing a key does not allow. A strict Content-Security-Policy keeps the page to
its own scripts, styles and API.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UI_DIR = Path(__file__).with_name("ui")
PREFIX = "/ui"
HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        b" connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    # The files change with the package: revalidate rather than serve a stale module.
    (b"cache-control", b"no-cache"),
)


class _SecureHeaders:
    """Adds ``HEADERS`` to every response of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _to_index(request: Request) -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=308)


def ui_routes() -> list[BaseRoute]:
    """``/ui`` (redirected to ``/ui/``) and the files under it."""
    static = StaticFiles(directory=UI_DIR, html=True)
    return [
        Route(PREFIX, _to_index, methods=["GET", "HEAD"]),
        Mount(PREFIX, app=_SecureHeaders(static), name="ui"),
    ]
