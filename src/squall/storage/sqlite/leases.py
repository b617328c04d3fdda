"""The embedded backend's leases (see ``storage.leases``); portable SQL (an upsert that
returns the token only when it took or renewed the lease)."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from squall.storage.sqlite.db import Database

LEASES_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
"""

_ACQUIRE = (
    "INSERT INTO leases (name, holder, token, expires_at) VALUES (?, ?, 1, ?)"
    " ON CONFLICT (name) DO UPDATE SET"
    " token = CASE WHEN leases.holder = excluded.holder THEN leases.token"
    "  ELSE leases.token + 1 END,"
    " holder = excluded.holder, expires_at = excluded.expires_at"
    " WHERE leases.holder = excluded.holder OR leases.expires_at < ? OR ? = 1"
    " RETURNING token"
)


def _acquire(
    conn: sqlite3.Connection, name: str, holder: str, ttl_s: float, force: bool
) -> int | None:
    now = time.time()
    row = conn.execute(_ACQUIRE, (name, holder, now + ttl_s, now, int(force))).fetchone()
    return None if row is None else int(row[0])


class LeaseReads:
    """The ``LeaseStore`` methods, for ``SqliteStore`` (they write: run in the writer)."""

    _db: Database[Any]

    async def acquire_lease(
        self, name: str, holder: str, ttl_s: float, *, force: bool = False
    ) -> int | None:
        token: int | None = await self._db.call(
            lambda conn: _acquire(conn, name, holder, ttl_s, force)
        )
        return token

    async def release_lease(self, name: str, holder: str) -> None:
        await self._db.call(
            lambda conn: conn.execute(
                "UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ?", (name, holder)
            )
        )
