"""App streams on the cluster's store, against real PostgreSQL and NATS: records on
JetStream (a stream per shard), numbered there whichever node put them, published through
the outbox only when their unit commits, and read back by sequence."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import msgspec
import pytest
from brokered_nodes import Opener, brokered_nodes
from conftest import poll

from squall.engine.streams.log import Streams
from squall.errors import Conflict
from squall.model.ids import new_id
from squall.model.streams import StreamConfig, shard_for
from squall.storage.logs import AppendRecord, PutCheckpoint, TrimLog
from squall.storage.nats.brokered import BrokeredStore
from squall.storage.protocols import PutOutboxRecord, TakeDeadLetter

ORDERS = StreamConfig(name="orders.eu", shards=2, retention_s=3600)


@pytest.fixture
async def nodes() -> AsyncIterator[Opener]:
    async def with_orders(store: BrokeredStore) -> None:
        await store.ensure_logs([ORDERS])

    async with brokered_nodes(with_orders) as open_node:
        yield open_node


def append(n: int, key: str | None = None, at: float | None = None) -> AppendRecord:
    key = key or f"k{n}"
    return AppendRecord(
        ORDERS.name, shard_for(key, ORDERS.shards), 0, key, msgspec.json.encode({"n": n}),
        time.time() if at is None else at, new_id(),
    )  # fmt: skip


async def everything(store: BrokeredStore, shard: int) -> list[tuple[int, int]]:
    """(sequence, n) of every record of the shard, in the order read."""
    records = await store.read_records(ORDERS.name, shard, 0, 10_000)
    return [(r.sequence, msgspec.json.decode(r.data)["n"]) for r in records]


async def test_two_nodes_putting_at_once_number_each_shard_without_clashes(
    nodes: Opener,
) -> None:
    one, two = await nodes(), await nodes()
    engines = [Streams(store, [ORDERS], []) for store in (one, two)]
    for engine in engines:
        await engine.load()

    async def put_many(engine: Streams, first: int) -> list[tuple[int, int | None, int]]:
        results = []
        for n in range(first, first + 60, 3):  # singles and batches of three
            batch = [(msgspec.json.encode({"n": m}), f"k{m % 7}") for m in range(n, n + 3)]
            puts = await engine.put(ORDERS.name, batch)
            results += [(p.shard, p.sequence, m) for p, m in zip(puts, range(n, n + 3),
                                                                  strict=True)]
        return results

    left, right = await asyncio.gather(put_many(engines[0], 0), put_many(engines[1], 1000))
    acked = left + right
    assert all(seq is not None for _, seq, _ in acked)
    for shard in range(ORDERS.shards):
        stored = await everything(one, shard)
        seqs = [seq for seq, _ in stored]
        assert seqs == list(range(1, len(seqs) + 1))  # unique, increasing, no gaps
        assert sorted(stored) == sorted((seq, n) for s, seq, n in acked if s == shard)
        # A node's own puts keep their order within the shard.
        for engine_puts in (left, right):
            mine = [seq for s, seq, _ in engine_puts if s == shard]
            assert mine == sorted(mine)
    assert sum([len(await everything(two, shard)) for shard in range(2)]) == 120
    await one.commit([]), await two.commit([])  # their lazy deletes land
    assert await one.pending_outbox(10) == []  # published and deleted


async def test_a_put_whose_unit_fails_to_commit_is_never_published(nodes: Opener) -> None:
    store = await nodes()
    failing = [append(1), TakeDeadLetter("no-such-letter")]  # the take fails the unit
    with pytest.raises(Conflict):
        await store.commit(failing)
    await store.commit([append(2, key="k1")])  # a later unit on the same shard lands
    shard = shard_for("k1", ORDERS.shards)
    assert await everything(store, shard) == [(1, 2)]
    await store.commit([])
    assert await store.pending_outbox(10) == []


async def test_a_unit_committed_by_a_node_that_died_is_published_by_the_relay_once(
    nodes: Opener,
) -> None:
    survivor = await nodes()
    # What a node leaves when it dies between commit and publish: the unit's rows.
    old = time.time() - 60
    left = [append(n, key="same", at=old) for n in range(3)]
    await survivor.commit([PutOutboxRecord(record) for record in left])
    shard = left[0].shard
    assert await everything(survivor, shard) == []
    assert await survivor.relay.relay_once() == 3
    assert await everything(survivor, shard) == [(1, 0), (2, 1), (3, 2)]
    # A relay killed after publishing and before deleting sends the rows again: JetStream
    # drops them by the records' ids.
    await survivor.commit([PutOutboxRecord(record) for record in left])
    assert await survivor.relay.relay_once() == 3
    assert await everything(survivor, shard) == [(1, 0), (2, 1), (3, 2)]
    assert await survivor.pending_outbox(10) == []


async def test_a_unit_publishes_its_appends_after_commit_and_keeps_checkpoints_in_postgres(
    nodes: Opener,
) -> None:
    store = await nodes()
    records = [append(n, key="k") for n in range(4)]
    shard = records[0].shard
    await store.commit([*records, PutCheckpoint("reader", ORDERS.name, shard, 2)])
    assert [seq for seq, _ in await everything(store, shard)] == [1, 2, 3, 4]
    assert await store.checkpoints(ORDERS.name) == {("reader", shard): 2}
    await store.commit([])
    assert await store.pending_outbox(10) == []


async def test_reads_bounds_heads_positions_and_timestamps(nodes: Opener) -> None:
    store = await nodes()
    shard = shard_for("k", ORDERS.shards)
    other = 1 - shard
    assert await store.heads(ORDERS.name) == {}
    assert await store.read_records(ORDERS.name, shard, 0, 10) == []
    await store.append_records([append(n, key="k") for n in range(5)])
    await asyncio.sleep(0.05)
    middle = time.time()
    await asyncio.sleep(0.05)
    late = await store.append_records([append(n, key="k") for n in range(5, 40)])
    assert late == list(range(6, 41))

    page = await store.read_records(ORDERS.name, shard, 3, 2)  # by direct gets
    assert [(r.sequence, msgspec.json.decode(r.data)) for r in page] == [
        (4, {"n": 3}), (5, {"n": 4}),
    ]  # fmt: skip
    assert page[0].partition_key == "k" and page[0].arrival_time <= page[1].arrival_time
    batch = await store.read_records(ORDERS.name, shard, 5, 1000)  # through a consumer
    assert [r.sequence for r in batch] == list(range(6, 41))
    assert batch[0].arrival_time >= middle

    assert await store.heads(ORDERS.name) == {shard: 40}
    bounds = await store.shard_bounds(ORDERS.name, ORDERS.shards)
    assert (bounds[shard].records, bounds[shard].first_sequence, bounds[shard].last_sequence) == (
        40, 1, 40,
    )  # fmt: skip
    assert (bounds[other].records, bounds[other].first_sequence) == (0, None)
    assert await store.first_sequence_at(ORDERS.name, shard, middle) == 6
    assert await store.first_sequence_at(ORDERS.name, shard, time.time() + 60) is None
    assert await store.first_sequence_at(ORDERS.name, other, 0) is None
    position = await store.consumer_position(ORDERS.name, shard, 30)
    assert position.behind == 10 and position.oldest_arrival == batch[25].arrival_time
    assert (await store.consumer_position(ORDERS.name, shard, 40)).behind == 0


async def test_deleting_a_stream_drops_its_records_and_a_new_one_starts_afresh(
    nodes: Opener,
) -> None:
    store = await nodes()
    engine = Streams(store, [], [])
    await engine.load()
    await engine.create("made", shards=1, retention_s=60)
    first = await engine.put("made", [(b"1", "k")])
    assert first[0].sequence == 1
    await engine.delete("made")
    await engine.create("made", shards=1, retention_s=60)
    again = await engine.put("made", [(b"2", "k")])
    assert again[0].sequence == 1
    assert [bytes(r.data) for r in await engine.read("made", 0, 0, 10)] == [b"2"]


async def test_retention_is_max_age_and_a_trimmed_shard_keeps_its_head(nodes: Opener) -> None:
    store = await nodes()
    brief = StreamConfig(name="brief", shards=1, retention_s=1)  # below the API's minimum
    await store.ensure_logs([brief])
    record = AppendRecord("brief", 0, 0, "k", b"1", time.time(), new_id())
    assert await store.append_records([record]) == [1]
    await store.commit([TrimLog("brief", time.time() + 3600)])  # a no-op: max_age trims

    async def trimmed() -> bool:
        return await store.read_records("brief", 0, 0, 10) == []

    assert await poll(trimmed, timeout=10)
    assert await store.heads("brief") == {0: 1}  # the shard's head outlives its records
    [bounds] = await store.shard_bounds("brief", 1)
    assert (bounds.records, bounds.first_sequence, bounds.last_sequence) == (0, None, None)
    again = AppendRecord("brief", 0, 0, "k", b"2", time.time(), new_id())
    assert await store.append_records([again]) == [2]
