"""User queues (SQS semantics) on the cluster's store: messages on JetStream, configs and
dedup ids in PostgreSQL, several nodes (each a BrokeredStore of its own on one schema and
one subject prefix) sending, receiving and deleting on the same queues."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from brokered_nodes import Opener, brokered_nodes

from squall.model.ids import new_id
from squall.model.queues import QueueMessage
from squall.storage.nats.brokered import BrokeredStore
from squall.storage.nats.messages import as_delivery
from squall.storage.protocols import (
    DeleteMessages,
    DropQueue,
    ExpireMessages,
    PurgeQueue,
    PutInvocation,
    SendMessages,
    SendViaOutbox,
)

WINDOW_S = 300.0


@pytest.fixture
async def nodes() -> AsyncIterator[Opener]:
    async with brokered_nodes() as open_node:
        yield open_node


def message(
    queue: str,
    body: str,
    *,
    group: str | None = None,
    dedup: str | None = None,
    delay_s: float = 0.0,
) -> QueueMessage:
    now = time.time()
    return QueueMessage(
        id=new_id(),
        queue=queue,
        body=f'"{body}"'.encode(),
        attributes={"n": body},
        group_id=group,
        dedup_id=dedup,
        sent_at=now,
        available_at=now + delay_s,
    )


async def receive_until(
    store: BrokeredStore, queue: str, count: int, timeout: float = 10.0, **options: object
) -> list[QueueMessage]:
    got: list[QueueMessage] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += await store.receive_messages(
            queue, count - len(got), float(options.get("visibility_s", 30.0)),
            fifo=bool(options.get("fifo", False)),
            max_receive=options.get("max_receive"),  # type: ignore[arg-type]
            dead_letter=options.get("dead_letter"),  # type: ignore[arg-type]
            per_group=options.get("per_group"),  # type: ignore[arg-type]
        )
        await asyncio.sleep(0.05)
    return got


async def settled(store: BrokeredStore, queue: str, timeout: float = 5.0, **want: int) -> None:
    """The queue's stats reach ``want`` (an ack lands a moment after it is sent)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = await store.queue_stats(queue)
        if all(getattr(stats, k) == v for k, v in want.items()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{queue}: {stats} is not {want}")
        await asyncio.sleep(0.05)


async def test_a_message_sent_on_one_node_is_received_and_deleted_on_others(
    nodes: Opener,
) -> None:
    gateway, other, third = await nodes(), await nodes(), await nodes()
    sent = [message("jobs", f"m{i}") for i in range(5)]
    outcomes = await gateway.send_messages(sent, WINDOW_S)
    assert [o.id for o in outcomes] == [m.id for m in sent]
    await settled(third, "jobs", visible=5, in_flight=0)

    got = await receive_until(other, "jobs", 5)
    assert sorted(m.id for m in got) == sorted(m.id for m in sent)
    assert all(m.receive_count == 1 and m.receipt for m in got)
    assert {m.attributes["n"] for m in got} == {f"m{i}" for i in range(5)}
    await settled(gateway, "jobs", visible=0, in_flight=5)
    assert await third.receive_messages("jobs", 10, 30.0, fifo=False) == []

    for m in got:  # any node deletes with the receipt another node was given
        assert await third.delete_message("jobs", m.receipt or "")
    assert not await third.delete_message("jobs", got[0].receipt or "")  # gone
    assert not await third.delete_message("jobs", "not.a.receipt")
    assert not await third.delete_message("other", got[1].receipt or "")  # not its queue
    await settled(gateway, "jobs", visible=0, in_flight=0)


async def test_visibility_stale_receipts_and_change_visibility(nodes: Opener) -> None:
    a, b = await nodes(), await nodes()
    [m] = [message("vis", "x")]
    await a.send_messages([m], WINDOW_S)
    [first] = await receive_until(a, "vis", 1, visibility_s=1.0)
    assert await b.receive_messages("vis", 1, 1.0, fifo=False) == []  # invisible
    started = time.monotonic()
    [second] = await receive_until(b, "vis", 1, visibility_s=60.0)
    assert 0.7 < time.monotonic() - started < 5.0
    assert second.id == m.id and second.receive_count == 2
    assert not await a.delete_message("vis", first.receipt or "")  # superseded
    assert not await a.change_visibility("vis", first.receipt or "", 0)

    assert await a.change_visibility("vis", second.receipt or "", 0)  # visible now
    [third] = await receive_until(a, "vis", 1, timeout=3.0, visibility_s=60.0)
    assert third.receive_count == 3
    assert await b.delete_message("vis", third.receipt or "")
    await settled(a, "vis", visible=0, in_flight=0)


async def test_dedup_ids_answer_with_the_first_message_across_nodes(nodes: Opener) -> None:
    a, b = await nodes(), await nodes()
    first = message("orders.fifo", "one", group="g", dedup="k1")
    [sent] = await a.send_messages([first], WINDOW_S)
    again = message("orders.fifo", "one again", group="g", dedup="k1")
    [dup] = await b.send_messages([again], WINDOW_S)
    assert not sent.duplicate and dup.duplicate and dup.id == first.id
    got = await receive_until(b, "orders.fifo", 2, timeout=1.5, fifo=True)
    assert [m.id for m in got] == [first.id]


async def test_fifo_groups_keep_their_order_with_two_nodes_receiving(nodes: Opener) -> None:
    a, b = await nodes(), await nodes()
    groups = ["g1", "g2", "g3"]
    per_group = 12
    for n in range(per_group):
        await a.send_messages(
            [message("q.fifo", f"{g}-{n}", group=g) for g in groups], WINDOW_S
        )
    done: dict[str, list[int]] = {g: [] for g in groups}
    holding: dict[str, int] = {}  # group -> receives holding its messages right now
    overlaps: list[str] = []

    async def work(store: BrokeredStore) -> None:
        deadline = time.monotonic() + 30
        while sum(map(len, done.values())) < len(groups) * per_group:
            assert time.monotonic() < deadline, done
            batch = await store.receive_messages("q.fifo", 10, 30.0, fifo=True, per_group=4)
            mine = {m.group_id or "" for m in batch}
            for g in mine:
                holding[g] = holding.get(g, 0) + 1
                if holding[g] > 1:
                    overlaps.append(g)
            await asyncio.sleep(0.01)  # while we hold them, the other node must wait
            for m in batch:
                done[m.group_id or ""].append(int(m.attributes["n"].split("-")[1]))
            for g in mine:
                holding[g] -= 1
            for m in batch:
                assert await store.delete_message("q.fifo", m.receipt or "")
            await asyncio.sleep(0.02)

    await asyncio.gather(work(a), work(b))
    assert overlaps == []
    assert done == {g: list(range(per_group)) for g in groups}


async def test_past_max_receive_a_message_moves_to_its_dead_letter_queue_and_back(
    nodes: Opener,
) -> None:
    a, b = await nodes(), await nodes()
    m = message("work", "poison")
    await a.send_messages([m], WINDOW_S)
    for count in (1, 2):  # received twice, never deleted (visible again at once)
        [got] = await receive_until(
            b, "work", 1, visibility_s=0.0, max_receive=2, dead_letter="work-dlq"
        )
        assert got.receive_count == count
    assert await receive_until(
        a, "work", 1, timeout=1.0, visibility_s=0.0, max_receive=2, dead_letter="work-dlq"
    ) == []
    await settled(a, "work", visible=0, in_flight=0)
    await settled(a, "work-dlq", visible=1)
    assert await b.redrive_messages("work-dlq") == {"work": 1}
    [back] = await receive_until(a, "work", 1)
    assert back.id == m.id and back.receive_count == 1 and back.body == m.body
    await settled(b, "work-dlq", visible=0, in_flight=0)


async def test_delayed_messages_wait_then_arrive(nodes: Opener) -> None:
    a = await nodes()
    m = message("later", "soon", delay_s=1.0)
    await a.send_messages([m], WINDOW_S)
    stats = await a.queue_stats("later")
    assert stats.delayed == 1 and stats.visible == 0
    assert stats.oldest_sent_at == pytest.approx(m.sent_at)
    assert await a.receive_messages("later", 1, 30.0, fifo=False) == []
    [got] = await receive_until(a, "later", 1, timeout=5.0)
    assert got.id == m.id and time.time() >= m.available_at


async def test_sends_in_a_unit_go_out_only_when_it_commits(nodes: Opener) -> None:
    a, b = await nodes(), await nodes()
    kept = message("unit", "kept")
    await a.commit([SendMessages([kept], WINDOW_S)])
    [got] = await receive_until(b, "unit", 1)
    assert got.id == kept.id

    lost = message("unit", "rolled back")
    bad = PutInvocation(record=None)  # type: ignore[arg-type]  # fails as it applies
    with pytest.raises(Exception):  # noqa: B017 - any failure rolls the unit back
        await a.commit([SendMessages([lost], WINDOW_S), bad])
    assert await receive_until(b, "unit", 1, timeout=1.0) == []

    # A trigger's batch deletes its messages with the unit that records its outcome.
    await a.commit([DeleteMessages("unit", [got.receipt or ""])])
    await settled(b, "unit", visible=0, in_flight=0)


async def test_the_relay_publishes_messages_a_dead_node_committed(nodes: Opener) -> None:
    a, b = await nodes(), await nodes()
    m = message("left", "behind")
    # What a node that died right after committing leaves: the outbox row, unpublished.
    await a._db.commit([SendViaOutbox([m], [as_delivery(m)], WINDOW_S, sent=[])], 0.0)
    assert await receive_until(b, "left", 1, timeout=0.5) == []
    b.relay_after_s = 0.0
    assert await b.relay.relay_once() == 1
    [got] = await receive_until(b, "left", 1)
    assert got.id == m.id
    assert await b.relay.relay_once() == 0


async def test_expiry_purge_and_stats(nodes: Opener) -> None:
    a, b = await nodes(), await nodes()
    old = [message("keep", f"o{i}") for i in range(3)]
    await a.send_messages(old, WINDOW_S)
    cut = time.time()
    new = [message("keep", f"n{i}") for i in range(2)]
    await a.send_messages(new, WINDOW_S)
    await settled(b, "keep", visible=5)
    await b.commit([ExpireMessages("keep", cut, time.time())])
    await settled(a, "keep", visible=2)
    got = await receive_until(a, "keep", 2)
    assert sorted(m.id for m in got) == sorted(m.id for m in new)

    await a.send_messages([message("gone", f"{i}") for i in range(4)], WINDOW_S)
    await settled(b, "gone", visible=4)
    await b.commit([PurgeQueue("gone")])
    await settled(a, "gone", visible=0, in_flight=0, delayed=0)


async def test_a_node_receives_again_after_another_dropped_and_remade_the_queue(
    nodes: Opener,
) -> None:
    a, b = await nodes(), await nodes()
    await a.send_messages([message("again", "before")], WINDOW_S)
    [first] = await receive_until(a, "again", 1)  # a's consumer exists, and a knows it
    assert await a.delete_message("again", first.receipt or "")
    await b.commit([DropQueue("again")])  # b removes the queue's consumers
    remade = message("again", "after")
    await b.send_messages([remade], WINDOW_S)
    [got] = await receive_until(a, "again", 1, timeout=5.0)
    assert got.id == remade.id
