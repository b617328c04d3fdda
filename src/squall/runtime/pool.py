"""A pool of warm sandboxes per function.

It grows on demand up to ``concurrency``, keeps ``min_instances`` warm, and
closes sandboxes idle longer than ``keep_alive_s`` (scale to zero).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable, Sequence

from squall.errors import InitError, TooManyRequests
from squall.model.config import FunctionConfig
from squall.runtime.launcher import Launcher
from squall.runtime.limits import rss_kb
from squall.runtime.protocol import Call, Fork
from squall.runtime.sandbox import Sandbox, SandboxGone

THROTTLE_TIMES = 10_000  # recent throttle times kept for windowed summaries

SecretSource = Callable[[Sequence[str]], Awaitable[dict[str, str]]]


class Pool:
    version = 0  # the function version whose code the sandboxes run (0: not versioned)

    def __init__(
        self,
        config: FunctionConfig,
        launcher: Launcher,
        on_call: Callable[[Sandbox, Call], None],
        secrets: SecretSource | None = None,
    ) -> None:
        self.config = config
        self._launcher = launcher
        self._on_call = on_call
        self._secrets = secrets
        self._idle: list[Sandbox] = []  # most recently used last: reuse the warmest
        self._waiters: collections.deque[asyncio.Future[Sandbox]] = collections.deque()
        self.size = 0  # live + starting sandboxes
        self.busy: set[Sandbox] = set()
        self.cold_starts = 0
        self.throttles = 0  # acquires refused with TooManyRequests
        self.throttled_at: collections.deque[float] = collections.deque(maxlen=THROTTLE_TIMES)
        self._closed = False
        self._generation = 0  # bumped on reconfigure: older sandboxes retire

    @property
    def has_waiters(self) -> bool:
        return bool(self._waiters)

    @property
    def warm(self) -> int:
        return len(self._idle)

    async def acquire(self, wait_s: float | None) -> tuple[Sandbox, bool]:
        """A sandbox for one invocation and whether it is cold.

        ``wait_s`` bounds the wait for a free slot (None waits for as long as it takes).
        """
        while self._idle:
            sandbox = self._idle.pop()
            if not sandbox.closed:
                self.busy.add(sandbox)
                return sandbox, False
            self.size -= 1
        if self.size < self.config.concurrency:
            return await self._cold(), True
        if self.config.concurrency == 0 and wait_s is not None:
            self.throttles += 1
            self.throttled_at.append(time.time())
            raise TooManyRequests(
                f"function {self.config.name!r} is stopped: its concurrency is 0"
                f" (raise it with PATCH /api/v1/functions/{self.config.name})",
                function=self.config.name,
                concurrency=0,
            )
        waiter: asyncio.Future[Sandbox] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            sandbox = await asyncio.wait_for(waiter, wait_s)
        except TimeoutError:
            self.throttles += 1
            self.throttled_at.append(time.time())
            raise TooManyRequests(
                f"function {self.config.name!r} is at its concurrency limit of"
                f" {self.config.concurrency}; no sandbox freed up within {wait_s:g} s",
                function=self.config.name,
                concurrency=self.config.concurrency,
            ) from None
        finally:
            if not waiter.done():
                waiter.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        if sandbox.closed:  # handed over as a slot for a new sandbox
            return await self._cold(), True
        self.busy.add(sandbox)
        return sandbox, False

    async def _cold(self) -> Sandbox:
        """Start a sandbox in a free slot, counted from the start so others see it taken."""
        self.size += 1
        began = time.time()
        try:
            sandbox = await self._start()
        except BaseException:
            self.size -= 1
            raise
        sandbox.created_at = min(sandbox.created_at, began)  # the cold start began here
        self.busy.add(sandbox)
        return sandbox

    def release(self, sandbox: Sandbox, healthy: bool) -> None:
        self.busy.discard(sandbox)
        if not healthy or sandbox.closed or self._closed or sandbox.generation != self._generation:
            sandbox.kill(sandbox.kill_reason or "recycle")
            self.size -= 1
            self._hand_slot(sandbox)
            return
        sandbox.last_used = time.monotonic()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(sandbox)
                return
        if self.config.keep_alive_s == 0 and self.size > self.config.min_instances:
            sandbox.kill("scale-in")
            self.size -= 1
            return
        self._idle.append(sandbox)

    def _hand_slot(self, dead: Sandbox) -> None:
        """A slot freed by a dead sandbox goes to the first waiter, who starts a new one."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(dead)
                return

    async def _start(self) -> Sandbox:
        loop = asyncio.get_running_loop()
        config = self.config
        values = await self._secret_values(config)
        sock = self._launcher.start(Fork(config.name, config.memory_mb, config.env, values))
        _, sandbox = await loop.create_unix_connection(
            lambda: Sandbox(config.name, self._on_call), sock=sock
        )
        sandbox.generation = self._generation
        self.cold_starts += 1
        return sandbox

    async def _secret_values(self, config: FunctionConfig) -> dict[str, str]:
        """Exactly the secrets the function declares, read when its sandbox starts."""
        if not config.secrets:
            return {}
        values = await self._secrets(config.secrets) if self._secrets is not None else {}
        missing = [name for name in config.secrets if name not in values]
        if missing:
            raise InitError(
                f"function {config.name!r} declares secrets that are not set:"
                f" {', '.join(missing)} (set them with `squall secrets set NAME`)",
                function=config.name,
                missing=missing,
            )
        return values

    async def prewarm(self) -> None:
        """Start sandboxes until ``min_instances`` are live, waiting for their init."""
        while self.size < self.config.min_instances and not self._closed:
            self.size += 1
            try:
                sandbox = await self._start()
                await sandbox.ready
            except (SandboxGone, OSError, InitError):
                self.size -= 1
                return
            if (await sandbox.ready).error is not None:
                sandbox.kill("init failed")
                self.size -= 1
                return
            self.release(sandbox, healthy=True)

    def reap(self, now: float) -> None:
        """Close sandboxes idle past keep-alive, down to ``min_instances``."""
        keep = self.config.keep_alive_s
        survivors: list[Sandbox] = []
        for sandbox in self._idle:
            if sandbox.closed:
                self.size -= 1
            elif now - sandbox.last_used > keep and self.size > self.config.min_instances:
                sandbox.kill("scale-in")
                self.size -= 1
            else:
                survivors.append(sandbox)
        self._idle = survivors

    def enforce_deadlines(self, now: float) -> None:
        """Kill sandboxes whose running invocation is past its deadline (``time.monotonic``)."""
        for sandbox in self.busy:
            if sandbox.deadline < now:
                sandbox.kill("timeout")

    def watch_memory(self) -> None:
        """Kill busy sandboxes whose resident memory grew past ``memory_mb``."""
        limit_kb = self.config.memory_mb * 1024
        for sandbox in list(self.busy):
            if sandbox.pid is None:
                continue
            current = rss_kb(sandbox.pid)
            if current is None:
                continue
            if current - sandbox.baseline_rss_kb > limit_kb:
                sandbox.kill("oom")

    def scale_to_zero(self) -> None:
        for sandbox in self._idle:
            sandbox.kill("scale-in")
            self.size -= 1
        self._idle = []

    def reconfigure(self, config: FunctionConfig) -> None:
        """New config: existing sandboxes were started with the old one, so retire them."""
        self.config = config
        self._generation += 1
        self.scale_to_zero()

    def close(self) -> None:
        self._closed = True
        for sandbox in [*self._idle, *self.busy]:
            sandbox.kill("shutdown")
        self._idle = []
        for waiter in self._waiters:
            waiter.cancel()
