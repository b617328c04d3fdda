"""Connecting to NATS: a first connection retried with backoff, reconnects left to nats-py.

nats-py's first connect, with reconnects allowed forever, never returns while the server
is down. We make bounded attempts with backoff (a platform may start just before its
broker; each attempt is two tries ``reconnect_wait_s`` apart, nats-py's smallest bound),
then let nats-py reconnect forever: once we run, the broker is the backbone.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from squall.errors import ConfigError

if TYPE_CHECKING:
    from nats.aio.client import Client

log = logging.getLogger("squall.nats")

INSTALL_HINT = "the NATS backend needs nats-py: pip install 'squall[cluster]'"


class BrokerUnavailable(ConnectionError):
    """NATS could not be reached at ``url``."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach NATS at {url}: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class ConnectOptions:
    url: str = "nats://127.0.0.1:4222"
    name: str = "squall"
    attempts: int = 5  # first-connection attempts before BrokerUnavailable
    backoff_s: float = 0.2  # doubled after each failed attempt, up to max_backoff_s
    max_backoff_s: float = 5.0
    connect_timeout_s: int = 2
    reconnect_wait_s: int = 1
    max_reconnects: int = -1  # once connected, try forever: the broker is the backbone

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError("attempts must be >= 1", field="attempts")
        if not self.url.startswith(("nats://", "tls://")):
            raise ConfigError(
                f"url {self.url!r} must start with nats:// or tls://", field="url"
            )


async def connect(options: ConnectOptions) -> Client:
    try:
        import nats
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise ImportError(INSTALL_HINT) from exc

    seen: list[Exception] = []  # the socket's error says more than NoServersError

    async def on_error(exc: Exception) -> None:
        seen.append(exc)
        log.warning("nats %s: %s", options.url, exc)

    async def on_disconnect() -> None:
        log.info("nats %s: disconnected (reconnecting unless closed)", options.url)

    delay = options.backoff_s
    for attempt in range(1, options.attempts + 1):
        try:
            nc = await nats.connect(
                servers=[options.url],
                name=options.name,
                connect_timeout=options.connect_timeout_s,
                reconnect_time_wait=options.reconnect_wait_s,
                max_reconnect_attempts=1,
                allow_reconnect=True,
                error_cb=on_error,
                disconnected_cb=on_disconnect,
            )
        except Exception as exc:  # nats-py raises OSError, NoServersError, TimeoutError …
            if attempt == options.attempts:
                cause = seen[-1] if seen else exc
                raise BrokerUnavailable(options.url, f"{type(cause).__name__}: {cause}") from exc
            log.info("nats %s: attempt %d failed (%s), retrying", options.url, attempt, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, options.max_backoff_s)
            continue
        # nats-py reads these when the connection drops, not when it is made.
        nc.options["max_reconnect_attempts"] = options.max_reconnects
        return nc
    raise AssertionError("unreachable: attempts >= 1")
