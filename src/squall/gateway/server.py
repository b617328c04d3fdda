"""Run the gateway on uvicorn with the platform living in uvicorn's event loop.

The platform starts before uvicorn so a bad app surfaces as a plain ``ConfigError`` (not a
logged lifespan traceback), and the listening socket is bound before the platform starts so a
busy port fails fast. Uvicorn serves the ``Host``, which swaps platforms on deploys; shutdown
goes through the ASGI lifespan, which uvicorn runs on Ctrl-C or SIGTERM before it returns.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import uvicorn

from squall.gateway.heap import freeze_startup

if TYPE_CHECKING:
    from squall.engine.platform import Platform, PlatformConfig
    from squall.gateway.host import Host

OnReady = Callable[["Platform", str], None]
Background = Callable[["Host"], Coroutine[Any, Any, None]]


class ListenError(OSError):
    """The gateway could not bind its address (port in use, bad host, …)."""


def serve(
    config: PlatformConfig,
    host: str = "127.0.0.1",
    port: int = 8787,
    on_ready: OnReady | None = None,
    background: Background | None = None,
) -> None:
    """Serve until interrupted. ``on_ready(platform, url)`` runs once requests are accepted.

    ``port=0`` picks a free port; ``url`` names the one bound.
    """
    asyncio.run(serve_async(config, host, port, on_ready, background))


async def serve_async(
    config: PlatformConfig,
    host: str,
    port: int,
    on_ready: OnReady | None = None,
    background: Background | None = None,
) -> None:
    """``background(host)`` runs beside the server (``squall dev``'s reloader) until it stops."""
    from squall.engine.platform import Platform
    from squall.gateway.host import Host

    sock = bind(host, port)
    try:
        platform = await Platform.start(config)
    except BaseException:
        sock.close()
        raise
    bound = sock.getsockname()
    url = f"http://{_url_host(host)}:{bound[1]}"
    try:
        served = Host(config, platform, url)
    except BaseException:
        await platform.stop()
        sock.close()
        raise
    server = _Server(
        uvicorn.Config(served, loop="asyncio", log_level="warning", lifespan="on"),
        on_started=(lambda: on_ready(served.platform, url)) if on_ready else None,
    )
    task: asyncio.Task[None] | None = None
    if background is not None:
        task = asyncio.create_task(background(served))
    try:
        await server.serve(sockets=[sock])
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await served.stop()
        sock.close()


def bind(host: str, port: int) -> socket.socket:
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.create_server((host, port), family=family)
    except OSError as exc:
        # create_server appends the address to strerror; the message names it once, plainly.
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ListenError(exc.errno, f"cannot listen on {host}:{port}: {reason}") from exc
    # create_server leaves proto=0, and accepted sockets inherit it; asyncio only sets
    # TCP_NODELAY when proto is IPPROTO_TCP, so keep-alive responses (headers and body written
    # separately) would wait ~40 ms on Nagle + the client's delayed ACK. Re-wrapping the fd
    # makes the socket read its real protocol from the kernel.
    return socket.socket(fileno=sock.detach())


def _url_host(host: str) -> str:
    # A wildcard address is not something a client can connect to; name loopback instead.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"[{host}]" if ":" in host else host


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            freeze_startup()
        if self.started and self._on_started is not None:
            self._on_started()
