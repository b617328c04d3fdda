"""The embedded backend's spans and traces (see ``storage.traces``).

``spans`` holds every finished span; ``traces`` one summary row per trace (its root's name,
first start, last end, span count, whether a span failed), kept up to date as batches of
spans land, so a listing reads one row per trace; ``trace_functions`` says which functions
ran in a trace, for the listing's filter.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec

from squall.model.traces import SpanEvent, SpanRow, TraceSummary
from squall.storage.sqlite.db import Database
from squall.storage.traces import ExpireSpans, PutSpans, TraceOp

TRACES_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_id TEXT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    status TEXT NOT NULL,
    attributes BLOB NOT NULL,
    events BLOB NOT NULL,
    PRIMARY KEY (trace_id, span_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS traces (
    trace_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    rooted INTEGER NOT NULL,  -- 1 once the span without a parent has landed
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    spans INTEGER NOT NULL,
    error INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS traces_by_start ON traces (start, trace_id);

CREATE TABLE IF NOT EXISTS trace_functions (
    function TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    PRIMARY KEY (function, trace_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS trace_functions_by_trace ON trace_functions (trace_id);
"""

TRACE_RANK: dict[type, int] = {
    PutSpans: 90,
    ExpireSpans: 91,
}

_pack = msgspec.json.encode
_unpack_attributes = msgspec.json.Decoder(dict[str, Any]).decode
_unpack_events = msgspec.json.Decoder(list[SpanEvent]).decode

_INSERT_SPAN = (
    "INSERT OR REPLACE INTO spans (trace_id, span_id, parent_id, name, kind, start, \"end\","
    " status, attributes, events) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A batch's root names the trace; before the root lands, its earliest span does.
_UPSERT_TRACE = (
    "INSERT INTO traces (trace_id, name, rooted, start, \"end\", spans, error)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (trace_id) DO UPDATE SET"
    " name = CASE WHEN excluded.rooted = 1 THEN excluded.name"
    "  WHEN traces.rooted = 0 AND excluded.start < traces.start THEN excluded.name"
    "  ELSE traces.name END,"
    " rooted = MAX(traces.rooted, excluded.rooted),"
    " start = MIN(traces.start, excluded.start), \"end\" = MAX(traces.\"end\", excluded.\"end\"),"
    " spans = traces.spans + excluded.spans, error = MAX(traces.error, excluded.error)"
)


def apply_traces(conn: sqlite3.Connection, kind: type, ops: Sequence[TraceOp]) -> None:
    """Apply a batch of trace ops of one ``kind``."""
    if kind is PutSpans:
        spans = [span for op in ops if isinstance(op, PutSpans) for span in op.spans]
        conn.executemany(_INSERT_SPAN, [_span_row(span) for span in spans])
        conn.executemany(_UPSERT_TRACE, _summaries(spans))
        conn.executemany(
            "INSERT OR IGNORE INTO trace_functions (function, trace_id) VALUES (?, ?)",
            {(span.function, span.trace_id) for span in spans if span.function is not None},
        )
        return
    for op in ops:
        if isinstance(op, ExpireSpans):
            old = "SELECT trace_id FROM traces WHERE start < ?"
            conn.execute(f"DELETE FROM spans WHERE trace_id IN ({old})", (op.before,))
            conn.execute(f"DELETE FROM trace_functions WHERE trace_id IN ({old})", (op.before,))
            conn.execute("DELETE FROM traces WHERE start < ?", (op.before,))


def _span_row(span: SpanRow) -> tuple[Any, ...]:
    return (
        span.trace_id,
        span.span_id,
        span.parent_id,
        span.name,
        span.kind,
        span.start,
        span.end,
        span.status,
        _pack(span.attributes),
        _pack(span.events),
    )


def _summaries(spans: Sequence[SpanRow]) -> list[tuple[Any, ...]]:
    by_trace: dict[str, list[SpanRow]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    rows = []
    for trace_id, members in by_trace.items():
        roots = [s for s in members if s.parent_id is None]
        first = min(members, key=lambda s: s.start)
        named = roots[0] if roots else first
        rows.append(
            (
                trace_id,
                named.name,
                1 if roots else 0,
                first.start,
                max(s.end for s in members),
                len(members),
                1 if any(s.status == "error" for s in members) else 0,
            )
        )
    return rows


class TraceReads:
    """The ``TraceStore`` reads, for ``SqliteStore``."""

    _db: Database[Any]

    async def list_traces(
        self, *, function: str | None, before: tuple[float, str] | None, limit: int
    ) -> list[TraceSummary]:
        clauses: list[str] = []
        params: list[Any] = []
        if function is not None:
            clauses.append(
                "trace_id IN (SELECT trace_id FROM trace_functions WHERE function = ?)"
            )
            params.append(function)
        if before is not None:
            clauses.append("(start < ? OR (start = ? AND trace_id < ?))")
            params += [before[0], before[0], before[1]]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.read(
            f"SELECT trace_id, name, start, \"end\", spans, error FROM traces {where}"
            " ORDER BY start DESC, trace_id DESC LIMIT ?",
            (*params, limit),
        )
        functions: dict[str, list[str]] = {row[0]: [] for row in rows}
        if rows:
            marks = ", ".join("?" * len(rows))
            for name, trace_id in self._db.read(
                f"SELECT function, trace_id FROM trace_functions WHERE trace_id IN ({marks})"
                " ORDER BY function",
                tuple(functions),
            ):
                functions[trace_id].append(name)
        return [
            TraceSummary(
                trace_id=trace_id,
                name=name,
                start=start,
                duration_ms=round((end - start) * 1000, 3),
                spans=count,
                error=bool(error),
                functions=functions[trace_id],
            )
            for trace_id, name, start, end, count, error in rows
        ]

    async def get_trace(self, trace_id: str) -> list[SpanRow]:
        rows = self._db.read(
            "SELECT span_id, parent_id, name, kind, start, \"end\", status, attributes, events"
            " FROM spans WHERE trace_id = ? ORDER BY start, span_id",
            (trace_id,),
        )
        return [
            SpanRow(
                trace_id=trace_id,
                span_id=span_id,
                parent_id=parent_id,
                name=name,
                kind=kind,
                start=start,
                end=end,
                status=status,
                attributes=_unpack_attributes(attributes),
                events=_unpack_events(events),
            )
            for span_id, parent_id, name, kind, start, end, status, attributes, events in rows
        ]
