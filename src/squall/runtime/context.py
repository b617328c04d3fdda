"""The ``ctx`` object a handler receives. It lives in the sandbox process."""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

import msgspec


class PlatformLink(Protocol):
    """The sandbox's channel back to the platform."""

    def call(self, op: str, args: dict[str, Any]) -> bytes | None: ...


class Context:
    """Facts about the running invocation and calls back into the platform.

    ``ctx.invoke(name, payload)`` runs another function (sync, returns its result;
    ``async_=True`` returns the new invocation id at once).
    """

    __slots__ = (
        "_deadline",
        "_link",
        "attempt",
        "function_name",
        "invocation_id",
        "logger",
        "memory_mb",
        "secrets",
        "state",
        "trigger",
        "version",
    )

    def __init__(
        self,
        *,
        link: PlatformLink,
        function_name: str,
        version: str,
        memory_mb: int,
        logger: logging.Logger,
        state: Any = None,
        secrets: dict[str, str] | None = None,
    ) -> None:
        self._link = link
        self.function_name = function_name
        self.version = version
        self.memory_mb = memory_mb
        self.logger = logger
        self.state = state
        self.secrets: dict[str, str] = dict(secrets or {})  # the declared secrets only
        self.invocation_id = ""
        self.attempt = 1
        self.trigger = ""
        self._deadline = float("inf")

    def _begin(self, invocation_id: str, attempt: int, trigger: str, deadline: float) -> None:
        self.invocation_id = invocation_id
        self.attempt = attempt
        self.trigger = trigger
        self._deadline = deadline

    def remaining_ms(self) -> int:
        """Milliseconds left before the platform kills this invocation."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def invoke(self, name: str, payload: Any = None, *, async_: bool = False) -> Any:
        body = self._link.call(
            "invoke",
            {"function": name, "payload": msgspec.json.encode(payload), "async": async_},
        )
        return None if body is None else msgspec.json.decode(body)

    def publish(
        self,
        type: str,
        data: Any = None,
        *,
        subject: str | None = None,
        source: str | None = None,
        bus: str = "default",
    ) -> str:
        """Publish a CloudEvent onto ``bus`` (declared in ``permissions``); returns its id."""
        body = self._link.call(
            "publish",
            {
                "type": type,
                "data": msgspec.json.encode(data),
                "subject": subject,
                "source": source,
                "bus": bus,
            },
        )
        return str(msgspec.json.decode(body)) if body is not None else ""

    def send(
        self,
        queue: str,
        body: Any = None,
        *,
        delay_s: int | None = None,
        group_id: str | None = None,
        dedup_id: str | None = None,
        attributes: dict[str, str] | None = None,
    ) -> str:
        """Send a JSON-able ``body`` to ``queue`` (declared as ``send:<queue>`` in
        ``permissions``); returns the message id (the first one's, for a FIFO duplicate)."""
        reply = self._link.call(
            "send",
            {
                "queue": queue,
                "body": msgspec.json.encode(body),
                "delay_s": delay_s,
                "group_id": group_id,
                "dedup_id": dedup_id,
                "attributes": attributes,
            },
        )
        return str(msgspec.json.decode(reply)) if reply is not None else ""

    def __repr__(self) -> str:
        return f"Context(function={self.function_name!r}, invocation={self.invocation_id!r})"
