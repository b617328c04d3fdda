"""Leases async deliveries and runs them: ack, retry later with backoff, or dead-letter."""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec

from squall.engine.destinations import destination_ops, function_of, queue_name
from squall.engine.effects import Effects
from squall.engine.invoker import Invoker
from squall.engine.retry import backoff_delay
from squall.engine.workflows.starter import RunStarter
from squall.errors import InitError, InvalidInput, SandboxCrashed, SquallError, WriteConflict
from squall.model.config import FunctionConfig
from squall.model.invocation import DeadLetter, InvocationRecord, InvocationStatus
from squall.observe.tracing import Context, Span
from squall.runtime.pool import Pool
from squall.runtime.protocol import Result
from squall.runtime.sandbox import Sandbox, SandboxGone
from squall.storage.protocols import (
    Ack,
    AppendLogs,
    Bury,
    Delivery,
    Enqueue,
    Op,
    PutInvocation,
    Retry,
    Store,
)

log = logging.getLogger("squall.dispatcher")

LEASE_BATCH = 512
POLL_S = 0.2  # longest sleep between looks at the queues
SWEEP_S = 1.0  # how often every queue is leased from, due or not
MAX_BACKOFF_S = 5.0  # longest wait before leasing again after the store failed
PREFETCH = 8  # deliveries leased per sandbox slot
MIN_PREFETCH = 64
# Outcomes wait up to this long to share a commit: with a few sandboxes only one
# or two finish per loop turn, and a transaction each would cap the throughput.
SETTLE_WINDOW_S = 0.002
PIPELINE = 2  # invocations queued in one sandbox's channel
LEASE_MARGIN_S = 60.0  # visibility beyond the function's timeout, for waiting on a slot
EXHAUSTED = "the last attempt ended without an outcome: the process running it died"


@dataclass
class RetrySettings:
    base_s: float = 1.0
    cap_s: float = 300.0


