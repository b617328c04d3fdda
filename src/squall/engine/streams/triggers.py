"""The stream triggers of an app: a consumer task per (trigger, shard), all in parallel.

Where a consumer starts the first time is fixed then and kept as its checkpoint, so a
restart before any record arrived still starts from that position: ``latest`` is the
shard's head at that moment, ``trim_horizon`` the oldest record kept, ``at_timestamp`` the
first record that arrived at the timestamp or later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from squall.engine.streams.consumer import ConsumerSettings, ShardConsumer
from squall.engine.streams.log import Streams
from squall.model.streams import StreamTrigger
from squall.storage.logs import PutCheckpoint
from squall.storage.protocols import Store


class StreamConsumers:
    def __init__(
        self,
        store: Store,
        streams: Streams,
        triggers: Sequence[StreamTrigger],
        settings: ConsumerSettings,
    ) -> None:
        self._store = store
        self._streams = streams
        self._consumers = [
            ShardConsumer(trigger, shard, store, settings)
            for trigger in triggers
            for shard in range(streams.get(trigger.stream).shards)
        ]
        self._tasks: list[asyncio.Task[None]] = []
        streams.listen(self.notify)

    def notify(self, stream: str, shards: set[int]) -> None:
        for consumer in self._consumers:
            if consumer.trigger.stream == stream and consumer.shard in shards:
                consumer.wake()

    @property
    def busy(self) -> int:
        """Consumers with a batch in flight."""
        return sum(consumer.busy for consumer in self._consumers)

    async def start(self) -> None:
        starts = await self._starting_points()
        self._tasks = [
            asyncio.create_task(consumer.run(start))
            for consumer, start in zip(self._consumers, starts, strict=True)
        ]

    async def _starting_points(self) -> list[int]:
        starts: list[int] = []
        fresh: list[PutCheckpoint] = []
        stored: dict[str, dict[tuple[str, int], int]] = {}
        for consumer in self._consumers:
            trigger, shard = consumer.trigger, consumer.shard
            if trigger.stream not in stored:
                stored[trigger.stream] = await self._store.checkpoints(trigger.stream)
            found = stored[trigger.stream].get((trigger.function, shard))
            if found is None:
                found = await self._initial(trigger, shard)
                fresh.append(PutCheckpoint(trigger.function, trigger.stream, shard, found))
            starts.append(found)
        if fresh:
            await self._store.commit(fresh)
        return starts

    async def _initial(self, trigger: StreamTrigger, shard: int) -> int:
        head = await self._streams.head(trigger.stream, shard)
        if trigger.starting_position == "trim_horizon":
            return 0
        if trigger.starting_position == "at_timestamp":
            assert trigger.starting_timestamp is not None  # validated
            first = await self._store.first_sequence_at(
                trigger.stream, shard, trigger.starting_timestamp
            )
            return head if first is None else first - 1
        return head

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
