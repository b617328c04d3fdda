"""Run one invocation in a sandbox and describe what happened as a record."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

from squall.engine.deploy.pools import VersionPools
from squall.engine.effects import Effects
from squall.errors import InitError, OutOfMemory, SandboxCrashed, Timeout
from squall.model.config import FunctionConfig
from squall.model.invocation import InvocationRecord, InvocationStatus
from squall.observe.tracing import Context, Span, Tracing, end_invocation_span, traceparent_of
from squall.runtime.launcher import describe_exit
from squall.runtime.pool import Pool
from squall.runtime.protocol import Invoke, Ready, Result
from squall.runtime.sandbox import Sandbox, SandboxGone

EXIT_STATUS_WAIT_S = 0.25  # how long to wait for the zygote to report why a sandbox died


class Invoker:
    # Called with every record ``finish`` fills in (metrics, metering); no-op by default.
    observe: Callable[[InvocationRecord], None] | None = None
    # Makes a span per invocation attempt when set (the platform's tracing).
    tracing: Tracing | None = None

    def __init__(self, pools: VersionPools) -> None:
        self._pools = pools
        self._spans: dict[asyncio.Future[Result], Span] = {}  # sent -> its invocation's span

    def choose(self, function: str, qualifier: str | None = None) -> int:
        """The version that serves one call (an alias may split traffic between two)."""
        return self._pools.choose(function, qualifier)

    def ready_pool(self, function: str, number: int) -> Pool | None:
        return self._pools.ready(function, number)

    async def version_pool(self, function: str, number: int) -> Pool:
        return await self._pools.pool(function, number)

    async def run(
        self,
        config: FunctionConfig,
        record: InvocationRecord,
        payload: bytes,
        *,
        wait_s: float | None,
        kind: str = "json",
        effects: Effects | None = None,
        parent: Context | None = None,
        qualifier: str | None = None,
    ) -> InvocationRecord:
        """Run ``payload`` through ``config``'s function; fill in and return ``record``.

        ``qualifier`` (a version number or an alias) picks the version that serves it; the
        record says which did. What the invocation's calls do to platform state is held in
        ``effects``, for the caller to commit with the invocation's success. Its span is a
        child of ``parent`` (None: of the current span).
        """
        number = self._pools.choose(config.name, qualifier)
        pool = self._pools.ready(config.name, number) or await self._pools.pool(
            config.name, number
        )
        record.version = str(number)
        config = pool.config  # the version's own limits (memory, timeout)
        sandbox, cold = await pool.acquire(wait_s)
        healthy = False
        try:
            sent = self.send(
                sandbox, config, record, payload, kind, effects=effects, parent=parent, cold=cold
            )
            healthy = await self.finish(sandbox, cold, config, record, sent)
        finally:
            pool.release(sandbox, healthy)
        return record

    def send(
        self,
        sandbox: Sandbox,
        config: FunctionConfig,
        record: InvocationRecord,
        payload: bytes,
        kind: str = "json",
        hops: int = -1,
        effects: Effects | None = None,
        parent: Context | None = None,
        cold: bool = False,
    ) -> asyncio.Future[Result]:
        record.start = time.time()
        timeout = float(config.timeout_s)
        tracing = self.tracing
        if tracing is None:
            message = Invoke(record.id, payload, record.attempt, timeout, record.trigger, kind)
            return sandbox.invoke(message, hops, effects)
        span = tracing.start(
            f"invoke {config.name}",
            parent,
            attributes={
                "squall.function": config.name,
                "squall.invocation_id": record.id,
                "squall.trigger": record.trigger,
                "squall.attempt": record.attempt,
            },
            start=sandbox.created_at if cold else record.start,
        )
        traceparent = traceparent_of(span) or ""
        record.trace_id = traceparent[3:35] or None
        message = Invoke(
            record.id, payload, record.attempt, timeout, record.trigger, kind, traceparent
        )
        sent = sandbox.invoke(message, hops, effects)
        self._spans[sent] = span
        return sent

    def abandon(self, sent: asyncio.Future[Result]) -> None:
        """``sent`` will not be finished (its sandbox went away first): end its span."""
        span = self._spans.pop(sent, None)
        if span is not None:
            span.end()

    async def finish(
        self,
        sandbox: Sandbox,
        cold: bool,
        config: FunctionConfig,
        record: InvocationRecord,
        sent: asyncio.Future[Result],
    ) -> bool:
        """Await what ``send`` started; fill in ``record``; say if the sandbox is fit.

        Raises SandboxGone(started=False) when the invocation never ran because the
        sandbox died running the one before it.
        """
        started = record.start or time.time()
        result: Result | None = None
        error: dict[str, Any] | None = None
        try:
            result = await sent
        except SandboxGone as gone:
            if not gone.started:
                self.abandon(sent)
                raise
            error = await self._explain(sandbox, config)
        except BaseException:
            sandbox.kill("cancelled")
            self.abandon(sent)
            raise
        ended = time.time()

        record.memory_mb = config.memory_mb
        record.start = started
        record.end = ended
        record.cold = cold
        ready = _ready(sandbox)
        if cold and ready is not None:
            record.init_ms = round(ready.init_ms, 3)
            record.logs = list(ready.logs)
        if result is not None:
            error = result.error
            record.duration_ms = round(result.duration_ms, 3)
            record.peak_rss_kb = result.peak_rss_kb
            record.logs = record.logs + result.logs if record.logs else result.logs
            record.result = result.value
            record.response = result.response
        else:
            record.duration_ms = round((ended - started) * 1000, 3)
        record.billed_ms = max(1, math.ceil(record.duration_ms))
        record.error = error
        record.status = InvocationStatus.FAILED if error else InvocationStatus.SUCCEEDED
        span = self._spans.pop(sent, None)
        if span is not None and self.tracing is not None:
            end_invocation_span(self.tracing, span, record, result, ready, sandbox)
        if self.observe is not None:
            self.observe(record)
        return result is not None and not result.recycle and not sandbox.closed

    async def _explain(self, sandbox: Sandbox, config: FunctionConfig) -> dict[str, Any]:
        reason = sandbox.kill_reason
        if reason == "timeout":
            return Timeout(
                f"function {config.name!r} did not finish within timeout_s={config.timeout_s};"
                " its sandbox was killed",
                timeout_s=config.timeout_s,
            ).to_dict()
        if reason == "oom":
            return OutOfMemory(
                f"function {config.name!r} went past memory_mb={config.memory_mb};"
                " its sandbox was killed",
                memory_mb=config.memory_mb,
            ).to_dict()
        ready = _ready(sandbox)
        if ready is not None and ready.error is not None:
            return InitError(
                str(ready.error.get("message", "init failed")),
                **{k: v for k, v in ready.error.items() if k not in ("type", "message")},
            ).to_dict()
        status = None
        if sandbox.pid is not None:
            deadline = time.monotonic() + EXIT_STATUS_WAIT_S
            while (status := self._pools.exit_status(sandbox.pid)) is None:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.005)
        return SandboxCrashed(
            f"{describe_exit(status)} while running function {config.name!r}",
            exit_status=status,
        ).to_dict()


def _ready(sandbox: Sandbox) -> Ready | None:
    if sandbox.ready.done() and not sandbox.ready.cancelled() and not sandbox.ready.exception():
        return sandbox.ready.result()
    return None

