"""The coordinator's outbox relay on the distributed store, against real PostgreSQL and
NATS: it publishes only rows their own node has had time to publish, so a row is not sent
twice while its node is still at it, and a row a dead node left behind still goes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from nats_service import jetstreams

from squall.storage.nats.brokered import BrokeredStore
from squall.storage.protocols import Delivery, PutOutbox


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[BrokeredStore]:
    async with jetstreams() as js:
        opened = await BrokeredStore.connect_brokered(pg_url, js.config(move_delays=False))
        try:
            yield opened
        finally:
            await opened.broker.delete_streams()
            await opened.close()


def row(name: str, age_s: float) -> PutOutbox:
    at = time.time() - age_s
    delivery = Delivery(
        id=name, queue="fn:noop", payload=b"{}", invocation_id=f"i-{name}",
        enqueued_at=at, available_at=at,
    )  # fmt: skip
    return PutOutbox(delivery)


async def pending(store: BrokeredStore) -> list[str]:
    return [r.delivery.id for r in await store.pending_outbox(10)]


async def test_relay_takes_rows_older_than_the_grace_and_leaves_younger_ones(
    store: BrokeredStore,
) -> None:
    # Rows committed as a node that died before publishing would leave them.
    await store.commit([row("left1", 60.0), row("left2", 10.0), row("fresh", 0.0)])
    assert await store.relay.relay_once() == 2
    assert await pending(store) == ["fresh"]
    assert await store.broker.depth() == 2
    assert await store.relay.relay_once() == 0  # still its node's to publish

    store.relay_after_s = 0.0  # its node is gone: once old enough, the relay sends it
    assert await store.relay.relay_once() == 1
    assert await pending(store) == []
    assert await store.broker.depth() == 3


async def test_rows_behind_a_young_one_wait_for_it(store: BrokeredStore) -> None:
    """Order per subject is commit order: an old row committed after a young one waits."""
    await store.commit([row("first", 60.0), row("young", 0.0), row("after", 60.0)])
    assert await store.relay.relay_once() == 1
    assert await pending(store) == ["young", "after"]
