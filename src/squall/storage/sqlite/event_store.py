"""The embedded backend's event store: events with a global position (the rowid, given out
while the unit applies, so global order is commit order), stream heads with metadata and a
soft-delete mark, snapshots, and projection checkpoints and generations."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec

from squall.errors import Conflict, WriteConflict
from squall.model.event_store import (
    RecordedEvent,
    Snapshot,
    StreamMetadata,
    StreamState,
    wrong_version,
)
from squall.storage.event_store import (
    AppendEvents,
    EventStoreOp,
    PutProjectionCheckpoint,
    PutSnapshot,
    PutStreamMetadata,
    SoftDeleteStream,
    SwapReadModel,
)
from squall.storage.sqlite.db import Database

EVENT_STORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS es_events (
    position INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    version INTEGER NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    data BLOB NOT NULL,
    metadata BLOB NOT NULL,
    recorded_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS es_events_by_stream ON es_events (stream, version);
CREATE UNIQUE INDEX IF NOT EXISTS es_events_by_id ON es_events (id);

CREATE TABLE IF NOT EXISTS es_streams (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    metadata BLOB NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS es_snapshots (
    stream TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    state BLOB NOT NULL,
    recorded_at REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS es_checkpoints (
    name TEXT NOT NULL,
    generation INTEGER NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (name, generation)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS es_read_models (
    name TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
) WITHOUT ROWID;
"""

EVENT_STORE_RANK: dict[type, int] = {
    PutStreamMetadata: 80,
    AppendEvents: 81,
    SoftDeleteStream: 82,
    PutSnapshot: 83,
    PutProjectionCheckpoint: 84,
    SwapReadModel: 85,
}

_EVENT_COLUMNS = "stream, version, position, id, type, data, metadata, schema_version, recorded_at"
_NO_METADATA = msgspec.json.encode(StreamMetadata())
_decode_metadata = msgspec.json.Decoder(StreamMetadata).decode


def apply_event_store(conn: sqlite3.Connection, kind: type, ops: Sequence[EventStoreOp]) -> None:
    for op in ops:
        if isinstance(op, AppendEvents):
            _append(conn, op)
        elif isinstance(op, PutStreamMetadata):
            conn.execute(
                "INSERT INTO es_streams (name, version, metadata, created_at, updated_at)"
                " VALUES (?, 0, ?, ?, ?) ON CONFLICT (name) DO UPDATE"
                " SET metadata = excluded.metadata, updated_at = excluded.updated_at",
                (op.stream, msgspec.json.encode(op.metadata), op.at, op.at),
            )
        elif isinstance(op, SoftDeleteStream):
            conn.execute(
                "UPDATE es_streams SET deleted = 1, updated_at = ? WHERE name = ?",
                (op.at, op.stream),
            )
        elif isinstance(op, PutSnapshot):
            conn.execute(
                "INSERT INTO es_snapshots (stream, version, state, recorded_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (stream) DO UPDATE"
                " SET version = excluded.version, state = excluded.state,"
                " recorded_at = excluded.recorded_at WHERE excluded.version > es_snapshots.version",
                (op.stream, op.version, op.state, op.recorded_at),
            )
        elif isinstance(op, PutProjectionCheckpoint):
            _checkpoint(conn, op)
        elif isinstance(op, SwapReadModel):
            conn.execute(
                "INSERT OR REPLACE INTO es_read_models (name, generation) VALUES (?, ?)",
                (op.name, op.generation),
            )
            conn.execute(
                "DELETE FROM es_checkpoints WHERE name = ? AND generation = ?",
                (op.name, op.retired),
            )


def _append(conn: sqlite3.Connection, op: AppendEvents) -> None:
    row = conn.execute(
        "SELECT version, deleted FROM es_streams WHERE name = ?", (op.stream,)
    ).fetchone()
    if row is not None and row[1]:
        raise Conflict(
            f"stream {op.stream!r} is deleted: nothing was appended", field="stream",
            stream=op.stream,
        )
    current = 0 if row is None else int(row[0])
    if op.expect is not None and op.expect != current:
        raise wrong_version(op.stream, op.expect, current)
    try:
        conn.executemany(
            "INSERT INTO es_events (stream, version, id, type, schema_version, data, metadata,"
            " recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (op.stream, current + n, e.id, e.type, e.schema_version, e.data, e.metadata,
                 op.recorded_at)
                for n, e in enumerate(op.events, 1)
            ],
        )
    except sqlite3.IntegrityError:  # (stream, version) is ours to give: only an id can clash
        raise Conflict(
            f"stream {op.stream!r}: an event id of this append is already stored; nothing"
            " was appended",
            field="events",
            stream=op.stream,
        ) from None
    conn.execute(
        "INSERT INTO es_streams (name, version, metadata, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE"
        " SET version = excluded.version, updated_at = excluded.updated_at",
        (op.stream, current + len(op.events), _NO_METADATA, op.recorded_at, op.recorded_at),
    )