class Dispatcher:
    def __init__(
        self,
        store: Store,
        invoker: Invoker,
        functions: Callable[[], dict[str, FunctionConfig]],
        running: dict[str, InvocationRecord],
        retry: RetrySettings,
        starter: RunStarter | None = None,
    ) -> None:
        self._store = store
        self._starter = starter
        self._invoker = invoker
        self._functions = functions
        self._running = running
        self._retry = retry
        self._rng = random.Random()
        self._waiter: asyncio.Future[None] | None = None  # set while run() sleeps
        self._woken = False
        self._inflight: dict[str, int] = {}  # leased, not yet settled
        # Leased deliveries by (function, version that serves them): a worker drains one
        # version's buffer through sandboxes of that version.
        self._buffers: dict[tuple[str, int], collections.deque[Delivery]] = {}
        self._workers: dict[tuple[str, int], int] = {}
        self._low_water: dict[str, int] = {}  # buffer length that triggers the next lease
        self._tasks: set[asyncio.Task[None]] = set()
        self._due: dict[str, float] = {}  # function -> earliest time its queue has work

    def wake(self, function: str | None = None) -> None:
        """New work is due: on ``function``'s queue, or anywhere when None."""
        if function is None:
            self._due.clear()
        else:
            self._due.pop(function, None)
        self._set_woken()

    def _set_woken(self) -> None:
        self._woken = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _sleep(self, timeout: float) -> None:
        """Sleep until woken or ``timeout``; a plain future, so cancellation always lands."""
        if self._woken:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(timeout, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    @property
    def busy(self) -> int:
        """Deliveries leased and not yet settled."""
        return sum(self._inflight.values())

    async def run(self) -> None:
        """Lease until cancelled; a store or broker that fails (a restart, a failover) is
        tried again with backoff, keeping what is leased already."""
        backoff = POLL_S
        while True:
            began = time.monotonic()
            try:
                await self._lease_forever()
            except Exception as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():  # a driver hid our cancellation
                    raise asyncio.CancelledError from exc
                if time.monotonic() - began > MAX_BACKOFF_S * 2:  # it had recovered
                    backoff = POLL_S
                log.warning("leasing failed (%s); retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _lease_forever(self) -> None:
        last_sweep = time.monotonic()
        while True:
            self._woken = False
            now = time.time()
            if time.monotonic() - last_sweep > SWEEP_S:  # work other processes may have added
                self._due.clear()
                last_sweep = time.monotonic()
            saturated = False
            for name, config in self._functions().items():
                if self._due.get(name, 0.0) > now or config.concurrency == 0:
                    continue  # not due, or stopped: its work stays queued
                # Lease ahead of free sandboxes, so a worker finds its next delivery in
                # memory; refill in batches, not per outcome.
                # Outcomes still on their way to the store do not count: the lease that
                # refills the buffer must not wait for them.
                capacity = max(config.concurrency * PREFETCH, MIN_PREFETCH)
                buffered = self._buffered(name)
                budget = capacity - buffered
                self._low_water[name] = capacity // 2
                if buffered > capacity // 2:
                    continue
                batch = min(budget, LEASE_BATCH)
                visibility = config.timeout_s * 2 + LEASE_MARGIN_S
                deliveries = await self._store.lease(queue_name(name), batch, visibility)
                if deliveries:
                    self._accept(config, deliveries)
                if len(deliveries) == batch:
                    saturated = True
                else:
                    self._due[name] = await self._store.next_due(queue_name(name)) or math.inf
            if saturated:
                await asyncio.sleep(0)
                continue
            await self._sleep(POLL_S)

    def _buffered(self, name: str) -> int:
        return sum(len(buffer) for (fn, _), buffer in self._buffers.items() if fn == name)

    def _accept(self, config: FunctionConfig, deliveries: list[Delivery]) -> None:
        name = config.name
        self._inflight[name] = self._inflight.get(name, 0) + len(deliveries)
        if any(delivery.exhausted for delivery in deliveries):
            for delivery in deliveries:
                if delivery.exhausted:
                    self._fail_unstarted(config, delivery, SandboxCrashed(EXHAUSTED))
            deliveries = [delivery for delivery in deliveries if not delivery.exhausted]
        if self._starter is not None and self._starter.starts(name):
            self._start_runs(self._starter, config, deliveries)
            return
        by_version: dict[int, list[Delivery]] = {}
        for delivery in deliveries:
            try:
                number = self._invoker.choose(name, delivery.headers.get("qualifier"))
            except SquallError as exc:  # an alias or version that is gone
                self._fail_unstarted(config, delivery, exc)
                continue
            by_version.setdefault(number, []).append(delivery)
        for number, batch in by_version.items():
            key = (name, number)
            buffer = self._buffers.setdefault(key, collections.deque())
            buffer.extend(batch)
            workers = self._workers.get(key, 0)
            wanted = min(config.concurrency, workers + len(batch))
            for _ in range(wanted - workers):
                task = asyncio.create_task(self._work(name, number, buffer))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            self._workers[key] = max(workers, wanted)

    async def _work(self, name: str, number: int, buffer: collections.deque[Delivery]) -> None:
        """Drain ``buffer`` through one sandbox of version ``number``, kept while no sync
        caller waits for it.

        Up to PIPELINE invocations sit in the sandbox's channel, so it starts the next
        one the moment it answers instead of waiting for the platform to send it.
        """
        sandbox: Sandbox | None = None
        cold = False
        queued: collections.deque[_Sent] = collections.deque()
        pool: Pool | None = None
        try:
            pool = self._invoker.ready_pool(name, number)
            if pool is None:
                try:
                    pool = await self._invoker.version_pool(name, number)
                except SquallError as exc:  # the version's code cannot start
                    while buffer:
                        self._fail_unstarted(self._functions()[name], self._take(name, buffer), exc)
                    return
            while buffer or queued:
                while buffer and len(queued) < PIPELINE:
                    if sandbox is not None and pool.has_waiters:
                        break  # let the waiting sync caller have it once this batch is done
                    config = self._functions()[name]
                    if sandbox is None:
                        try:
                            sandbox, cold = await pool.acquire(None)
                        except (OSError, InitError) as exc:  # no sandbox could start: an attempt
                            if buffer:  # another worker may have drained it meanwhile
                                self._fail_unstarted(config, self._take(name, buffer), exc)
                            continue
                        if not buffer:  # drained by another worker while this one waited
                            break
                    delivery = self._take(name, buffer)
                    record = self._record(config, delivery)
                    record.version = str(number)
                    effects = Effects()
                    headers = delivery.headers
                    parent, delivered = self._trace(headers, name)
                    try:
                        sent = self._invoker.send(
                            sandbox,
                            config,
                            record,
                            delivery.payload,
                            headers.get("kind", "json"),
                            int(headers.get("hops", "-1")),
                            effects,
                            parent,
                            cold,
                        )
                    except SandboxGone:
                        _end(delivered)
                        buffer.appendleft(delivery)
                        pool.release(sandbox, healthy=False)
                        sandbox = None
                        break
                    self._running[record.id] = record
                    queued.append(
                        _Sent(delivery, record, config, sandbox, cold, sent, effects, delivered)
                    )
                    cold = False
                if not queued:
                    continue
                head = queued.popleft()
                try:
                    healthy = await self._invoker.finish(
                        head.sandbox, head.cold, head.config, head.record, head.sent
                    )
                except SandboxGone:  # queued behind an invocation that killed the sandbox
                    head.effects.discarded()
                    buffer.appendleft(head.delivery)
                    healthy = False
                else:
                    self._settle_soon(head.config, head.delivery, head.record, head.effects)
                finally:
                    self._running.pop(head.record.id, None)
                    _end(head.span)
                if head.sandbox is sandbox and sandbox is not None:
                    if not healthy:
                        pool.release(sandbox, healthy=False)
                        sandbox = None
                    elif not queued and pool.has_waiters:
                        pool.release(sandbox, healthy=True)
                        sandbox = None
        finally:
            for entry in queued:
                entry.effects.discarded()
                self._running.pop(entry.record.id, None)
                self._invoker.abandon(entry.sent)
                _end(entry.span)
            if sandbox is not None and pool is not None:
                pool.release(sandbox, not sandbox.closed and not queued)
            self._workers[(name, number)] -= 1

    def _start_runs(
        self, starter: RunStarter, config: FunctionConfig, deliveries: list[Delivery]
    ) -> None:
        """Start a run per delivery (its invocation id is the run id, so a delivery repeated
        after a crash starts nothing new), acked in the same unit; no sandbox runs here."""
        ops: list[Op] = []
        for delivery in deliveries:
            record = self._record(config, delivery)
            try:
                op = starter.start_op(
                    config.name,
                    record.id,
                    _json_input(delivery.payload),
                    delivery.headers.get("traceparent"),
                )
            except SquallError as exc:  # input that cannot start a run: retried, then buried
                record.status = InvocationStatus.FAILED
                record.error = exc.to_dict()
            else:
                ops.append(op)
                record.status = InvocationStatus.SUCCEEDED
                record.result = msgspec.json.encode({"workflow": config.name, "run_id": record.id})
            record.start = record.end = time.time()
            record.duration_ms = 0.0
            ops += self._settle(config, delivery, record)
        committed = self._store.submit(ops, within_s=SETTLE_WINDOW_S)

        def settled(future: asyncio.Future[None]) -> None:
            self._inflight[config.name] -= len(deliveries)
            if future.cancelled():
                return
            error = future.exception()
            if error is not None:  # stays leased; redelivered after visibility
                log.error("starting runs of %s failed", config.name, exc_info=error)
                return
            starter.wake()
            self._set_woken()

        committed.add_done_callback(settled)

    def _trace(self, headers: dict[str, str], function: str) -> tuple[Context | None, Span | None]:
        tracing = self._invoker.tracing
        if tracing is None:
            return None, None
        return tracing.delivery(headers, f"function:{function}")

    def _take(self, name: str, buffer: collections.deque[Delivery]) -> Delivery:
        delivery = buffer.popleft()
        if len(buffer) == self._low_water.get(name, 0):
            self._set_woken()  # time to lease the next batch
        return delivery

    def _fail_unstarted(self, config: FunctionConfig, delivery: Delivery, exc: Exception) -> None:
        record = self._record(config, delivery)
        record.status = InvocationStatus.FAILED
        if isinstance(exc, SquallError):
            record.error = exc.to_dict()
        else:
            record.error = SandboxCrashed(f"could not start a sandbox: {exc}").to_dict()
        if self._invoker.observe is not None:  # counted like the attempts that ran
            self._invoker.observe(record)
        self._settle_soon(config, delivery, record)

    def _record(self, config: FunctionConfig, delivery: Delivery) -> InvocationRecord:
        return InvocationRecord(
            id=delivery.invocation_id,
            function=config.name,
            version="",
            trigger=delivery.headers.get("trigger", "async"),
            status=InvocationStatus.RUNNING,
            attempt=delivery.attempts,
            created_at=delivery.enqueued_at,
            idempotency_key=delivery.headers.get("idempotency_key"),
            request_id=delivery.headers.get("request_id"),
        )

    def _settle_soon(
        self,
        config: FunctionConfig,
        delivery: Delivery,
        record: InvocationRecord,
        effects: Effects | None = None,
    ) -> None:
        """Commit the outcome without waiting: the worker moves on to its next delivery.

        A success commits the invocation's effects in the same unit; a failure drops them.
        When the effects cannot commit (an item they wrote changed meanwhile), the attempt
        is settled again as failed, without them.
        """
        ops = self._settle(config, delivery, record)
        held = effects is not None and bool(effects)
        if effects is not None:
            if record.status == InvocationStatus.SUCCEEDED:
                ops += effects.ops()
            else:
                effects.discarded()
        committed = self._store.submit(ops, within_s=SETTLE_WINDOW_S)

        def settled(future: asyncio.Future[None]) -> None:
            if future.cancelled():
                self._inflight[config.name] -= 1
                return
            error = future.exception()
            if error is not None and held and record.status == InvocationStatus.SUCCEEDED:
                assert effects is not None
                effects.discarded()
                record.status = InvocationStatus.FAILED
                record.error = _effects_failed(error)
                self._settle_soon(config, delivery, record)
                return
            self._inflight[config.name] -= 1
            if error is not None:  # stays leased; redelivered after visibility
                log.error(
                    "settling %s failed",
                    record.id,
                    exc_info=error,
                    extra={"invocation_id": record.id, "function": config.name},
                )
                return
            if effects is not None and record.status == InvocationStatus.SUCCEEDED:
                effects.committed()
            for op in ops:
                if isinstance(op, Enqueue):  # a destination was queued
                    self.wake(function_of(op.delivery.queue))
            self._set_woken()

        committed.add_done_callback(settled)

    def _settle(
        self, config: FunctionConfig, delivery: Delivery, record: InvocationRecord
    ) -> list[Op]:
        ops: list[Op] = []
        if record.logs:
            ops.append(
                AppendLogs(
                    record.id, record.function, record.logs, record.request_id, record.version
                )
            )
        if record.status == InvocationStatus.SUCCEEDED:
            ops += [Ack(delivery.id), PutInvocation(record)]
            ops += destination_ops(config, record, delivery.payload, "Success")
            return ops
        now = time.time()
        delay = backoff_delay(record.attempt, self._retry.base_s, self._retry.cap_s, self._rng)
        age_after_delay = now + delay - delivery.enqueued_at
        if record.attempt <= config.retries and age_after_delay < config.max_event_age_s:
            record.status = InvocationStatus.RETRYING
            self._due[config.name] = min(self._due.get(config.name, math.inf), now + delay)
            return [*ops, Retry(delivery.id, now + delay), PutInvocation(record)]
        condition = "RetriesExhausted" if record.attempt > config.retries else "EventAgeExceeded"
        if config.dead_letter:
            record.status = InvocationStatus.DEAD_LETTERED
            letter = DeadLetter(
                id=delivery.id,
                function=config.name,
                invocation_id=record.id,
                payload=delivery.payload,
                error={**(record.error or {}), "condition": condition, **_rule_of(delivery)},
                attempts=record.attempt,
                enqueued_at=delivery.enqueued_at,
                failed_at=now,
            )
            ops.append(Bury(delivery.id, letter))
        else:
            record.status = InvocationStatus.FAILED
            ops.append(Ack(delivery.id))
        ops.append(PutInvocation(record))
        ops += destination_ops(config, record, delivery.payload, condition)
        return ops

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class _Sent(NamedTuple):
    """An invocation sent to a sandbox, awaiting its result."""

    delivery: Delivery
    record: InvocationRecord
    config: FunctionConfig
    sandbox: Sandbox
    cold: bool
    sent: asyncio.Future[Result]
    effects: Effects
    span: Span | None  # the rule delivery's, around the invocation's


def _end(span: Span | None) -> None:
    if span is not None:
        span.end()


def _effects_failed(error: BaseException) -> dict[str, Any]:
    """The error of an attempt that succeeded but whose effects could not commit."""
    if isinstance(error, SquallError):
        return error.to_dict()
    return WriteConflict(f"the invocation's effects could not be committed: {error}").to_dict()


def _json_input(payload: bytes) -> Any:
    try:
        return msgspec.json.decode(payload)
    except msgspec.DecodeError:
        raise InvalidInput("a workflow's input must be JSON", field="payload") from None


def _rule_of(delivery: Delivery) -> dict[str, str]:
    """For an event's invocation: the rule and target that made it, for its dead letter."""
    headers = delivery.headers
    if "rule" not in headers:
        return {}
    return {"rule": headers["rule"], "target": headers.get("target_id", "")}


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
