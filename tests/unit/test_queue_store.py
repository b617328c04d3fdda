"""The store's user queues (SQLite and PostgreSQL): receive and visibility, FIFO groups, dedup
windows, max_receive into a dead-letter queue, redrive, retention and the queue ops."""

from __future__ import annotations

import time

from squall.model.ids import new_id
from squall.model.queues import QueueConfig, QueueMessage
from squall.storage.protocols import DeleteMessages, DropQueue, ExpireMessages, PurgeQueue, PutQueue
from squall.storage.sqlite.store import SqliteStore


def message(
    queue: str = "q",
    body: bytes = b"1",
    *,
    group: str | None = None,
    dedup: str | None = None,
    delay_s: float = 0.0,
    sent_at: float | None = None,
) -> QueueMessage:
    now = time.time() if sent_at is None else sent_at
    return QueueMessage(
        id=new_id(),
        queue=queue,
        body=body,
        group_id=group,
        dedup_id=dedup,
        sent_at=now,
        available_at=now + delay_s,
    )


async def test_a_received_message_hides_until_its_visibility_ends(store: SqliteStore) -> None:
    await store.send_messages([message(body=b'"a"'), message(body=b'"b"')], 300)
    first = await store.receive_messages("q", 1, 0.2, fifo=False)
    assert [m.body for m in first] == [b'"a"'] and first[0].receipt
    [second] = await store.receive_messages("q", 10, 0.2, fifo=False)
    assert second.body == b'"b"'
    assert await store.receive_messages("q", 10, 0.2, fifo=False) == []
    stats = await store.queue_stats("q")
    assert (stats.visible, stats.in_flight) == (0, 2)
    time.sleep(0.25)
    again = await store.receive_messages("q", 10, 5, fifo=False)
    assert sorted(m.receive_count for m in again) == [2, 2]
    assert {m.receipt for m in again}.isdisjoint({first[0].receipt, second.receipt})
    assert not await store.delete_message("q", first[0].receipt or "")  # stale receipt
    assert await store.delete_message("q", again[0].receipt or "")
    assert await store.change_visibility("q", again[1].receipt or "", 0)
    assert len(await store.receive_messages("q", 10, 5, fifo=False)) == 1


async def test_fifo_gives_one_group_at_a_time_in_order(store: SqliteStore) -> None:
    await store.send_messages(
        [message(body=str(n).encode(), group=g) for n in range(3) for g in ("a", "b")], 300
    )
    batch = await store.receive_messages("q", 10, 30, fifo=True)
    assert [(m.group_id, m.body) for m in batch] == [
        ("a", b"0"), ("b", b"0"), ("a", b"1"), ("b", b"1"), ("a", b"2"), ("b", b"2")
    ]
    # Nothing more while the groups are in flight; deleting one group's messages frees it.
    await store.send_messages([message(body=b"3", group="a"), message(body=b"9", group="c")], 300)
    assert [m.body for m in await store.receive_messages("q", 10, 30, fifo=True)] == [b"9"]
    await store.commit(
        [DeleteMessages("q", [m.receipt or "" for m in batch if m.group_id == "a"])]
    )
    assert [m.body for m in await store.receive_messages("q", 10, 30, fifo=True)] == [b"3"]


async def test_a_delayed_fifo_message_holds_back_its_group(store: SqliteStore) -> None:
    await store.send_messages([message(group="g", delay_s=0.2), message(body=b"2", group="g")], 300)
    assert await store.receive_messages("q", 10, 30, fifo=True) == []
    time.sleep(0.25)
    assert len(await store.receive_messages("q", 10, 30, fifo=True)) == 2


async def test_a_dedup_id_is_dropped_within_its_window_only(store: SqliteStore) -> None:
    [first] = await store.send_messages([message(dedup="d", group="g")], 0.2)
    [repeat] = await store.send_messages([message(dedup="d", group="g")], 0.2)
    assert not first.duplicate and repeat.duplicate and repeat.id == first.id
    time.sleep(0.25)
    [later] = await store.send_messages([message(dedup="d", group="g")], 0.2)
    assert not later.duplicate and later.id != first.id
    assert (await store.queue_stats("q")).visible == 2


async def test_past_max_receive_a_message_moves_to_the_dead_letter_queue(
    store: SqliteStore,
) -> None:
    await store.send_messages([message(body=b'"x"')], 300)

    async def receive() -> list[QueueMessage]:
        return await store.receive_messages("q", 1, 0, fifo=False, max_receive=2, dead_letter="dlq")

    for _ in range(2):
        [m] = await receive()
    assert m.receive_count == 2
    assert await receive() == []
    assert (await store.queue_stats("dlq")).visible == 1
    assert await store.redrive_messages("dlq") == {"q": 1}
    [back] = await receive()
    assert back.receive_count == 1 and back.body == b'"x"'
    # Without a dead-letter queue the spent message is dropped.
    await store.receive_messages("q", 1, 0, fifo=False, max_receive=2)
    assert await store.receive_messages("q", 1, 0, fifo=False, max_receive=2) == []
    assert (await store.queue_stats("q")).visible == 0


async def test_queue_ops_expire_purge_and_drop(store: SqliteStore) -> None:
    now = time.time()
    await store.send_messages([message(sent_at=now - 100), message(sent_at=now)], 300)
    await store.commit([ExpireMessages("q", now - 50, now)])
    assert (await store.queue_stats("q")).visible == 1
    await store.commit([PurgeQueue("q")])
    assert (await store.queue_stats("q")).visible == 0

    await store.commit([PutQueue(QueueConfig(name="made", origin="api"))])
    assert [q.name for q in await store.list_queues()] == ["made"]
    await store.send_messages([message("made")], 300)
    await store.commit([DropQueue("made")])
    assert await store.list_queues() == []
    assert (await store.queue_stats("made")).visible == 0


async def test_fifo_receives_can_cap_each_group(store: SqliteStore) -> None:
    await store.send_messages([message(body=str(n).encode(), group="a") for n in range(5)], 300)
    await store.send_messages([message(body=b"9", group="b")], 300)
    batch = await store.receive_messages("q", 10, 30, fifo=True, per_group=2)
    assert [(m.group_id, m.body) for m in batch] == [("a", b"0"), ("a", b"1"), ("b", b"9")]
