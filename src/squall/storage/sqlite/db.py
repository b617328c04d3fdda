"""One SQLite connection in WAL mode, with group commit on the event loop.

Units of work submitted during one loop turn are applied in one transaction,
each inside its own savepoint (so one failing unit rolls back alone), and
committed together: one WAL write for many acknowledgements. Everything runs on
the loop's thread, so the connection needs no lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

Unit = Callable[[sqlite3.Connection], Any]

LAZY_DELAY_S = 0.05  # how long records nobody waits on may sit before a commit


class Database:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process (the OS keeps the WAL);
        # only a power cut can lose the latest commits.
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self._pending: list[tuple[Unit, asyncio.Future[Any] | None]] = []
        self._scheduled: asyncio.Handle | asyncio.TimerHandle | None = None
        self._urgent = False

    def submit(self, unit: Unit) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((unit, future))
        self._schedule(urgent=True)
        return future

    def submit_lazy(self, unit: Unit) -> None:
        self._pending.append((unit, None))
        self._schedule(urgent=False)

    def _schedule(self, urgent: bool) -> None:
        loop = asyncio.get_running_loop()
        if urgent and not self._urgent:
            if self._scheduled is not None:
                self._scheduled.cancel()
            self._scheduled = loop.call_soon(self.flush)
            self._urgent = True
        elif self._scheduled is None:
            self._scheduled = loop.call_later(LAZY_DELAY_S, self.flush)

    def flush(self) -> None:
        self._scheduled = None
        self._urgent = False
        pending, self._pending = self._pending, []
        if not pending:
            return
        conn = self.conn
        outcomes: list[tuple[asyncio.Future[Any] | None, Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for unit, future in pending:
                conn.execute("SAVEPOINT unit")
                try:
                    result = unit(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO unit")
                    conn.execute("RELEASE unit")
                    outcomes.append((future, None, exc))
                else:
                    conn.execute("RELEASE unit")
                    outcomes.append((future, result, None))
            conn.execute("COMMIT")
        except Exception as exc:  # the commit itself failed: nothing in this batch landed
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [(future, None, exc) for _, future in pending]
        for future, result, error in outcomes:
            if future is None or future.done():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    def read(self, sql: str, params: Any = ()) -> list[Any]:
        return self.conn.execute(sql, params).fetchall()

    def close(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
        self.flush()
        self.conn.close()
