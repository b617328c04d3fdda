"""The embedded backend's tables."""

# Columns added after the first release: an older database gets them at open.
LOG_COLUMNS = {"version": "TEXT", "trace_id": "TEXT", "span_id": "TEXT", "fields": "BLOB"}

# Indexes on those columns, made once the columns exist.
LATE_INDEXES = """
CREATE INDEX IF NOT EXISTS logs_by_trace ON logs (trace_id, seq) WHERE trace_id IS NOT NULL;
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    payload BLOB NOT NULL,
    invocation_id TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    enqueued_at REAL NOT NULL,
    available_at REAL NOT NULL,
    leased INTEGER NOT NULL DEFAULT 0,
    headers BLOB NOT NULL,
    dedup_key TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (queue, available_at);
-- Partial: most deliveries carry no dedup key and cost this index nothing.
CREATE UNIQUE INDEX IF NOT EXISTS deliveries_dedup ON deliveries (queue, dedup_key)
    WHERE dedup_key IS NOT NULL;

CREATE TABLE IF NOT EXISTS invocations (
    id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS invocations_by_function ON invocations (function, id);

CREATE TABLE IF NOT EXISTS logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    level TEXT NOT NULL,
    stream TEXT NOT NULL,
    message TEXT NOT NULL,
    function TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    request_id TEXT,
    version TEXT,
    trace_id TEXT,
    span_id TEXT,
    fields BLOB  -- JSON object, NULL when the line has none
);
CREATE INDEX IF NOT EXISTS logs_by_request ON logs (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS logs_by_invocation ON logs (invocation_id, seq);
CREATE INDEX IF NOT EXISTS logs_by_function ON logs (function, seq);
CREATE INDEX IF NOT EXISTS logs_by_time ON logs (time);

CREATE TABLE IF NOT EXISTS idempotency (
    function TEXT NOT NULL,
    key TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (function, key)
);

CREATE TABLE IF NOT EXISTS event_ids (
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (source, id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    error BLOB NOT NULL,
    attempts INTEGER NOT NULL,
    enqueued_at REAL NOT NULL,
    failed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_function ON dead_letters (function, failed_at);

-- Rules made through the admin API (the app's own rules come from its code).
CREATE TABLE IF NOT EXISTS rules (
    name TEXT PRIMARY KEY,
    rule BLOB NOT NULL
);

-- Function settings changed through the admin API, over what the code declares.
CREATE TABLE IF NOT EXISTS function_settings (
    function TEXT PRIMARY KEY,
    changes BLOB NOT NULL
);
"""
