"""The distributed store's partitioned log: app streams' records on JetStream.

``PostgresStore`` with the ``PartitionedLog`` of app streams moved to ``JetStreamLog``
(``storage.nats.logs``); table change streams (``table:<name>``), every consumer's
checkpoints and the configs of streams made through the API stay in PostgreSQL, so a
checkpoint still commits with its invocation's outcome.

Records are numbered by JetStream, not by the engine (``assigns_sequences``). Every append
goes through the outbox, so what a unit appended is published if and only if it commits:

- in a unit (a put inside an invocation, committed with its record), each ``AppendRecord``
  becomes an outbox row in the unit's transaction; after the commit the committing node
  publishes the rows under the records' ids and deletes them. A node that dies in between
  leaves them to the coordinator's relay, and JetStream drops a second copy by its id;
- a direct put (API, CLI, SDK) is a unit of its own rows, published at once after its
  commit; the put returns the sequences JetStream gave. A batch is all or none (one
  transaction), and a publish that fails after the commit leaves the records to the relay:
  the put still succeeds, with sequences unknown (None), as from inside an invocation.

``TrimLog`` does nothing here (JetStream's ``max_age`` is the stream's retention, set when
the stream is ensured); ``DeleteStream`` deletes the shards' JetStream streams once the
PostgreSQL part (config, checkpoints) committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from squall.model.streams import StreamConfig, StreamRecord
from squall.storage.logs import (
    AppendRecord,
    ConsumerPosition,
    DeleteStream,
    ShardBounds,
    TrimLog,
)
from squall.storage.nats.logs import JetStreamLog, log_name
from squall.storage.postgres.store import PostgresStore
from squall.storage.protocols import DeleteOutbox, Op, PutOutboxRecord

if TYPE_CHECKING:
    from squall.storage.nats.outbox import OutboxRelay

log = logging.getLogger("squall.nats")


class RecordsOnJetStream(PostgresStore):
    assigns_sequences = True
    _log: JetStreamLog
    relay: OutboxRelay

    @property
    def max_record_bytes(self) -> int:  # type: ignore[override]  # the broker's, not a constant
        return min(super().max_record_bytes, self._log.max_record_bytes)

    async def ensure_logs(self, streams: Sequence[StreamConfig]) -> None:
        await self._log.ensure(streams)

    # --- appends ---------------------------------------------------------------------------

    async def append_records(self, records: Sequence[AppendRecord]) -> list[int | None]:
        ops, appended, _ = self.take_records(records)
        await self._db.commit(ops)
        return await self._publish_records(appended)

    def take_records(
        self, ops: Sequence[Op]
    ) -> tuple[list[Op], list[AppendRecord], list[str]]:
        """A unit's ops with its app streams' appends as outbox rows (and their trims
        dropped); the appends to publish and the streams to delete once it commits."""
        kept: list[Op] = []
        appended: list[AppendRecord] = []
        deleted: list[str] = []
        for op in ops:
            if isinstance(op, AppendRecord) and log_name(op.stream):
                if not op.id:
                    raise ValueError(f"a record for stream {op.stream!r} has no id to publish")
                kept.append(PutOutboxRecord(op))
                appended.append(op)
            elif isinstance(op, TrimLog) and log_name(op.stream):
                continue
            else:
                if isinstance(op, DeleteStream) and log_name(op.name):
                    deleted.append(op.name)
                kept.append(op)
        return kept, appended, deleted

    async def after_records(
        self, committed: asyncio.Future[None], appended: list[AppendRecord], deleted: list[str]
    ) -> None:
        """Once the unit committed: delete its streams' records, publish its appends."""
        await committed
        for name in deleted:
            await self._log.delete(name)
        if appended:
            await self._publish_records(appended)

    async def _publish_records(self, appended: list[AppendRecord]) -> list[int | None]:
        """Publish committed record rows and delete them; rows a failure leaves behind are
        the relay's (the unit is committed, so its caller is not told)."""
        if not appended:
            return []
        try:
            sequences = await self._log.publish_records(appended)
        except Exception as exc:
            log.warning("publishing %d records failed (%s): the relay retries", len(appended), exc)
            self.relay.notify()
            return [None] * len(appended)
        self._db.commit_lazy([DeleteOutbox([record.id for record in appended])])
        return sequences

    # --- reads: app streams on JetStream, change streams in PostgreSQL ---------------------

    async def read_records(
        self, stream: str, shard: int, after: int, limit: int
    ) -> list[StreamRecord]:
        if not log_name(stream):
            return await super().read_records(stream, shard, after, limit)
        return await self._log.read(stream, shard, after, limit)

    async def shard_bounds(self, stream: str, shards: int) -> list[ShardBounds]:
        if not log_name(stream):
            return await super().shard_bounds(stream, shards)
        return await self._log.shard_bounds(stream, shards)

    async def heads(self, stream: str) -> dict[int, int]:
        if not log_name(stream):
            return await super().heads(stream)
        return await self._log.heads(stream)

    async def first_sequence_at(self, stream: str, shard: int, time: float) -> int | None:
        if not log_name(stream):
            return await super().first_sequence_at(stream, shard, time)
        return await self._log.first_sequence_at(stream, shard, time)

    async def consumer_position(
        self, stream: str, shard: int, checkpoint: int
    ) -> ConsumerPosition:
        if not log_name(stream):
            return await super().consumer_position(stream, shard, checkpoint)
        return await self._log.consumer_position(stream, shard, checkpoint)
