"""SQLite in WAL mode, with group commit on a writer thread.

Units of work submitted while a commit is under way are applied in the next
transaction and committed together: one WAL write for many acknowledgements.
The writer thread owns the write connection, so the event loop keeps serving
while SQLite works (it releases the GIL inside each statement); at most one
commit is in flight. Reads use their own connection on the loop's thread. The ops of all
units in a batch are applied together (one ``executemany`` per kind of op),
since a statement call costs far more than a row. If a unit raises, the batch
is rolled back and re-run with a savepoint per unit, so the failing unit rolls
back alone. Everything runs on the loop's thread: the connection needs no lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
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
        self._start(_connect(path), _connect(path), apply_ops)

    def _start(
        self,
        writer: sqlite3.Connection,
        reader: sqlite3.Connection,
        apply_ops: Callable[[sqlite3.Connection, Sequence[OpT]], None],
    ) -> None:
        """Shared by every backend: what differs is only how the two connections are made."""
        self.conn = writer
        self._reader = reader
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="squall-db")
        self._in_flight: asyncio.Future[Outcomes] | None = None
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
        """Hand what is pending to the writer thread, unless a commit is under way."""
        if self._scheduled is not None:
            self._scheduled.cancel()
        self._scheduled = None
        if self._in_flight is not None or not self._pending:
            return  # the commit under way schedules the next one when it lands
        pending, self._pending = self._pending, []
        loop = asyncio.get_running_loop()
        self._in_flight = loop.run_in_executor(self._writer, self._write, pending)
        self._in_flight.add_done_callback(lambda done: self._landed(pending, done))

    def _write(self, pending: list[Unit]) -> Outcomes:
        try:
            return self._run_merged(pending)
        except _UnitFailed:
            return self._run_isolated(pending)
        except Exception as exc:  # the commit itself failed: nothing in this batch landed
            return [(future, None, exc) for _, _, future in pending]

    def _landed(self, pending: list[Unit], done: asyncio.Future[Outcomes]) -> None:
        self._in_flight = None
        if done.cancelled():
            outcomes: Outcomes = [(f, None, asyncio.CancelledError()) for _, _, f in pending]
        elif done.exception() is not None:
            error = done.exception()
            outcomes = [(future, None, error) for _, _, future in pending]
        else:
            outcomes = done.result()
        for future, result, error in outcomes:
            if future is None or future.done():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
        if self._pending:
            self._schedule(max(0.0, self._flush_at - asyncio.get_running_loop().time()))

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
        """Committed state only; commit an empty unit first to read your own writes."""
        return self._reader.execute(sql, params).fetchall()

    async def close(self) -> None:
        while self._in_flight is not None or self._pending:
            if self._in_flight is None:
                self.flush()
            assert self._in_flight is not None
            await asyncio.wait([self._in_flight])
            await asyncio.sleep(0)  # let _landed run
        if self._scheduled is not None:
            self._scheduled.cancel()
        self._writer.shutdown(wait=True)
        self.conn.close()
        self._reader.close()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a killed process (the OS keeps the WAL);
    # only a power cut can lose the latest commits.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn
