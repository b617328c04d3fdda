"""Change triggers: functions fed a table's change records, reusing the stream consumers.

A table's changes are records of its internal stream (``table:<name>``), written by the
store in the unit that changes the item, sharded by key, so each key's changes arrive in
commit order. A consumer per (trigger, shard) batches them, retries, bisects and reports to
``on_failure`` exactly as a stream trigger does. Records the trigger's ``pattern`` does not
match are skipped (the checkpoint moves past them); ``images`` drops what it does not ask for.
The function gets ``{"records": [{"eventName", "table", "keys", "new", "old", "version",
"sequence", "approximate_creation_time"}, ...]}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import msgspec

from squall.engine.router.patterns import Pattern, compile_pattern
from squall.engine.streams.consumer import Also, ConsumerSettings, ShardConsumer
from squall.model.invocation import InvocationRecord
from squall.model.streams import StreamRecord
from squall.model.tables import CHANGE_SHARDS, ChangeTrigger, TableConfig, stream_trigger
from squall.storage.logs import PutCheckpoint
from squall.storage.protocols import Store

_decode_change = msgspec.json.Decoder(dict[str, Any]).decode


class _Batch(msgspec.Struct):
    records: list[StreamRecord]


_decode_batch = msgspec.json.Decoder(_Batch).decode


def as_changes(payload: bytes) -> bytes:
    """A stream consumer's ``{"records": [StreamRecord]}`` as the change records alone."""
    batch = _decode_batch(payload)
    return msgspec.json.encode({"records": [record.data for record in batch.records]})


class ChangeConsumer(ShardConsumer):
    def __init__(
        self, change: ChangeTrigger, table: TableConfig, shard: int, store: Store,
        settings: ConsumerSettings,
    ) -> None:
        super().__init__(stream_trigger(change), shard, store, settings)
        self.change = change
        self._pattern: Pattern | None = (
            None if change.pattern is None else compile_pattern(change.pattern)
        )
        self._images = change.images or table.stream or "keys"
        self._skipped = 0  # the last sequence read, matched or not

    async def _read(self) -> list[StreamRecord]:
        records = await super()._read()
        if records:
            self._skipped = records[-1].sequence
        kept: list[StreamRecord] = []
        for record in records:
            change = _decode_change(record.data)
            if self._pattern is not None and not self._pattern.matches(change):
                continue
            if self._images in ("keys", "old"):
                change.pop("new", None)
            if self._images in ("keys", "new"):
                change.pop("old", None)
            kept.append(
                msgspec.structs.replace(record, data=msgspec.Raw(msgspec.json.encode(change)))
            )
        return kept

    async def _next_batch(self) -> list[StreamRecord]:
        while True:
            batch = await super()._next_batch()
            if batch or self._skipped <= self.checkpoint:
                return batch
            await self._checkpoint(self._skipped)  # nothing matched: move past what was read


class ChangeConsumers:
    def __init__(
        self,
        store: Store,
        tables: Sequence[TableConfig],
        triggers: Sequence[ChangeTrigger],
        settings: ConsumerSettings,
    ) -> None:
        self._store = store
        by_name = {table.name: table for table in tables}
        invoke = settings.invoke

        async def invoke_changes(function: str, payload: bytes, also: Also) -> InvocationRecord:
            return await invoke(function, as_changes(payload), also)

        changed = ConsumerSettings(
            invoke=invoke_changes,
            wake=settings.wake,
            max_payload=settings.max_payload,
            retry_base_s=settings.retry_base_s,
            retry_cap_s=settings.retry_cap_s,
        )
        self._consumers = [
            ChangeConsumer(trigger, by_name[trigger.table], shard, store, changed)
            for trigger in triggers
            for shard in range(CHANGE_SHARDS)
        ]
        self._tasks: list[asyncio.Task[None]] = []

    def notify(self, table: str) -> None:
        """Changes to ``table`` were committed."""
        for consumer in self._consumers:
            if consumer.change.table == table:
                consumer.wake()

    @property
    def busy(self) -> int:
        return sum(consumer.busy for consumer in self._consumers)

    async def start(self) -> None:
        starts: list[int] = []
        fresh: list[PutCheckpoint] = []
        for consumer in self._consumers:
            trigger = consumer.trigger
            stored = await self._store.checkpoints(trigger.stream)
            found = stored.get((trigger.function, consumer.shard))
            if found is None:
                heads = await self._store.heads(trigger.stream)
                found = 0 if trigger.starting_position == "trim_horizon" else heads.get(
                    consumer.shard, 0
                )
                fresh.append(
                    PutCheckpoint(trigger.function, trigger.stream, consumer.shard, found)
                )
            starts.append(found)
        if fresh:
            await self._store.commit(fresh)
        self._tasks = [
            asyncio.create_task(consumer.run(start))
            for consumer, start in zip(self._consumers, starts, strict=True)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
