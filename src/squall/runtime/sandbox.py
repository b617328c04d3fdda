"""The platform's handle on one sandbox process: an asyncio protocol over its channel."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import os
import signal
import time
from collections.abc import Callable
from typing import Any, cast

from squall.runtime.protocol import (
    HEADER,
    MAX_FRAME,
    Call,
    CallReply,
    FromSandbox,
    Invoke,
    Ready,
    Result,
    Started,
    decode_from_sandbox,
    frame,
)

INITIAL_BUFFER = 64 * 1024
MIN_FREE = 16 * 1024


INIT_TIMEOUT_S = 10.0  # a cold start may spend this long in the init hook on top of timeout_s


class SandboxGone(Exception):
    """The sandbox's channel closed before it answered.

    ``started`` is False for an invocation that was still queued behind the one
    that was running: it never ran and may simply be sent elsewhere.
    """

    def __init__(self, reason: str, *, started: bool = True) -> None:
        super().__init__(reason)
        self.started = started


class Sandbox(asyncio.BufferedProtocol):
    """One sandbox serving one function, one invocation at a time.

    Invocations may be queued in its channel (an async worker sends the next one
    before the current one answers, so the sandbox never waits on the platform);
    the sandbox runs them in order. ``deadline`` is that of the one running.

    A buffered protocol: the socket reads straight into one reusable buffer and
    frames are decoded in place, with no per-read allocation.
    """

    def __init__(self, function: str, on_call: Callable[[Sandbox, Call], None]) -> None:
        self.function = function
        self._on_call = on_call
        self._buf = bytearray(INITIAL_BUFFER)
        self._start = 0  # first unread byte
        self._end = 0  # end of the bytes received
        self._need = 0  # size of the frame waiting for more bytes
        self._transport: asyncio.Transport | None = None
        # (result, timeout_s, hops, effects): hops is the event chain length of the
        # invocation's trigger (-1 when no event triggered it), for loop protection of what
        # it publishes; effects is the engine's holder of what the invocation's calls do
        # (opaque here: the runtime knows nothing of the engine).
        self._queue: collections.deque[tuple[asyncio.Future[Result], float, int, Any]] = (
            collections.deque()
        )
        self.deadline = math.inf  # time.monotonic() by which the running invocation must end
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[Ready] = loop.create_future()
        self.pid: int | None = None
        self.closed = False
        self.kill_reason: str | None = None  # "timeout", "oom", "scale-in", "shutdown", …
        self.served = 0
        self.created_at = time.time()  # epoch s: a cold start's span begins here
        self.ready_at: float | None = None  # when init ended (Ready arrived)
        self.last_used = time.monotonic()
        self.baseline_rss_kb = 0
        self.generation = 0

    # --- asyncio.BufferedProtocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        buf = self._buf
        if len(buf) - self._end < MIN_FREE or len(buf) - self._start < self._need:
            # Compact (a same-size slice copy, allowed while views exist), then grow.
            unread = self._end - self._start
            buf[:unread] = buf[self._start : self._end]
            self._start, self._end = 0, unread
            wanted = max(self._need, unread + MIN_FREE)
            if len(buf) < wanted:
                buf.extend(bytes(wanted - len(buf)))
        return memoryview(buf)[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        self._end += nbytes
        buf, start, end = self._buf, self._start, self._end
        messages = []
        with memoryview(buf) as view:
            while end - start >= 4:
                (size,) = HEADER.unpack_from(buf, start)
                if size > MAX_FRAME:
                    raise ValueError(f"frame of {size} bytes exceeds the {MAX_FRAME}-byte limit")
                if end - start - 4 < size:
                    self._need = size + 4
                    break
                messages.append(decode_from_sandbox(view[start + 4 : start + 4 + size]))
                start += 4 + size
            else:
                self._need = 0
        if start == end:
            start = end = 0
        self._start, self._end = start, end
        for message in messages:
            self._handle(message)

    def _handle(self, message: FromSandbox) -> None:
        if isinstance(message, Result):
            if not self._queue:
                return
            future, _, _, _ = self._queue.popleft()
            if self._queue:
                self._arm(self._queue[0][1])
            else:
                self.deadline = math.inf
            if not future.done():
                future.set_result(message)
        elif isinstance(message, Call):
            self._on_call(self, message)
        elif isinstance(message, Started):
            self.pid = message.pid
            self.baseline_rss_kb = message.rss_kb
            if self.kill_reason is not None:
                self._signal_kill()
        elif isinstance(message, Ready) and not self.ready.done():
            self.ready_at = time.time()
            self.ready.set_result(message)
            if self._queue:  # init is over: the handler's own clock starts now
                self._arm(self._queue[0][1])

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        reason = self.kill_reason or "channel closed"
        if not self.ready.done():
            self.ready.set_exception(SandboxGone(reason))
            self.ready.exception()  # mark retrieved: nobody may be waiting on a dead start
        started = True
        while self._queue:
            future, _, _, _ = self._queue.popleft()
            if not future.done():
                future.set_exception(SandboxGone(reason, started=started))
            started = False

    # --- platform side ------------------------------------------------------------------

    def invoke(
        self, message: Invoke, hops: int = -1, effects: Any = None
    ) -> asyncio.Future[Result]:
        """Send an invocation; it runs once those sent before it have answered."""
        if self.closed or self._transport is None:
            raise SandboxGone(self.kill_reason or "channel closed", started=False)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((future, message.timeout_s, hops, effects))
        if len(self._queue) == 1:
            self._arm(message.timeout_s)
        self._transport.write(frame(message))
        self.served += 1
        return future

    def _arm(self, timeout_s: float) -> None:
        budget = timeout_s if self.ready.done() else timeout_s + INIT_TIMEOUT_S
        self.deadline = time.monotonic() + budget

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
    def running_hops(self) -> int:
        """Hops of the event behind the running invocation, -1 if no event triggered it."""
        return self._queue[0][2] if self._queue else -1

    @property
    def running_effects(self) -> Any:
        """What the running invocation's calls do, held by the engine (None: none running,
        or the init hook is: its calls take effect at once)."""
        if not self._queue or not self.ready.done():
            return None
        return self._queue[0][3]

    @property
    def busy(self) -> bool:
        return bool(self._queue)
