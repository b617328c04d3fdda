"""The embedded store's outbox table (see ``storage.outbox``).

The embedded platform needs no outbox (its work queue is in the same database); the table
lets the relay run against SQLite in tests and in a single-node platform with a broker.
A row's ``kind`` says what its ``delivery`` column holds: a delivery (NULL, as in rows
written before records had rows) or a stream record (``record``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec

from squall.storage.logs import AppendRecord
from squall.storage.outbox import OutboxRow
from squall.storage.protocols import DeleteOutbox, Delivery, OutboxOp, PutOutbox, PutOutboxRecord
from squall.storage.sqlite.db import Database

OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    delivery BLOB NOT NULL,
    dedup_key TEXT,
    kind TEXT
);
"""
OUTBOX_COLUMNS = {"kind": "TEXT"}  # added to tables made before records had rows
RECORD = "record"

# After every other kind: a unit's deliveries are written once its effects are.
OUTBOX_RANK: dict[type, int] = {PutOutbox: 110, PutOutboxRecord: 110, DeleteOutbox: 111}

_pack = msgspec.msgpack.encode
_unpack = msgspec.msgpack.Decoder(Delivery).decode
_unpack_record = msgspec.msgpack.Decoder(AppendRecord).decode
# A row already waiting keeps its place in the order.
_INSERT = "INSERT OR IGNORE INTO outbox (id, delivery, dedup_key, kind) VALUES (?, ?, ?, ?)"


def put_outbox_row(
    conn: sqlite3.Connection, delivery: Delivery, dedup_key: str | None = None
) -> None:
    conn.execute(_INSERT, (delivery.id, _pack(delivery), dedup_key, None))


def apply_outbox(conn: sqlite3.Connection, kind: type, ops: Sequence[OutboxOp]) -> None:
    if kind is PutOutbox or kind is PutOutboxRecord:  # one rank: both come in one group
        rows: list[tuple[str, bytes, str | None, str | None]] = []
        for op in ops:
            if isinstance(op, PutOutbox):
                rows.append((op.delivery.id, _pack(op.delivery), op.dedup_key, None))
            elif isinstance(op, PutOutboxRecord):
                rows.append((op.record.id, _pack(op.record), None, RECORD))
        conn.executemany(_INSERT, rows)
        return
    conn.executemany(
        "DELETE FROM outbox WHERE id = ?",
        [(i,) for op in ops if isinstance(op, DeleteOutbox) for i in op.delivery_ids],
    )


class OutboxReads:
    """The ``OutboxStore`` reads, for ``SqliteStore``."""

    _db: Database[Any]

    async def pending_outbox(self, limit: int, after: int = 0) -> list[OutboxRow]:
        rows = self._db.read(
            "SELECT seq, delivery, dedup_key, kind FROM outbox WHERE seq > ? ORDER BY seq"
            " LIMIT ?",
            (after, limit),
        )
        return [
            OutboxRow(seq, None, record=_unpack_record(blob))
            if kind == RECORD
            else OutboxRow(seq, _unpack(blob), key)
            for seq, blob, key, kind in rows
        ]
