"""Works off the deliveries of bus, HTTP and queue targets: deliver, then ack, retry or bury.

Each delivery carries its target (as it was when the event matched) in its headers, so a
rule changed or deleted afterwards does not change deliveries already made. A bus target
publishes the event onto its bus under the delivery's id, one hop further: a delivery
repeated after a crash is then dropped as a duplicate there; a queue target sends a message
(on a FIFO queue, deduplicated by the delivery's id for the same reason). Up to MAX_IN_FLIGHT
deliveries per queue run at once; a slow endpoint holds only its own slots.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
import msgspec

from squall.engine.targets import http
from squall.engine.targets.attempt import DELIVERED, Attempt, Backoff, settle
from squall.engine.targets.letters import target_letter
from squall.engine.targets.routing import TARGET_QUEUES
from squall.engine.waiting import wait_woken
from squall.errors import InvalidInput, NotFound, PayloadTooLarge, SquallError
from squall.model.cloudevent import CloudEvent, with_traceparent
from squall.model.targets import BusTarget, HttpTarget, QueueTarget, Target
from squall.observe.tracing import NO_SPAN, Span, Tracing, current_traceparent, use_span
from squall.storage.protocols import Ack, Bury, Delivery, Op, Retry, Store

log = logging.getLogger("squall.targets")

Publish = Callable[[Sequence[CloudEvent], str], Awaitable[Any]]
# queue, JSON body, FIFO group id (the event's source unless the target names one), dedup id
Send = Callable[[str, bytes, str, str], Awaitable[Any]]

MAX_IN_FLIGHT = 64  # per queue
POLL_S = 0.2
SWEEP_S = 1.0  # how often every queue is leased from, due or not
VISIBILITY_S = 120.0  # beyond the longest HTTP timeout (60 s)
SETTLE_WINDOW_S = 0.002

_decode_target = msgspec.json.Decoder(Target).decode


class TargetRunner:
    # Makes a span per delivery attempt when set (the platform's tracing).
    tracing: Tracing | None = None

    def __init__(self, store: Store, publish: Publish, send: Send, backoff: Backoff) -> None:
        self._store = store
        self._publish = publish
        self._send = send
        self._backoff = backoff
        self._client = httpx.AsyncClient(follow_redirects=False)
        self._in_flight = dict.fromkeys(TARGET_QUEUES, 0)
        self._due: dict[str, float] = {}  # queue -> earliest time it has work
        self._tasks: set[asyncio.Task[None]] = set()
        self._wakeup = asyncio.Event()

    @classmethod
    def create(
        cls, store: Store, publish: Publish, send: Send, base_s: float, cap_s: float
    ) -> TargetRunner:
        return cls(store, publish, send, Backoff(base_s, cap_s, random.Random()))

    @property
    def busy(self) -> int:
        return sum(self._in_flight.values())

    def wake(self, queue: str | None = None) -> None:
        if queue is None:
            self._due.clear()
        else:
            self._due.pop(queue, None)
        self._wakeup.set()

    async def run(self) -> None:
        last_sweep = time.monotonic()
        while True:
            self._wakeup.clear()
            if time.monotonic() - last_sweep > SWEEP_S:
                self._due.clear()
                last_sweep = time.monotonic()
            now = time.time()
            for queue in TARGET_QUEUES:
                free = MAX_IN_FLIGHT - self._in_flight[queue]
                if free <= 0 or self._due.get(queue, 0.0) > now:
                    continue
                deliveries = await self._store.lease(queue, free, VISIBILITY_S)
                for delivery in deliveries:
                    self._start(queue, delivery)
                if len(deliveries) < free:
                    self._due[queue] = await self._store.next_due(queue) or math.inf
            # A full queue waits for a delivery to settle, which sets the wakeup.
            waits = [
                due - time.time()
                for queue, due in self._due.items()
                if self._in_flight[queue] < MAX_IN_FLIGHT
            ]
            pause = min([POLL_S, *waits])
            if pause <= 0:
                await asyncio.sleep(0)
                continue
            await wait_woken(self._wakeup, pause)

    async def stop(self) -> None:
        """Cancel deliveries under way (their leases come back at the next start)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()

    def _start(self, queue: str, delivery: Delivery) -> None:
        self._in_flight[queue] += 1
        task = asyncio.create_task(self._run_one(queue, delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_one(self, queue: str, delivery: Delivery) -> None:
        span: Span = NO_SPAN
        if self.tracing is not None:
            span = self.tracing.delivery(delivery.headers, queue)[1] or NO_SPAN
        try:
            with use_span(span, end_on_exit=True):
                ops = await self._attempt(delivery)
            await self._store.commit(ops, within_s=SETTLE_WINDOW_S)
        except asyncio.CancelledError:
            raise
        except Exception:  # stays leased; offered again once the lease runs out
            log.exception("delivery %s to a %s target failed to settle", delivery.id, queue)
            ops = []
        finally:
            self._in_flight[queue] -= 1
        for op in ops:
            if isinstance(op, Retry):
                self._due[queue] = min(self._due.get(queue, math.inf), op.available_at)
        self._wakeup.set()

    async def _attempt(self, delivery: Delivery) -> list[Op]:
        target = _decode_target(delivery.headers["target"])
        if not isinstance(target, BusTarget | HttpTarget | QueueTarget):  # pragma: no cover
            raise TypeError(f"{type(target).__name__} is not delivered by the target runner")
        now = time.time()
        age = now - delivery.enqueued_at
        if age > target.retry.max_event_age_s:  # e.g. the platform was down meanwhile
            error = {
                "type": "EventAgeExceeded",
                "message": f"the event is {age:.0f} s old, past max_event_age_s"
                f"={target.retry.max_event_age_s}: not attempted",
            }
            if not target.dead_letter:
                return [Ack(delivery.id)]
            letter = target_letter(delivery, error, "EventAgeExceeded", now)
            return [Bury(delivery.id, letter)]
        if isinstance(target, HttpTarget):
            attempt = await http.post(self._client, target, delivery)
        elif isinstance(target, QueueTarget):
            attempt = await self._enqueue(target, delivery)
        else:
            attempt = await self._forward(target, delivery)
        if not attempt.ok:
            log.info(
                "delivery %s of rule %s, attempt %d: %s",
                delivery.id,
                delivery.headers.get("rule"),
                delivery.attempts,
                (attempt.error or {}).get("message"),
            )
        return settle(delivery, attempt, target.retry, target.dead_letter, self._backoff, now)

    async def _enqueue(self, target: QueueTarget, delivery: Delivery) -> Attempt:
        group = target.group_id or delivery.headers.get("source", "")[:128] or "default"
        try:
            # The delivery id dedups a FIFO queue's message across retries of this delivery.
            await self._send(target.queue, delivery.payload, group, delivery.id)
        except (NotFound, InvalidInput, PayloadTooLarge) as exc:  # no retry changes these
            return Attempt(ok=False, error=exc.to_dict())
        except SquallError as exc:
            return Attempt(ok=False, retryable=True, error=exc.to_dict())
        return DELIVERED

    async def _forward(self, target: BusTarget, delivery: Delivery) -> Attempt:
        event = CloudEvent.from_json_dict(msgspec.json.decode(delivery.payload))
        forwarded = msgspec.structs.replace(event, id=delivery.id).with_hops(event.hops + 1)
        traceparent = current_traceparent()
        if traceparent is not None and event.traceparent:  # the next bus's hop follows this one
            forwarded = with_traceparent(forwarded, traceparent)
        try:
            await self._publish([forwarded], target.bus)
        except NotFound as exc:  # the bus is gone: no retry brings it back
            return Attempt(ok=False, error=exc.to_dict())
        except SquallError as exc:
            return Attempt(ok=False, retryable=True, error=exc.to_dict())
        return DELIVERED
