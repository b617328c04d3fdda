"""The embedded backend's partitioned log: stream records and consumer checkpoints."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec

from squall.model.streams import MAX_RECORD_BYTES, StreamConfig, StreamRecord
from squall.storage.logs import (
    AppendRecord,
    ConsumerPosition,
    DeleteStream,
    LogOp,
    PutCheckpoint,
    PutStream,
    ShardBounds,
    TrimLog,
)
from squall.storage.sqlite.db import Database

LOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS stream_records (
    stream TEXT NOT NULL,
    shard INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    partition_key TEXT NOT NULL,
    data BLOB NOT NULL,
    arrival_time REAL NOT NULL,
    PRIMARY KEY (stream, shard, seq)
);
CREATE INDEX IF NOT EXISTS stream_records_by_time ON stream_records (stream, arrival_time);

-- The last sequence each shard gave out, which outlives the records retention trims.
CREATE TABLE IF NOT EXISTS stream_heads (
    stream TEXT NOT NULL,
    shard INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (stream, shard)
) WITHOUT ROWID;

-- Streams made through the admin API (the app's own come from its code).
CREATE TABLE IF NOT EXISTS streams (
    name TEXT PRIMARY KEY,
    config BLOB NOT NULL
);

CREATE TABLE IF NOT EXISTS stream_checkpoints (
    consumer TEXT NOT NULL,
    stream TEXT NOT NULL,
    shard INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (consumer, stream, shard)
) WITHOUT ROWID;
"""

# After the engine's and the catalog's ops: a unit's appends land before its checkpoints.
# A delete comes after the appends that share its batch (they were accepted before it).
LOG_RANK: dict[type, int] = {
    AppendRecord: 30,
    TrimLog: 31,
    PutCheckpoint: 32,
    DeleteStream: 33,
    PutStream: 34,
}
_decode_stream = msgspec.json.Decoder(StreamConfig).decode

_APPEND = (
    "INSERT INTO stream_records (stream, shard, seq, partition_key, data, arrival_time)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_HEAD = (
    "INSERT INTO stream_heads (stream, shard, seq) VALUES (?, ?, ?)"
    " ON CONFLICT (stream, shard) DO UPDATE SET seq = MAX(stream_heads.seq, excluded.seq)"
)
# A checkpoint never moves back: a late commit of an older batch cannot undo a newer one.
_CHECKPOINT = (
    "INSERT INTO stream_checkpoints (consumer, stream, shard, seq) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (consumer, stream, shard) DO UPDATE"
    " SET seq = MAX(stream_checkpoints.seq, excluded.seq)"
)


def apply_log(conn: sqlite3.Connection, kind: type, ops: Sequence[LogOp]) -> None:
    """Apply a batch of log ops of one ``kind``."""
    if kind is AppendRecord:
        appended = [op for op in ops if isinstance(op, AppendRecord)]
        conn.executemany(
            _APPEND,
            [
                (op.stream, op.shard, op.sequence, op.partition_key, op.data, op.arrival_time)
                for op in appended
            ],
        )
        heads: dict[tuple[str, int], int] = {}
        for append in appended:
            key = (append.stream, append.shard)
            heads[key] = max(heads.get(key, 0), append.sequence)
        conn.executemany(_HEAD, [(stream, shard, seq) for (stream, shard), seq in heads.items()])
    elif kind is PutCheckpoint:
        conn.executemany(
            _CHECKPOINT,
            [
                (op.consumer, op.stream, op.shard, op.sequence)
                for op in ops
                if isinstance(op, PutCheckpoint)
            ],
        )
    else:
        for op in ops:
            if isinstance(op, TrimLog):
                conn.execute(
                    "DELETE FROM stream_records WHERE stream = ? AND arrival_time < ?",
                    (op.stream, op.before),
                )
            elif isinstance(op, PutStream):
                conn.execute(
                    "INSERT INTO streams (name, config) VALUES (?, ?)",
                    (op.stream.name, msgspec.json.encode(op.stream)),
                )
            elif isinstance(op, DeleteStream):
                for table in ("stream_records", "stream_heads", "stream_checkpoints"):
                    conn.execute(f"DELETE FROM {table} WHERE stream = ?", (op.name,))
                conn.execute("DELETE FROM streams WHERE name = ?", (op.name,))


class LogReads:
    """The ``PartitionedLog`` reads, for ``SqliteStore``; it keeps the engine's numbering."""

    _db: Database[Any]
    assigns_sequences = False
    max_record_bytes = MAX_RECORD_BYTES

    async def ensure_logs(self, streams: Sequence[StreamConfig]) -> None:
        """Nothing to make: every stream's records share the ``stream_records`` table."""

    async def append_records(self, records: Sequence[AppendRecord]) -> list[int | None]:
        await self._db.commit(records)
        return [record.sequence for record in records]

    async def list_streams(self) -> list[StreamConfig]:
        rows = self._db.read("SELECT config FROM streams ORDER BY name")
        return [_decode_stream(row[0]) for row in rows]

    async def read_records(
        self, stream: str, shard: int, after: int, limit: int
    ) -> list[StreamRecord]:
        rows = self._db.read(
            "SELECT seq, partition_key, data, arrival_time FROM stream_records"
            " WHERE stream = ? AND shard = ? AND seq > ? ORDER BY seq LIMIT ?",
            (stream, shard, after, limit),
        )
        return [
            StreamRecord(
                shard=shard,
                sequence=seq,
                partition_key=key,
                data=msgspec.Raw(bytes(data)),
                arrival_time=arrival,
            )
            for seq, key, data, arrival in rows
        ]

    async def shard_bounds(self, stream: str, shards: int) -> list[ShardBounds]:
        rows = self._db.read(
            "SELECT shard, COUNT(*), MIN(seq), MAX(seq) FROM stream_records WHERE stream = ?"
            " GROUP BY shard",
            (stream,),
        )
        found = {row[0]: row for row in rows}
        bounds = []
        for shard in range(shards):
            _, count, first, last = found.get(shard, (shard, 0, None, None))
            bounds.append(ShardBounds(shard, int(count), first, last))
        return bounds

    async def heads(self, stream: str) -> dict[int, int]:
        rows = self._db.read("SELECT shard, seq FROM stream_heads WHERE stream = ?", (stream,))
        return {shard: seq for shard, seq in rows}

    async def first_sequence_at(self, stream: str, shard: int, time: float) -> int | None:
        rows = self._db.read(
            "SELECT MIN(seq) FROM stream_records WHERE stream = ? AND shard = ?"
            " AND arrival_time >= ?",
            (stream, shard, time),
        )
        return rows[0][0] if rows else None

    async def checkpoints(self, stream: str) -> dict[tuple[str, int], int]:
        rows = self._db.read(
            "SELECT consumer, shard, seq FROM stream_checkpoints WHERE stream = ?", (stream,)
        )
        return {(consumer, shard): seq for consumer, shard, seq in rows}

    async def consumer_position(
        self, stream: str, shard: int, checkpoint: int
    ) -> ConsumerPosition:
        rows = self._db.read(
            "SELECT COUNT(*), MIN(seq) FROM stream_records WHERE stream = ? AND shard = ?"
            " AND seq > ?",
            (stream, shard, checkpoint),
        )
        behind, first = rows[0]
        oldest = None
        if first is not None:
            found = self._db.read(
                "SELECT arrival_time FROM stream_records WHERE stream = ? AND shard = ?"
                " AND seq = ?",
                (stream, shard, first),
            )
            oldest = found[0][0] if found else None
        return ConsumerPosition(int(behind), oldest)