def _checkpoint(conn: sqlite3.Connection, op: PutProjectionCheckpoint) -> None:
    row = conn.execute(
        "SELECT position FROM es_checkpoints WHERE name = ? AND generation = ?",
        (op.name, op.generation),
    ).fetchone()
    current = 0 if row is None else int(row[0])
    if current != op.expect:
        raise WriteConflict(
            f"projection {op.name!r}: its checkpoint moved to {current} while a batch read"
            f" after {op.expect} was applied; the batch's writes were not committed",
            field="checkpoint",
            projection=op.name,
            expected=op.expect,
            found=current,
        )
    conn.execute(
        "INSERT OR REPLACE INTO es_checkpoints (name, generation, position) VALUES (?, ?, ?)",
        (op.name, op.generation, op.position),
    )


def _event(row: Sequence[Any]) -> RecordedEvent:
    return RecordedEvent(
        stream=row[0],
        version=row[1],
        position=row[2],
        id=row[3],
        type=row[4],
        data=msgspec.Raw(bytes(row[5])),
        metadata=msgspec.Raw(bytes(row[6])),
        schema_version=row[7],
        recorded_at=row[8],
    )


def _state(row: Sequence[Any]) -> StreamState:
    return StreamState(
        stream=row[0],
        version=row[1],
        deleted=bool(row[2]),
        metadata=_decode_metadata(row[3]),
        created_at=row[4],
        updated_at=row[5],
    )


_STATE_COLUMNS = "name, version, deleted, metadata, created_at, updated_at"


class EventStoreReads:
    """The ``EventStore`` reads, for ``SqliteStore``."""

    _db: Database[Any]

    async def es_stream(self, stream: str) -> StreamState | None:
        rows = self._db.read(f"SELECT {_STATE_COLUMNS} FROM es_streams WHERE name = ?", (stream,))
        return _state(rows[0]) if rows else None

    async def es_streams(self, *, prefix: str, after: str, limit: int) -> list[StreamState]:
        rows = self._db.read(
            f"SELECT {_STATE_COLUMNS} FROM es_streams WHERE name > ?"
            " AND substr(name, 1, ?) = ? ORDER BY name LIMIT ?",
            (after, len(prefix), prefix, limit),
        )
        return [_state(row) for row in rows]

    async def es_read_stream(
        self, stream: str, *, start: int, limit: int, backward: bool, now: float
    ) -> list[RecordedEvent]:
        state = await self.es_stream(stream)
        if state is None:
            return []
        low, oldest = 1, 0.0
        meta = state.metadata
        if meta.max_count is not None:
            low = max(low, state.version - meta.max_count + 1)
        if meta.max_age_s is not None:
            oldest = now - meta.max_age_s
        if backward:
            sql = (
                f"SELECT {_EVENT_COLUMNS} FROM es_events WHERE stream = ? AND version <= ?"
                " AND version >= ? AND recorded_at >= ? ORDER BY version DESC LIMIT ?"
            )
        else:
            sql = (
                f"SELECT {_EVENT_COLUMNS} FROM es_events WHERE stream = ? AND version >= ?"
                " AND version >= ? AND recorded_at >= ? ORDER BY version LIMIT ?"
            )
        rows = self._db.read(sql, (stream, start, low, oldest, limit))
        return [_event(row) for row in rows]

    async def es_read_all(
        self, *, after: int, limit: int, prefixes: Sequence[str], until: int | None = None
    ) -> list[RecordedEvent]:
        params: list[Any] = [after]
        where = ""
        if until is not None:
            where = " AND position <= ?"
            params.append(until)
        if prefixes:
            where += " AND (" + " OR ".join("substr(stream, 1, ?) = ?" for _ in prefixes) + ")"
            for prefix in prefixes:
                params += [len(prefix), prefix]
        rows = self._db.read(
            f"SELECT {_EVENT_COLUMNS} FROM es_events WHERE position > ?{where}"
            " ORDER BY position LIMIT ?",
            (*params, limit),
        )
        return [_event(row) for row in rows]

    async def es_head(self) -> int:
        rows = self._db.read("SELECT MAX(position) FROM es_events")
        return int(rows[0][0] or 0)

    async def es_snapshot(self, stream: str) -> Snapshot | None:
        rows = self._db.read(
            "SELECT stream, version, state, recorded_at FROM es_snapshots WHERE stream = ?",
            (stream,),
        )
        if not rows:
            return None
        row = rows[0]
        return Snapshot(
            stream=row[0], version=row[1], state=msgspec.Raw(bytes(row[2])), recorded_at=row[3]
        )

    async def es_checkpoints(self) -> dict[tuple[str, int], int]:
        rows = self._db.read("SELECT name, generation, position FROM es_checkpoints")
        return {(row[0], row[1]): row[2] for row in rows}

    async def es_read_models(self) -> dict[str, int]:
        rows = self._db.read("SELECT name, generation FROM es_read_models")
        return {row[0]: row[1] for row in rows}
