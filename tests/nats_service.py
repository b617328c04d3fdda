"""NATS for the tests: where it runs, and what a test does when it does not.

``SQUALL_TEST_NATS_URL`` (default ``nats://127.0.0.1:4222``) names the server. When it
cannot be reached, a test fails under ``CI=true`` (a missing service there is a broken
pipeline) and is skipped elsewhere, with the URL and the error in the reason (``-ra``
prints it in the summary).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from squall.storage.nats import BrokerUnavailable, ConnectOptions, JetStreamConfig, JetStreamQueue

NATS_URL = os.environ.get("SQUALL_TEST_NATS_URL", "nats://127.0.0.1:4222")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(error: BaseException) -> None:
    """Fail (CI) or skip (locally) the running test, naming the URL and ``error``."""
    reason = f"{error} (set SQUALL_TEST_NATS_URL to a NATS server with JetStream)"
    if in_ci():
        pytest.fail(f"CI=true requires NATS: {reason}")
    pytest.skip(reason)


def fresh_prefix() -> str:
    """Subjects and streams no other test (or run) uses."""
    return f"t{uuid.uuid4().hex[:10]}"


class JetStreams:
    """Opens queues on one random prefix; ``cleanup`` closes them and deletes the streams."""

    def __init__(self) -> None:
        self.prefix = fresh_prefix()
        self.url = NATS_URL
        self._opened: list[JetStreamQueue] = []

    def config(self, **overrides: Any) -> JetStreamConfig:
        options = ConnectOptions(url=NATS_URL, attempts=1)
        fields: dict[str, Any] = {"connect": options, "prefix": self.prefix, "memory": True}
        return JetStreamConfig(**{**fields, **overrides})

    async def open(self, **overrides: Any) -> JetStreamQueue:
        try:
            queue = await JetStreamQueue.open(self.config(**overrides))
        except BrokerUnavailable as exc:
            unavailable(exc)
            raise
        self._opened.append(queue)
        return queue

    async def cleanup(self) -> None:
        if self._opened:
            await self._opened[0].delete_streams()
        for queue in self._opened:
            await queue.close()


@asynccontextmanager
async def jetstreams() -> AsyncIterator[JetStreams]:
    streams = JetStreams()
    try:
        yield streams
    finally:
        await streams.cleanup()
