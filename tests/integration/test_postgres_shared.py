"""Several processes on one PostgreSQL schema (a cluster's nodes) never hand out the same
delivery or queue message twice, and keep a FIFO group's order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from backends import drop, new_schema_url

from squall.model.queues import QueueMessage
from squall.storage.postgres.store import PostgresStore
from squall.storage.protocols import Delivery, Enqueue

COUNT = 300


@pytest.fixture
async def two_stores() -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    url = new_schema_url()
    first = await PostgresStore.connect(url, shared=True)
    second = await PostgresStore.connect(url, shared=True)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()
        drop(url)


async def drain(
    store: PostgresStore, take: Callable[[PostgresStore], Awaitable[list[str]]]
) -> list[str]:
    got: list[str] = []
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < 1.0:
        batch = await take(store)
        if batch:
            got += batch
            idle_since = time.monotonic()
        else:
            await asyncio.sleep(0.005)
    return got


async def test_two_stores_lease_each_delivery_once(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = two_stores
    now = time.time()
    await first.commit([
        Enqueue(Delivery(id=f"d{i}", queue="wf:steps", payload=b"{}", invocation_id=f"d{i}",
                         enqueued_at=now, available_at=now))
        for i in range(COUNT)
    ])

    async def take(store: PostgresStore) -> list[str]:
        return [d.id for d in await store.lease("wf:steps", 7, 60.0)]

    one, two = await asyncio.gather(drain(first, take), drain(second, take))
    assert one and two, "both stores should have leased some"
    assert sorted(one + two) == sorted(f"d{i}" for i in range(COUNT))  # none twice


async def test_two_stores_receive_each_message_once_and_fifo_in_order(
    two_stores: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = two_stores
    now = time.time()
    messages = [
        QueueMessage(id=f"m{i:03d}", queue="jobs", body=b"{}", group_id=f"g{i % 3}",
                     sent_at=now, available_at=now)
        for i in range(COUNT)
    ]
    await first.send_messages(messages, dedup_window_s=300.0)
    received: list[tuple[float, str, str]] = []

    async def take(store: PostgresStore) -> list[str]:
        batch = await store.receive_messages("jobs", 5, 60.0, fifo=True, per_group=1)
        for message in batch:  # settle in order, as a FIFO consumer does
            received.append((time.monotonic(), message.group_id or "", message.id))
            assert message.receipt is not None
            assert await store.delete_message("jobs", message.receipt)
        return [message.id for message in batch]

    one, two = await asyncio.gather(drain(first, take), drain(second, take))
    assert sorted(one + two) == [m.id for m in messages]  # none twice, none lost
    for group in ("g0", "g1", "g2"):
        order = [mid for _, g, mid in sorted(received) if g == group]
        assert order == sorted(order), group
