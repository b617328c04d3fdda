"""The cluster's store: state in PostgreSQL, functions' deliveries on JetStream, shared by
several nodes (each a BrokeredStore of its own on one schema and one subject prefix)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from brokered_nodes import Opener, brokered_nodes

from squall.model.invocation import InvocationRecord, InvocationStatus
from squall.storage.nats.brokered import BrokeredStore
from squall.storage.nats.queue import QueueSpec
from squall.storage.protocols import Ack, Delivery, Enqueue, PutInvocation, Retry

QUEUE = "fn:work"
ACK_WAIT_S = 1.0



@pytest.fixture
async def nodes() -> AsyncIterator[Opener]:
    async def tuned(store: BrokeredStore) -> None:
        store.ack_wait_s = ACK_WAIT_S
        store.specs = lambda queue: QueueSpec(name=queue, retries=1)

    async with brokered_nodes(tuned) as open_node:
        yield open_node


def delivery(n: int) -> Delivery:
    now = time.time()
    return Delivery(id=f"d{n}", queue=QUEUE, payload=b"{}", invocation_id=f"d{n}",
                    enqueued_at=now, available_at=now)


def record(n: int, status: str) -> InvocationRecord:
    return InvocationRecord(id=f"d{n}", function="work", version="1", trigger="async",
                            status=status, created_at=time.time(), attempt=1)


async def drained(store: BrokeredStore, timeout: float = 5.0) -> bool:
    """The queue empties (an ack reaches the server a moment after it is sent)."""
    deadline = time.monotonic() + timeout
    while await store.depth(QUEUE) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return await store.depth(QUEUE) == 0


async def lease_until(store: BrokeredStore, count: int, timeout: float = 15.0) -> list[Delivery]:
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += await store.lease(QUEUE, count - len(got), 60.0)
        await asyncio.sleep(0.05)
    return got


async def test_work_one_node_commits_is_leased_by_another_and_gone_once_acked(
    nodes: Opener,
) -> None:
    gateway, invoker = await nodes(), await nodes()
    await invoker.declare([QUEUE])
    await gateway.commit([Enqueue(delivery(n)) for n in range(5)])
    await gateway.commit(())  # a barrier: the rows' deletion is committed lazily
    assert await gateway.pending_outbox(10) == []  # published and deleted after commit
    leased = await lease_until(invoker, 5)
    assert sorted(d.id for d in leased) == [f"d{n}" for n in range(5)]
    assert all(d.attempts == 1 for d in leased)
    await invoker.commit([Ack(d.id) for d in leased])
    assert await drained(invoker)


async def test_a_redelivery_whose_record_is_final_is_only_acked(nodes: Opener) -> None:
    first, second = await nodes(), await nodes()
    await first.commit([Enqueue(delivery(1))])
    assert len(await lease_until(first, 1)) == 1
    # The unit committed (its record is final) but the node died before acking.
    await second.commit([PutInvocation(record(1, InvocationStatus.SUCCEEDED))])
    await first.close()
    await asyncio.sleep(ACK_WAIT_S + 0.5)
    assert await lease_until(second, 1, timeout=3.0) == []
    assert await drained(second)


async def test_a_retry_comes_back_after_its_delay_as_the_next_attempt(nodes: Opener) -> None:
    node = await nodes()
    await node.commit([Enqueue(delivery(1))])
    [first] = await lease_until(node, 1)
    await node.commit([Retry(first.id, time.time() + 0.5)])
    started = time.monotonic()
    [again] = await lease_until(node, 1)
    assert again.attempts == 2 and time.monotonic() - started >= 0.4
    assert not again.exhausted


async def test_the_last_attempt_dying_unsettled_comes_back_exhausted(nodes: Opener) -> None:
    node = await nodes()
    await node.commit([Enqueue(delivery(1))])
    [first] = await lease_until(node, 1)
    await node.commit([Retry(first.id, time.time())])
    [last] = await lease_until(node, 1)
    assert last.attempts == 2  # retries=1: the last attempt
    await node.close()  # dies holding it
    survivor = await nodes()
    await asyncio.sleep(ACK_WAIT_S + 0.5)
    [gone] = await lease_until(survivor, 1)
    assert gone.exhausted and gone.attempts == 3


async def test_a_held_delivery_keeps_its_lease_past_the_ack_wait(nodes: Opener) -> None:
    holder, other = await nodes(), await nodes()
    await holder.commit([Enqueue(delivery(1))])
    [held] = await lease_until(holder, 1)
    await asyncio.sleep(ACK_WAIT_S * 3)  # touched every third of the ack wait meanwhile
    assert await lease_until(other, 1, timeout=1.0) == []
    await holder.commit([Ack(held.id)])
    assert await drained(other)
