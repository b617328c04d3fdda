"""The embedded backend's catalog: schemas, archives and archived events (see ``CatalogOp``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec

from squall.model.archive import ArchiveConfig, ArchivedEvent
from squall.model.schemas import SchemaRecord
from squall.storage.protocols import (
    ArchiveEvent,
    CatalogOp,
    DeleteArchive,
    DeleteSchema,
    ExpireArchived,
    PutArchive,
    PutSchema,
)
from squall.storage.sqlite.db import Database

CATALOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS schemas (
    type TEXT NOT NULL,
    version INTEGER NOT NULL,
    schema BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (type, version)
);

CREATE TABLE IF NOT EXISTS archives (
    name TEXT PRIMARY KEY,
    bus TEXT NOT NULL,
    pattern BLOB,
    retention_s INTEGER NOT NULL,
    created_at REAL NOT NULL
);

-- seq is the publish order: events of one unit are inserted in the order they were published.
CREATE TABLE IF NOT EXISTS archived_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    archive TEXT NOT NULL,
    source TEXT NOT NULL,
    event_id TEXT NOT NULL,
    published_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS archived_by_time ON archived_events (archive, published_at);
CREATE INDEX IF NOT EXISTS archived_by_expiry ON archived_events (expires_at);
"""

# Applied after the engine's own ops, in this order.
CATALOG_RANK: dict[type, int] = {
    ArchiveEvent: 8,
    ExpireArchived: 9,
    DeleteSchema: 10,
    PutSchema: 11,
    DeleteArchive: 12,
    PutArchive: 13,
}

_pack = msgspec.json.encode
_unpack_schema = msgspec.json.Decoder(dict[str, Any]).decode
_unpack_pattern = msgspec.json.Decoder(dict[str, Any] | None).decode


def apply_catalog(conn: sqlite3.Connection, kind: type, ops: Sequence[CatalogOp]) -> None:
    """Apply a batch of catalog ops of one ``kind``."""
    if kind is ArchiveEvent:
        conn.executemany(
            "INSERT INTO archived_events (archive, source, event_id, published_at, expires_at,"
            " body) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (op.archive, op.source, op.event_id, op.published_at, op.expires_at, op.body)
                for op in ops
                if isinstance(op, ArchiveEvent)
            ],
        )
    for op in ops:
        if isinstance(op, ExpireArchived):
            conn.execute("DELETE FROM archived_events WHERE expires_at <= ?", (op.now,))
        elif isinstance(op, PutSchema):
            r = op.record
            conn.execute(
                "INSERT INTO schemas (type, version, schema, created_at) VALUES (?, ?, ?, ?)",
                (r.type, r.version, _pack(r.schema), r.created_at),
            )
        elif isinstance(op, DeleteSchema):
            if op.version is None:
                conn.execute("DELETE FROM schemas WHERE type = ?", (op.type,))
            else:
                conn.execute(
                    "DELETE FROM schemas WHERE type = ? AND version = ?", (op.type, op.version)
                )
        elif isinstance(op, PutArchive):
            a = op.archive
            conn.execute(
                "INSERT INTO archives (name, bus, pattern, retention_s, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (a.name, a.bus, _pack(a.pattern), a.retention_s, a.created_at),
            )
        elif isinstance(op, DeleteArchive):
            conn.execute("DELETE FROM archived_events WHERE archive = ?", (op.name,))
            conn.execute("DELETE FROM archives WHERE name = ?", (op.name,))


class CatalogReads:
    """The ``CatalogStore`` reads, for ``SqliteStore``."""

    _db: Database[Any]

    async def list_schemas(self) -> list[SchemaRecord]:
        rows = self._db.read(
            "SELECT type, version, schema, created_at FROM schemas ORDER BY type, version"
        )
        return [
            SchemaRecord(type=t, version=v, schema=_unpack_schema(s), created_at=c)
            for t, v, s, c in rows
        ]

    async def list_archives(self) -> list[ArchiveConfig]:
        rows = self._db.read(
            "SELECT name, bus, pattern, retention_s, created_at FROM archives ORDER BY name"
        )
        return [
            ArchiveConfig(
                name=n, bus=b, pattern=_unpack_pattern(p), retention_s=r, created_at=c
            )
            for n, b, p, r, c in rows
        ]

    async def archive_stats(self, name: str) -> tuple[int, float | None, float | None]:
        rows = self._db.read(
            "SELECT COUNT(*), MIN(published_at), MAX(published_at) FROM archived_events"
            " WHERE archive = ?",
            (name,),
        )
        count, first, last = rows[0]
        return int(count), first, last

    async def archived_events(
        self, archives: Sequence[str], start: float, end: float, after: int, limit: int
    ) -> list[ArchivedEvent]:
        if not archives:
            return []
        marks = ", ".join("?" * len(archives))
        rows = self._db.read(
            "SELECT seq, archive, source, event_id, published_at, body FROM archived_events"
            f" WHERE archive IN ({marks}) AND published_at >= ? AND published_at <= ?"
            " AND seq > ? ORDER BY seq LIMIT ?",
            (*archives, start, end, after, limit),
        )
        return [
            ArchivedEvent(
                seq=seq, archive=a, source=s, event_id=i, published_at=p, body=bytes(b)
            )
            for seq, a, s, i, p, b in rows
        ]
