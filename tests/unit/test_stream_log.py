"""The partitioned log of the SQLite backend: appends, reads from a position, checkpoints,
retention trims, all as ops in units of work."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from squall.model.streams import StreamConfig
from squall.storage.logs import (
    AppendRecord,
    DeleteStream,
    PutCheckpoint,
    PutStream,
    ShardBounds,
    TrimLog,
)
from squall.storage.sqlite.store import SqliteStore


def record(shard: int, seq: int, at: float, stream: str = "s") -> AppendRecord:
    return AppendRecord(stream, shard, seq, f"k{seq}", msgspec.json.encode({"n": seq}), at)


async def test_records_are_read_in_sequence_order_from_a_position(store: SqliteStore) -> None:
    await store.commit([record(0, seq, 100.0 + seq) for seq in (1, 2, 3)])
    await store.commit([record(1, 1, 200.0), record(0, 4, 104.0)])
    records = await store.read_records("s", 0, 1, 10)
    assert [r.sequence for r in records] == [2, 3, 4]
    assert msgspec.json.decode(records[0].data) == {"n": 2}
    assert records[0].partition_key == "k2" and records[0].arrival_time == 102.0
    assert [r.sequence for r in await store.read_records("s", 0, 0, 2)] == [1, 2]
    assert await store.read_records("other", 0, 0, 10) == []
    assert await store.shard_bounds("s", 3) == [
        ShardBounds(0, 4, 1, 4),
        ShardBounds(1, 1, 1, 1),
        ShardBounds(2, 0, None, None),
    ]
    assert await store.first_sequence_at("s", 0, 102.5) == 3
    assert await store.first_sequence_at("s", 0, 500.0) is None


async def test_checkpoints_never_move_back_and_position_counts_what_is_behind(
    store: SqliteStore,
) -> None:
    await store.commit([record(0, seq, 100.0 + seq) for seq in range(1, 6)])
    await store.commit([PutCheckpoint("fn", "s", 0, 3)])
    await store.commit([PutCheckpoint("fn", "s", 0, 2), PutCheckpoint("other", "s", 0, 1)])
    assert await store.checkpoints("s") == {("fn", 0): 3, ("other", 0): 1}
    position = await store.consumer_position("s", 0, 3)
    assert position.behind == 2 and position.oldest_arrival == 104.0
    caught_up = await store.consumer_position("s", 0, 5)
    assert caught_up.behind == 0 and caught_up.oldest_arrival is None


async def test_trim_deletes_only_records_older_than_retention(store: SqliteStore) -> None:
    await store.commit([record(0, seq, 100.0 + seq) for seq in range(1, 6)])
    await store.commit([record(0, 1, 50.0, stream="kept")])
    await store.commit([TrimLog("s", 103.0)])
    assert [r.sequence for r in await store.read_records("s", 0, 0, 10)] == [3, 4, 5]
    await store.commit([TrimLog("s", 1000.0)])
    assert await store.read_records("s", 0, 0, 10) == []
    assert await store.heads("s") == {0: 5}  # numbering goes on where it was
    assert len(await store.read_records("kept", 0, 0, 10)) == 1


async def test_a_duplicate_sequence_fails_its_unit_alone(store: SqliteStore) -> None:
    await store.commit([record(0, 1, 1.0)])
    with pytest.raises(Exception, match="UNIQUE"):
        await store.commit([record(0, 1, 2.0), record(0, 2, 2.0)])
    assert [r.sequence for r in await store.read_records("s", 0, 0, 10)] == [1]


async def test_a_made_stream_is_listed_until_deleted_with_all_it_holds(
    store: SqliteStore,
) -> None:
    await store.commit([PutStream(StreamConfig(name="s", shards=2, retention_s=600))])
    await store.commit([record(0, 1, 1.0), PutCheckpoint("fn", "s", 0, 1)])
    await store.commit([record(0, 1, 1.0, stream="other")])
    assert [c.name for c in await store.list_streams()] == ["s"]
    # An append accepted before the delete, in the same batch, goes with the stream.
    await asyncio.gather(store.commit([record(0, 2, 2.0)]), store.commit([DeleteStream("s")]))
    assert await store.list_streams() == []
    assert await store.read_records("s", 0, 0, 10) == []
    assert await store.heads("s") == {} and await store.checkpoints("s") == {}
    assert len(await store.read_records("other", 0, 0, 10)) == 1
