"""Tells a cluster's other nodes when an admin request changed the control plane.

Rules, schedules, queues, streams, tables, buckets, versions and aliases live in every
node's memory as well as in the store (function settings announce themselves); after a
successful change here the other nodes reload them at once (and every few seconds anyway).
Data requests — invocations, events, messages, items — announce nothing.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from squall.engine.platform import Platform
    from squall.gateway.host import Host

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CONTROL_PATHS = re.compile(
    r"^/api/v1/(?:"
    r"rules(?:/[^/]+)?"
    r"|schedules(?:/[^/]+)?"
    r"|queues(?:/[^/]+)?"
    r"|streams(?:/[^/]+)?"
    r"|tables(?:/[^/]+)?"
    r"|buckets(?:/[^/]+)?"
    r"|functions/[^/]+/(?:aliases/[^/]+|rollback)"
    r"|deployments"
    r")/?$"
)


def changes_control(method: str, path: str) -> bool:
    return method in CHANGES and CONTROL_PATHS.match(path) is not None


class ControlChanges:
    def __init__(self, app: ASGIApp, platform: Platform, host: Host | None = None) -> None:
        self.app = app
        self.platform = platform
        self.host = host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not changes_control(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, sending)
        if status < 400:
            # A deploy stopped the platform this app was made for: the new one announces.
            serving = self.host.platform if self.host is not None else self.platform
            await serving.control_changed()
