"""Leases async deliveries and runs them: ack, retry later with backoff, or dead-letter."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from squall.engine.destinations import destination_ops, function_of, queue_name
from squall.engine.invoker import Invoker
from squall.engine.retry import backoff_delay
from squall.errors import SandboxCrashed
from squall.model.config import FunctionConfig
from squall.model.invocation import DeadLetter, InvocationRecord, InvocationStatus
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
PREFETCH = 8  # deliveries leased per sandbox slot
# Outcomes wait up to this long to share a commit: with a few sandboxes only one
# or two finish per loop turn, and a transaction each would cap the throughput.
SETTLE_WINDOW_S = 0.002
LEASE_MARGIN_S = 60.0  # visibility beyond the function's timeout, for waiting on a slot


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
    ) -> None:
        self._store = store
        self._invoker = invoker
        self._functions = functions
        self._running = running
        self._retry = retry
        self._rng = random.Random()
        self._waiter: asyncio.Future[None] | None = None  # set while run() sleeps
        self._woken = False
        self._inflight: dict[str, int] = {}
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
        return len(self._tasks)

    async def run(self) -> None:
        last_sweep = time.monotonic()
        while True:
            self._woken = False
            now = time.time()
            if time.monotonic() - last_sweep > SWEEP_S:  # work other processes may have added
                self._due.clear()
                last_sweep = time.monotonic()
            saturated = False
            for name, config in self._functions().items():
                if self._due.get(name, 0.0) > now:
                    continue
                # Lease ahead of free sandboxes, so a finished one finds its next delivery
                # already in memory; the rest wait in the pool's queue, inside their lease.
                capacity = config.concurrency * PREFETCH
                inflight = self._inflight.get(name, 0)
                budget = capacity - inflight
                if inflight and budget < capacity // 2:  # refill in batches, not per outcome
                    continue
                batch = min(budget, LEASE_BATCH)
                visibility = config.timeout_s * 2 + LEASE_MARGIN_S
                deliveries = await self._store.lease(queue_name(name), batch, visibility)
                for delivery in deliveries:
                    self._start(config, delivery)
                if len(deliveries) == batch:
                    saturated = True
                else:
                    self._due[name] = await self._store.next_due(queue_name(name)) or math.inf
            if saturated:
                await asyncio.sleep(0)
                continue
            await self._sleep(POLL_S)

    def _start(self, config: FunctionConfig, delivery: Delivery) -> None:
        self._inflight[config.name] = self._inflight.get(config.name, 0) + 1
        task = asyncio.create_task(self._deliver(config, delivery))
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._finished(config.name, t))

    def _finished(self, name: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._inflight[name] -= 1
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery failed unexpectedly", exc_info=task.exception())
        self._set_woken()  # a slot is free: its queue may hold more

    async def _deliver(self, config: FunctionConfig, delivery: Delivery) -> None:
        record = InvocationRecord(
            id=delivery.invocation_id,
            function=config.name,
            version="",
            trigger=delivery.headers.get("trigger", "async"),
            status=InvocationStatus.RUNNING,
            attempt=delivery.attempts,
            created_at=delivery.enqueued_at,
            idempotency_key=delivery.headers.get("idempotency_key"),
        )
        self._running[record.id] = record
        try:
            try:
                await self._invoker.run(config, record, delivery.payload, wait_s=None)
            except Exception as exc:  # could not even start a sandbox: count it as an attempt
                record.status = InvocationStatus.FAILED
                record.error = SandboxCrashed(f"could not start a sandbox: {exc}").to_dict()
            ops = self._settle(config, delivery, record)
            await self._store.commit(ops, within_s=SETTLE_WINDOW_S)
            for op in ops:
                if isinstance(op, Enqueue):  # a destination was queued
                    self.wake(function_of(op.delivery.queue))
        finally:
            self._running.pop(record.id, None)

    def _settle(
        self, config: FunctionConfig, delivery: Delivery, record: InvocationRecord
    ) -> list[Op]:
        ops: list[Op] = []
        if record.logs:
            ops.append(AppendLogs(record.id, record.function, record.logs))
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
        condition = (
            "RetriesExhausted" if record.attempt > config.retries else "EventAgeExceeded"
        )
        if config.dead_letter:
            record.status = InvocationStatus.DEAD_LETTERED
            letter = DeadLetter(
                id=delivery.id,
                function=config.name,
                invocation_id=record.id,
                payload=delivery.payload,
                error={**(record.error or {}), "condition": condition},
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


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
