"""The delayed publisher on a real store: due events are published once, refused ones buried."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence

import pytest

from squall.engine.schedules.delayed import QUEUE, DelayedPublisher, delayed_publish
from squall.errors import InvalidInput, NotFound, SquallError
from squall.model.cloudevent import CloudEvent
from squall.storage.sqlite.store import SqliteStore


def event(n: int) -> CloudEvent:
    return CloudEvent.create("reminder.due", {"n": n}, source="squall://t/plan")


class Bus:
    """Records what is published; ``refuse`` maps an event's n to the error to raise."""

    def __init__(self, refuse: dict[int, SquallError] | None = None) -> None:
        self.published: list[tuple[str, str, float]] = []
        self.refuse = refuse or {}

    async def __call__(self, events: Sequence[CloudEvent], *, bus: str) -> None:
        for item in events:
            error = self.refuse.get(item.data["n"])
            if error is not None:
                raise error
            self.published.append((item.id, bus, time.time()))


async def run_until(
    publisher: DelayedPublisher, done: Callable[[], Awaitable[object]], timeout: float = 10.0
) -> None:
    """Run ``publisher`` until ``await done()`` is truthy; fail after ``timeout`` seconds."""
    task = asyncio.create_task(publisher.run())
    try:
        deadline = time.monotonic() + timeout
        while not await done():
            assert time.monotonic() < deadline, f"not done within {timeout} s"
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_due_events_are_published_once_and_not_before(store: SqliteStore) -> None:
    now = time.time()
    soon, later = event(1), event(2)
    await store.commit(
        [
            delayed_publish(soon, "default", now + 0.3, now),
            delayed_publish(later, "b", now + 60, now),
        ]
    )
    bus = Bus()
    publisher = DelayedPublisher(store, bus)

    async def published() -> bool:  # and settled: the ack commits after the publish returns
        return bool(bus.published) and await store.depth(QUEUE) == 1

    await run_until(publisher, published)
    assert [(i, b) for i, b, _ in bus.published] == [(soon.id, "default")]
    assert bus.published[0][2] >= now + 0.3
    assert await store.depth(QUEUE) == 1  # the later one waits in the store


async def test_refused_events_are_buried_and_failures_retried(store: SqliteStore) -> None:
    now = time.time()
    gone, flaky = event(1), event(2)
    await store.commit(
        [delayed_publish(gone, "old", now, now), delayed_publish(flaky, "default", now, now)]
    )
    bus = Bus({1: NotFound("bus 'old' does not exist"), 2: SquallError("store busy")})

    async def buried() -> bool:  # the retry of the flaky one is committed with the burial
        return bool(await store.list_dead_letters(function=QUEUE, ids=None, limit=10))

    await run_until(DelayedPublisher(store, bus), buried)
    [letter] = await store.list_dead_letters(function=QUEUE, ids=None, limit=10)
    assert letter.invocation_id == gone.id and letter.error["bus"] == "old"
    assert await store.depth(QUEUE) == 1  # the flaky one, due again after its backoff
    bus.refuse.clear()

    async def delivered() -> bool:  # after its backoff
        return bool(bus.published) and await store.depth(QUEUE) == 0

    await run_until(DelayedPublisher(store, bus), delivered)
    assert [i for i, _, _ in bus.published] == [flaky.id]
    assert await store.depth(QUEUE) == 0


def test_a_time_past_a_year_is_refused() -> None:
    now = time.time()
    with pytest.raises(InvalidInput) as caught:
        delayed_publish(event(1), "default", now + 400 * 86400, now)
    assert caught.value.field == "when"
