"""Reading stored traces: listings newest first with a cursor, and one trace's spans.

Every read first flushes the span batcher, so what finished before the read is in it.
"""

from __future__ import annotations

import re

from squall.errors import InvalidInput, NotFound
from squall.model.traces import SpanRow, TraceSummary
from squall.observe.tracing import Tracing
from squall.storage.protocols import Store

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_CURSOR = re.compile(r"(\d+(?:\.\d+)?):([0-9a-f]{32})")


class Traces:
    def __init__(self, store: Store, tracing: Tracing) -> None:
        self._store = store
        self._tracing = tracing

    async def page(
        self, *, function: str | None = None, limit: int = 50, before: str | None = None
    ) -> tuple[list[TraceSummary], str | None]:
        """A page of traces newest first, and the cursor of the next page (None: the last)."""
        position = decode_cursor(before) if before is not None else None
        await self._tracing.flush()
        traces = await self._store.list_traces(function=function, before=position, limit=limit)
        cursor = encode_cursor(traces[-1]) if len(traces) == limit else None
        return traces, cursor

    async def get(self, trace_id: str) -> list[SpanRow]:
        if not _TRACE_ID.fullmatch(trace_id):
            raise InvalidInput(
                f"trace id {trace_id!r} is not 32 lower-case hex digits", field="trace_id"
            )
        await self._tracing.flush()
        spans = await self._store.get_trace(trace_id)
        if not spans:
            raise NotFound(f"trace {trace_id!r} does not exist", field="trace_id")
        return spans


def encode_cursor(trace: TraceSummary) -> str:
    return f"{trace.start!r}:{trace.trace_id}"


def decode_cursor(cursor: str) -> tuple[float, str]:
    match = _CURSOR.fullmatch(cursor)
    if match is None:
        raise InvalidInput(
            f"before={cursor!r} is not a cursor this API returned (as 'next')", field="before"
        )
    return float(match[1]), match[2]
