"""One SQLite connection in WAL mode, with group commit on the event loop.

Units of work submitted during one loop turn are applied in one transaction and
committed together: one WAL write for many acknowledgements. The ops of all
units in a batch are applied together (one ``executemany`` per kind of op),
since a statement call costs far more than a row. If a unit raises, the batch
is rolled back and re-run with a savepoint per unit, so the failing unit rolls
back alone. Everything runs on the loop's thread: the connection needs no lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

OpT = TypeVar("OpT")
Call = Callable[[sqlite3.Connection], Any]
Unit = tuple[Call | None, Sequence[Any], "asyncio.Future[Any] | None"]
Outcomes = list[tuple["asyncio.Future[Any] | None", Any, BaseException | None]]

LAZY_DELAY_S = 0.05  # how long records nobody waits on may sit before a commit
FULL_BATCH = 512  # this many pending units are committed at once, window or not


class _UnitFailed(Exception):
    """A unit raised inside a merged batch; the batch is re-run unit by unit."""


class Database(Generic[OpT]):
    def __init__(
        self, path: Path, apply_ops: Callable[[sqlite3.Connection, Sequence[OpT]], None]
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process (the OS keeps the WAL);
        # only a power cut can lose the latest commits.
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self._apply_ops = apply_ops
        self._pending: list[Unit] = []
        self._scheduled: asyncio.Handle | asyncio.TimerHandle | None = None
        self._flush_at = 0.0  # loop time of the scheduled flush

    def call(self, fn: Call) -> asyncio.Future[Any]:
        """Run ``fn(conn)`` inside the next group commit; resolve with its result."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((fn, (), future))
        self._schedule(0.0)
        return future

    def commit(self, ops: Sequence[OpT], within_s: float = 0.0) -> asyncio.Future[Any]:
        """Commit ``ops`` atomically, at the latest ``within_s`` from now.

        A short window lets a busy caller share one transaction with the units
        that follow it; the future resolves once the commit is done.
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((None, ops, future))
        self._schedule(within_s)
        return future

    def commit_lazy(self, ops: Sequence[OpT]) -> None:
        self._pending.append((None, ops, None))
        self._schedule(LAZY_DELAY_S)

    def _schedule(self, within_s: float) -> None:
        if len(self._pending) >= FULL_BATCH:
            within_s = 0.0
        loop = asyncio.get_running_loop()
        at = loop.time() + within_s
        if self._scheduled is not None:
            if self._flush_at <= at:
                return
            self._scheduled.cancel()
        self._flush_at = at
        if within_s <= 0:
            self._scheduled = loop.call_soon(self.flush)
        else:
            self._scheduled = loop.call_later(within_s, self.flush)

    def flush(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
        self._scheduled = None
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            outcomes = self._run_merged(pending)
        except _UnitFailed:
            outcomes = self._run_isolated(pending)
        except Exception as exc:  # the commit itself failed: nothing in this batch landed
            outcomes = [(future, None, exc) for _, _, future in pending]
        for future, result, error in outcomes:
            if future is None or future.done():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    def _run_merged(self, pending: list[Unit]) -> Outcomes:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        outcomes: Outcomes = []
        merged: list[OpT] = []
        try:
            for fn, ops, future in pending:
                if fn is None:
                    merged.extend(ops)
                    outcomes.append((future, None, None))
                    continue
                try:
                    outcomes.append((future, fn(conn), None))
                except Exception as exc:
                    raise _UnitFailed from exc
            try:
                self._apply_ops(conn, merged)
            except Exception as exc:
                raise _UnitFailed from exc
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return outcomes

    def _run_isolated(self, pending: list[Unit]) -> Outcomes:
        conn = self.conn
        outcomes: Outcomes = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, ops, future in pending:
                conn.execute("SAVEPOINT unit")
                try:
                    result = fn(conn) if fn is not None else self._apply_ops(conn, ops)
                except Exception as exc:
                    conn.execute("ROLLBACK TO unit")
                    conn.execute("RELEASE unit")
                    outcomes.append((future, None, exc))
                else:
                    conn.execute("RELEASE unit")
                    outcomes.append((future, result, None))
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [(future, None, exc) for _, _, future in pending]
        return outcomes

    def read(self, sql: str, params: Any = ()) -> list[Any]:
        return self.conn.execute(sql, params).fetchall()

    def close(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
        self.flush()
        self.conn.close()
