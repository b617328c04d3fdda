"""Finished spans, batched on the event loop into the store and, optionally, to OTLP.

A span ends onto a list; the list is written once it holds ``BATCH`` spans or ``DELAY_S``
after its first, whichever comes first: one ``PutSpans`` op riding the store's lazy group
commit. With an OTLP endpoint each span is also handed, as the SDK's ``ReadableSpan``, to a
``BatchSpanProcessor`` whose thread sends them with the SDK's ``OTLPSpanExporter``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, StatusCode, TraceFlags
from opentelemetry.trace.status import Status

from squall.model.traces import SpanEvent, SpanRow
from squall.observe.light_span import LightSpan
from squall.storage.protocols import Store
from squall.storage.traces import PutSpans

BATCH = 512
DELAY_S = 0.5
_STATUS = {StatusCode.UNSET: "unset", StatusCode.OK: "ok", StatusCode.ERROR: "error"}
_SCOPE = InstrumentationScope("squall")


class SpanBatch:
    def __init__(
        self,
        store: Store,
        resource: Resource,
        exporters: Sequence[SpanProcessor] = (),
    ) -> None:
        self._store = store
        self._resource = resource
        self._exporters = list(exporters)
        self._spans: list[LightSpan] = []
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False

    def add(self, span: LightSpan) -> None:
        """``LightSpan``'s sink: called as a recorded span ends."""
        if self.closed:
            return
        spans = self._spans
        spans.append(span)
        if len(spans) >= BATCH:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(DELAY_S, self.flush)

    def flush(self) -> None:
        """Hand what has ended to the store (committed with its next unit) and the exporters."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        spans, self._spans = self._spans, []
        if not spans:
            return
        self._store.commit_soon([PutSpans([span_row(span) for span in spans])])
        for exporter in self._exporters:
            for span in spans:
                exporter.on_end(self._readable(span))

    def _readable(self, span: LightSpan) -> ReadableSpan:
        context = span.context
        parent = None
        if span.parent_id is not None:
            parent = SpanContext(context.trace_id, span.parent_id, True, context.trace_flags)
        return ReadableSpan(
            name=span.name,
            context=context,
            parent=parent,
            resource=self._resource,
            attributes=span.attributes,
            events=[Event(name, attrs, ts) for name, ts, attrs in span.events],
            links=span.links,
            kind=span.kind,
            status=Status(span.status, span.status_message),
            start_time=span.start_ns,
            end_time=span.end_ns,
            instrumentation_scope=_SCOPE,
        )


def span_row(span: LightSpan) -> SpanRow:
    context = span.context
    return SpanRow(
        trace_id=f"{context.trace_id:032x}",
        span_id=f"{context.span_id:016x}",
        parent_id=f"{span.parent_id:016x}" if span.parent_id is not None else None,
        name=span.name,
        kind=span.kind.name.lower(),
        start=span.start_ns / 1e9,
        end=(span.end_ns or span.start_ns) / 1e9,
        status=_STATUS[span.status],
        attributes=span.attributes,
        events=[SpanEvent(name=n, time=ts / 1e9, attributes=a) for n, ts, a in span.events],
    )


SAMPLED = TraceFlags(TraceFlags.SAMPLED)
NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
