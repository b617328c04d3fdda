"""Table change records numbered under concurrent transactions: two stores (two cluster
nodes) on one PostgreSQL schema writing one table at once never give out one sequence
twice, and each shard's records are numbered 1, 2, 3 … with no gap."""

from __future__ import annotations

import asyncio

import msgspec

from squall.model.streams import shard_for
from squall.model.tables import CHANGE_SHARDS, change_stream
from squall.storage.postgres.store import PostgresStore
from squall.storage.tables import TableWrite

UNITS = 200


def put(key: str, n: int) -> TableWrite:
    return TableWrite(
        table="orders", pk=key, sk=None, action="put", expect=None,
        keys=msgspec.json.encode({"id": key}), item=msgspec.json.encode({"id": key, "n": n}),
        stream="new_and_old",
    )  # fmt: skip


async def test_two_stores_on_one_schema_number_each_shard_once(pg_url: str) -> None:
    one = await PostgresStore.connect(pg_url, shared=True)
    two = await PostgresStore.connect(pg_url, shared=True)
    try:
        keys = [f"k{n}" for n in range(12)]

        async def writes(store: PostgresStore, first: int) -> None:
            # Units of two writes each, one at a time: the two stores' transactions overlap
            # on every shard's head again and again.
            for n in range(first, first + UNITS):
                await store.commit([put(keys[n % 12], n), put(keys[(n + 5) % 12], n)])

        await asyncio.gather(writes(one, 0), writes(two, 1000))
        stream = change_stream("orders")
        total = 0
        for shard in range(CHANGE_SHARDS):
            records = await one.read_records(stream, shard, 0, 10_000)
            seqs = [r.sequence for r in records]
            assert seqs == list(range(1, len(seqs) + 1)), shard
            assert all(shard_for(r.partition_key, CHANGE_SHARDS) == shard for r in records)
            # The sequence inside the change record is the record's own.
            assert [msgspec.json.decode(r.data)["sequence"] for r in records] == seqs
            total += len(records)
            if seqs:
                assert (await two.heads(stream))[shard] == seqs[-1]
        assert total == 2 * UNITS * 2
    finally:
        await one.close()
        await two.close()
