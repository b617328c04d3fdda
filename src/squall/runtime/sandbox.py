"""The platform's handle on one sandbox process: an asyncio protocol over its channel."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable

from squall.runtime.protocol import (
    Call,
    CallReply,
    FrameBuffer,
    Invoke,
    Ready,
    Result,
    Started,
    decode_from_sandbox,
    frame,
)


class SandboxGone(Exception):
    """The sandbox's channel closed before it answered."""


class Sandbox(asyncio.Protocol):
    """One sandbox serving one function, one invocation at a time."""

    def __init__(self, function: str, on_call: Callable[[Sandbox, Call], None]) -> None:
        self.function = function
        self._on_call = on_call
        self._buffer = FrameBuffer()
        self._transport: asyncio.Transport | None = None
        self._pending: asyncio.Future[Result] | None = None
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[Ready] = loop.create_future()
        self.pid: int | None = None
        self.closed = False
        self.kill_reason: str | None = None  # "timeout", "oom", "scale-in", "shutdown", …
        self.served = 0
        self.last_used = time.monotonic()
        self.baseline_rss_kb = 0
        self.generation = 0

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        for body in self._buffer.feed(data):
            message = decode_from_sandbox(body)
            if isinstance(message, Result):
                pending, self._pending = self._pending, None
                if pending is not None and not pending.done():
                    pending.set_result(message)
            elif isinstance(message, Call):
                self._on_call(self, message)
            elif isinstance(message, Started):
                self.pid = message.pid
                self.baseline_rss_kb = message.rss_kb
                if self.kill_reason is not None:
                    self._signal_kill()
            elif isinstance(message, Ready) and not self.ready.done():
                self.ready.set_result(message)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        gone = SandboxGone(self.kill_reason or "channel closed")
        if not self.ready.done():
            self.ready.set_exception(gone)
            self.ready.exception()  # mark retrieved: nobody may be waiting on a dead start
        pending, self._pending = self._pending, None
        if pending is not None and not pending.done():
            pending.set_exception(gone)

    # --- platform side ------------------------------------------------------------------

    def invoke(self, message: Invoke) -> asyncio.Future[Result]:
        if self.closed or self._transport is None:
            raise SandboxGone(self.kill_reason or "channel closed")
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending = future
        self._transport.write(frame(message))
        self.served += 1
        return future

    def reply(self, message: CallReply) -> None:
        if self._transport is not None and not self.closed:
            self._transport.write(frame(message))

    def kill(self, reason: str) -> None:
        """SIGKILL the process (the only stop that cannot be ignored) and close the channel."""
        if self.kill_reason is None:
            self.kill_reason = reason
        self._signal_kill()
        if self._transport is not None:
            self._transport.close()

    def _signal_kill(self) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    @property
    def busy(self) -> bool:
        return self._pending is not None
