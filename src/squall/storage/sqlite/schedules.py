"""The embedded backend's schedule states (see ``ScheduleOp``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec

from squall.errors import Conflict
from squall.model.schedules import ScheduleConfig, ScheduleState
from squall.storage.protocols import AdvanceSchedule, DeleteSchedule, PutSchedule, ScheduleOp
from squall.storage.sqlite.db import Database

SCHEDULES_SCHEMA = """
CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    anchor REAL NOT NULL,
    next_at REAL,
    last_at REAL,
    fired INTEGER NOT NULL DEFAULT 0,
    config BLOB
);
"""

_decode_config = msgspec.json.Decoder(ScheduleConfig).decode

SCHEDULE_RANK: dict[type, int] = {DeleteSchedule: 20, PutSchedule: 21, AdvanceSchedule: 22}


def apply_schedules(conn: sqlite3.Connection, kind: type, ops: Sequence[ScheduleOp]) -> None:
    for op in ops:
        if isinstance(op, PutSchedule):
            s = op.state
            conn.execute(
                "INSERT OR REPLACE INTO schedules (name, fingerprint, anchor, next_at, last_at,"
                " fired, config) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    s.name,
                    s.fingerprint,
                    s.anchor,
                    s.next_at,
                    s.last_at,
                    s.fired,
                    None if s.config is None else msgspec.json.encode(s.config),
                ),
            )
        elif isinstance(op, DeleteSchedule):
            conn.execute("DELETE FROM schedules WHERE name = ?", (op.name,))
        elif isinstance(op, AdvanceSchedule):
            cursor = conn.execute(
                "UPDATE schedules SET next_at = ?, last_at = COALESCE(?, last_at),"
                " fired = fired + ? WHERE name = ? AND next_at IS ?",
                (op.next_at, op.last_at, op.fired, op.name, op.expected),
            )
            if cursor.rowcount == 0:
                raise Conflict(
                    f"schedule {op.name!r} has moved past the tick at {op.expected}",
                    schedule=op.name,
                )


class ScheduleReads:
    """The ``ScheduleStore`` reads, for ``SqliteStore``."""

    _db: Database[Any]

    async def list_schedule_states(self) -> list[ScheduleState]:
        rows = self._db.read(
            "SELECT name, fingerprint, anchor, next_at, last_at, fired, config FROM schedules"
            " ORDER BY name"
        )
        return [
            ScheduleState(
                name=n,
                fingerprint=f,
                anchor=a,
                next_at=x,
                last_at=la,
                fired=c,
                config=None if config is None else _decode_config(config),
            )
            for n, f, a, x, la, c, config in rows
        ]
