"""Events published at a time (``ctx.publish_at``): a delayed delivery that publishes when due.

The event is made when ``publish_at`` is called (its id, source and hops fixed then) and kept
as a delivery on ``delayed:publish``, available at the time asked for, so it survives
restarts like any queued work. When due it is published onto its bus; a repeat after a crash
is dropped by the bus's dedup on the event id. A publish the bus refuses for good (the bus is
gone, the schema rejects the data) becomes a dead letter under ``delayed:publish``; anything
else is retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from squall.engine.retry import backoff_delay
from squall.engine.waiting import wait_woken
from squall.errors import InvalidInput, NotFound, SquallError
from squall.model.cloudevent import CloudEvent
from squall.model.ids import new_id
from squall.model.invocation import DeadLetter
from squall.storage.protocols import Ack, Bury, Delivery, Enqueue, Op, Retry, Store

log = logging.getLogger("squall.delayed")

QUEUE = "delayed:publish"
MAX_AHEAD_S = 366 * 86400
BATCH = 64
VISIBILITY_S = 60.0
POLL_S = 1.0
RETRY_BASE_S = 1.0
RETRY_CAP_S = 60.0

Publish = Callable[..., Awaitable[Any]]


def delayed_publish(event: CloudEvent, bus: str, when: float, now: float) -> Enqueue:
    """The op that publishes ``event`` onto ``bus`` at ``when`` (epoch s)."""
    if not math.isfinite(when) or when > now + MAX_AHEAD_S:
        raise InvalidInput(
            f"when={when!r} must be a time within {MAX_AHEAD_S // 86400} days from now",
            field="when",
        )
    return Enqueue(
        Delivery(
            id=new_id(),
            queue=QUEUE,
            payload=event.to_json(),
            invocation_id=event.id,
            enqueued_at=now,
            available_at=max(when, now),
            headers={"bus": bus},
        ),
        dedup_key=f"{event.source}|{event.id}",
    )


def when_of(args: dict[str, Any]) -> float:
    """``publish_at``'s time, as the sandbox sent it."""
    when = args.get("when")
    if isinstance(when, bool) or not isinstance(when, int | float):
        raise InvalidInput(f"when={when!r} must be a time (epoch seconds)", field="when")
    return float(when)


def start_at(at: float, now: float) -> float:
    """A delayed invocation's start (``ctx.invoke(..., at=)``): within a year, not before now."""
    if not math.isfinite(at) or at > now + MAX_AHEAD_S:
        raise InvalidInput(
            f"at={at!r} must be a time within {MAX_AHEAD_S // 86400} days from now", field="at"
        )
    return max(at, now)


class DelayedPublisher:
    def __init__(self, store: Store, publish: Publish) -> None:
        self._store = store
        self._publish = publish
        self._rng = random.Random()
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        while True:
            self._wakeup.clear()
            try:
                deliveries = await self._store.lease(QUEUE, BATCH, VISIBILITY_S)
                if deliveries:
                    await self._store.commit(await self._publish_all(deliveries))
                    continue
            except Exception:  # leased ones come back once their lease runs out
                log.exception("publishing delayed events failed")
            due = await self._store.next_due(QUEUE)
            pause = POLL_S if due is None else min(POLL_S, due - time.time())
            if pause > 0:
                await wait_woken(self._wakeup, pause)

    async def _publish_all(self, deliveries: Sequence[Delivery]) -> list[Op]:
        ops: list[Op] = []
        for delivery in deliveries:
            ops.append(await self._publish_one(delivery))
        return ops

    async def _publish_one(self, delivery: Delivery) -> Op:
        bus = delivery.headers.get("bus", "default")
        try:
            event = CloudEvent.from_json_dict(msgspec.json.decode(delivery.payload))
            await self._publish([event], bus=bus)
        except (NotFound, InvalidInput) as exc:  # no retry makes the bus take it
            log.warning("delayed event %s for bus %s is refused: %s", delivery.id, bus, exc)
            return Bury(delivery.id, self._letter(delivery, exc.to_dict()))
        except SquallError as exc:
            delay = backoff_delay(delivery.attempts, RETRY_BASE_S, RETRY_CAP_S, self._rng)
            log.warning("delayed event %s: %s; retrying in %.1f s", delivery.id, exc, delay)
            return Retry(delivery.id, time.time() + delay)
        return Ack(delivery.id)

    def _letter(self, delivery: Delivery, error: dict[str, Any]) -> DeadLetter:
        return DeadLetter(
            id=delivery.id,
            function=QUEUE,
            invocation_id=delivery.invocation_id,
            payload=delivery.payload,
            error={**error, "condition": "Refused", "bus": delivery.headers.get("bus", "")},
            attempts=delivery.attempts,
            enqueued_at=delivery.enqueued_at,
            failed_at=time.time(),
        )
