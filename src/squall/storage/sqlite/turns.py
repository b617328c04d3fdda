"""One process at a time where several share a server-backed store.

The embedded store's writer is the only one (the data dir lock), so a turn is always
granted. On PostgreSQL, the nodes of a cluster lease deliveries and receive queue messages
from the same tables: each does so holding the queue's lock for its transaction, so no two
hand out the same row (or a FIFO group's next message before its head is settled). A turn
that is taken answers "nothing now" rather than waiting; the caller polls again.
"""

from __future__ import annotations

import sqlite3
from typing import Protocol, runtime_checkable


@runtime_checkable
class Locking(Protocol):
    def try_lock(self, key: str) -> bool: ...


def take_turn(conn: sqlite3.Connection | Locking, key: str) -> bool:
    if isinstance(conn, Locking):
        return conn.try_lock(key)
    return True
