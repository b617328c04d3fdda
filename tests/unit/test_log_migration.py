"""A store made before structured logs opens with its lines intact and the new columns."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from squall.model.invocation import LogEntry
from squall.storage.protocols import AppendLogs
from squall.storage.sqlite.store import SqliteStore

OLD_LOGS = """
CREATE TABLE logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    level TEXT NOT NULL,
    stream TEXT NOT NULL,
    message TEXT NOT NULL,
    function TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    request_id TEXT
);
CREATE TABLE queue_messages (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    queue TEXT NOT NULL,
    body BLOB NOT NULL,
    attributes BLOB,
    group_id TEXT,
    dedup_id TEXT,
    sent_at REAL NOT NULL,
    available_at REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    first_received_at REAL,
    receipt TEXT,
    source TEXT
);
INSERT INTO logs (time, level, stream, message, function, invocation_id, request_id)
VALUES (1.0, 'info', 'stdout', 'from before', 'fn', 'inv-1', NULL);
"""


async def test_old_logs_table_gains_columns_and_keeps_lines(tmp_path: Path) -> None:
    path = tmp_path / "squall.db"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_LOGS)
    conn.close()
    store = await SqliteStore.open(path)
    try:
        [old] = await store.list_logs(
            function="fn", invocation_id=None, since=None, after=None, level=None, limit=10
        )
        assert old.message == "from before"
        assert (old.fields, old.trace_id, old.span_id, old.version) == (None, None, None, None)
        line = LogEntry(2.0, "info", "log", "new", {"k": 1}, "a" * 32, "b" * 16)
        await store.commit([AppendLogs("inv-2", "fn", [line], None, "v1")])
        [new] = await store.list_logs(
            function=None, invocation_id=None, since=None, after=None, level=None, limit=10,
            trace_id="a" * 32,
        )
        assert (new.fields, new.span_id, new.version) == ({"k": 1}, "b" * 16, "v1")
    finally:
        await store.close()
    columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(queue_messages)")}
    assert "traceparent" in columns
