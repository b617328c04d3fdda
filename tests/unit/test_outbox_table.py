"""The SQLite outbox table and the relay's bookkeeping (no broker: a recording publisher)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from squall.storage.nats import OutboxRelay
from squall.storage.protocols import DeleteOutbox, Delivery, PutOutbox
from squall.storage.sqlite.store import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "squall.db")
    yield opened
    await opened.close()


def delivery(n: int) -> Delivery:
    now = time.time()
    return Delivery(
        id=f"d{n}",
        queue="fn:x",
        payload=b"{}",
        invocation_id=f"i{n}",
        enqueued_at=now,
        available_at=now,
    )


class FlakyPublisher:
    """Records what it published; raises on the ids in ``fail_on`` (once each)."""

    def __init__(self, *fail_on: str) -> None:
        self.fail_on = set(fail_on)
        self.published: list[tuple[str, str | None]] = []

    async def publish(self, delivery: Delivery, dedup_key: str | None = None) -> bool:
        if delivery.id in self.fail_on:
            self.fail_on.discard(delivery.id)
            raise ConnectionError("broker went away")
        self.published.append((delivery.id, dedup_key))
        return True


async def test_rows_come_back_in_commit_order_once_each(store: SqliteStore) -> None:
    await store.commit([PutOutbox(delivery(2)), PutOutbox(delivery(1), dedup_key="k")])
    await store.commit([PutOutbox(delivery(3)), PutOutbox(delivery(2))])  # d2 already waits
    rows = await store.pending_outbox(10)
    assert [(r.delivery.id, r.dedup_key) for r in rows] == [("d2", None), ("d1", "k"), ("d3", None)]
    assert rows[0].seq < rows[1].seq < rows[2].seq
    assert [r.delivery.id for r in await store.pending_outbox(10, after=rows[0].seq)] == [
        "d1",
        "d3",
    ]
    await store.commit([DeleteOutbox(["d1", "gone"])])
    assert [r.delivery.id for r in await store.pending_outbox(10)] == ["d2", "d3"]


async def test_a_failed_publish_keeps_that_row_and_the_rest(store: SqliteStore) -> None:
    await store.commit([PutOutbox(delivery(n)) for n in range(5)])
    publisher = FlakyPublisher("d2")
    relay = OutboxRelay(store, publisher, batch=10)
    with pytest.raises(ConnectionError):
        await relay.relay_once()
    assert [r.delivery.id for r in await store.pending_outbox(10)] == ["d2", "d3", "d4"]
    assert await relay.relay_once() == 3
    assert await store.pending_outbox(10) == []
    assert [i for i, _ in publisher.published] == ["d0", "d1", "d2", "d3", "d4"]
    assert relay.published == 5


async def test_the_relay_drains_in_batches(store: SqliteStore) -> None:
    await store.commit([PutOutbox(delivery(n)) for n in range(5)])
    publisher = FlakyPublisher()
    relay = OutboxRelay(store, publisher, batch=2)
    assert [await relay.relay_once() for _ in range(4)] == [2, 2, 1, 0]
    assert [i for i, _ in publisher.published] == [f"d{n}" for n in range(5)]
