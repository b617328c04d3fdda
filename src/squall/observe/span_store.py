"""A ``SpanExporter`` that writes finished spans into the platform's store.

It runs on the batch processor's thread: each batch becomes one ``PutSpans`` op, handed to
the event loop that owns the store (one thread hop per batch, never per span) and committed
lazily with whatever the store commits next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from squall.model.traces import SpanEvent, SpanRow
from squall.storage.protocols import Store
from squall.storage.traces import PutSpans

_STATUS = {StatusCode.UNSET: "unset", StatusCode.OK: "ok", StatusCode.ERROR: "error"}


class StoreSpanExporter(SpanExporter):
    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop) -> None:
        self._store = store
        self._loop = loop
        self._closed = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._closed:
            return SpanExportResult.FAILURE
        rows = [span_row(span) for span in spans]
        try:
            self._loop.call_soon_threadsafe(self._store.commit_soon, [PutSpans(rows)])
        except RuntimeError:  # the loop is closed: the platform is gone
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._closed = True


def span_row(span: ReadableSpan) -> SpanRow:
    context = span.get_span_context()
    assert context is not None
    parent = span.parent
    return SpanRow(
        trace_id=f"{context.trace_id:032x}",
        span_id=f"{context.span_id:016x}",
        parent_id=f"{parent.span_id:016x}" if parent is not None else None,
        name=span.name,
        kind=span.kind.name.lower(),
        start=(span.start_time or 0) / 1e9,
        end=(span.end_time or span.start_time or 0) / 1e9,
        status=_STATUS[span.status.status_code],
        attributes=dict(span.attributes or {}),
        events=[
            SpanEvent(name=e.name, time=e.timestamp / 1e9, attributes=dict(e.attributes or {}))
            for e in span.events
        ],
    )
