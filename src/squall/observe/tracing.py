"""Tracing with OpenTelemetry: one ``TracerProvider`` per platform.

Spans are made for each HTTP request, invocation (with ``cold_start`` and ``init`` children
when a sandbox started for it), publish, rule delivery, queue message and workflow step. The
W3C ``traceparent`` of the current span travels with the work: in events (the CloudEvents
``traceparent`` extension), deliveries (a header), queue messages (a column), workflow runs
and the ``Invoke`` frame, so one trace follows a request through every asynchronous hop.
Finished spans are batched into the store (``StoreSpanExporter``) and, with an OTLP
endpoint, exported over HTTP/protobuf as well.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import (
    INVALID_SPAN,
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    get_current_span,
    set_span_in_context,
    use_span,
)

from squall.model.invocation import InvocationRecord
from squall.model.traces import UserSpan
from squall.observe.span_store import StoreSpanExporter
from squall.runtime.protocol import Ready, Result
from squall.runtime.sandbox import Sandbox
from squall.storage.protocols import Store

EXPORT_DELAY_MS = 500  # spans reach the store within about this long
ROOT = Context()  # the parent of a span that starts a new trace

__all__ = [
    "ROOT",
    "Context",
    "Link",
    "Span",
    "SpanKind",
    "Status",
    "StatusCode",
    "Tracing",
    "end_invocation_span",
    "parent_of",
    "set_span_in_context",
    "trace_id_of",
    "traceparent_of",
    "use_span",
]


class _Ids(RandomIdGenerator):
    """Random ids, except the span id of a user span: the sandbox drew it already."""

    def __init__(self) -> None:
        self.next_span_id: int | None = None

    def generate_span_id(self) -> int:
        chosen, self.next_span_id = self.next_span_id, None
        return chosen if chosen is not None else super().generate_span_id()


class Tracing:
    def __init__(
        self,
        store: Store,
        *,
        service: str,
        sample: float = 1.0,
        otlp_endpoint: str | None = None,
    ) -> None:
        self._store = store
        self._ids = _Ids()
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": service}),
            sampler=ParentBased(TraceIdRatioBased(sample)),
            id_generator=self._ids,
        )
        loop = asyncio.get_running_loop()
        self.provider.add_span_processor(
            BatchSpanProcessor(
                StoreSpanExporter(store, loop), schedule_delay_millis=EXPORT_DELAY_MS
            )
        )
        if otlp_endpoint:
            self.provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_traces_url(otlp_endpoint)))
            )
        self.tracer = self.provider.get_tracer("squall")

    def start(
        self,
        name: str,
        parent: Context | None = None,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        start: float | None = None,
        links: Sequence[Link] = (),
    ) -> Span:
        """A started span under ``parent`` (None: the current span; ``ROOT``: a new trace);
        ``start`` in epoch seconds (default now)."""
        return self.tracer.start_span(
            name,
            context=parent,
            kind=kind,
            attributes=attributes,
            start_time=None if start is None else int(start * 1e9),
            links=links,
        )

    def delivery(self, headers: Mapping[str, str], what: str) -> tuple[Context, Span | None]:
        """Where the work of a delivery belongs: under the ``traceparent`` it carries (a new
        trace without one); a rule's delivery gets a consumer span of its own."""
        parent = parent_of(headers.get("traceparent")) or ROOT
        rule = headers.get("rule")
        if rule is None:
            return parent, None
        span = self.start(
            f"deliver {rule}",
            parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "squall.rule": rule,
                "squall.bus": headers.get("bus", ""),
                "squall.target": headers.get("target_id", ""),
                "squall.deliver_to": what,
            },
        )
        return set_span_in_context(span), span

    def user_spans(self, under: Span, spans: Sequence[UserSpan]) -> None:
        """Turn the spans a sandbox made (``ctx.span``) into real ones under ``under``."""
        context = under.get_span_context()
        if not spans or not context.is_valid:
            return
        for made in spans:
            try:
                span_id, parent_id = int(made.span_id, 16), int(made.parent_id, 16)
            except ValueError:
                continue  # not ids the sandbox draws: drop the span, not the invocation
            parent = NonRecordingSpan(
                SpanContext(context.trace_id, parent_id, False, context.trace_flags)
            )
            self._ids.next_span_id = span_id
            span = self.tracer.start_span(
                made.name,
                context=set_span_in_context(parent),
                attributes=made.attributes,
                start_time=int(made.start * 1e9),
            )
            if made.error is not None:
                span.add_event("exception", {"exception.message": made.error})
                span.set_status(Status(StatusCode.ERROR, made.error))
            span.end(int(made.end * 1e9))

    async def flush(self) -> None:
        """Wait until every finished span is in the store (reads call this first)."""
        await asyncio.to_thread(self.provider.force_flush)
        await asyncio.sleep(0)  # the exporter's hand-over to this loop runs
        await self._store.commit(())

    async def shutdown(self) -> None:
        await self.flush()
        await asyncio.to_thread(self.provider.shutdown)


def end_invocation_span(
    tracing: Tracing,
    span: Span,
    record: InvocationRecord,
    result: Result | None,
    ready: Ready | None,
    sandbox: Sandbox,
) -> None:
    """Finish an invocation's span from its filled-in record: the cold start and init it
    waited for as children, the user's spans and attributes, the error as its status."""
    if record.cold and ready is not None and sandbox.ready_at is not None:
        under = set_span_in_context(span)
        cold = tracing.start(
            "cold_start",
            under,
            attributes={"squall.function": record.function},
            start=sandbox.created_at,
        )
        init = tracing.start(
            "init",
            set_span_in_context(cold),
            attributes={"squall.function": record.function, "squall.init_ms": ready.init_ms},
            start=sandbox.ready_at - ready.init_ms / 1000,
        )
        if ready.error is not None:
            init.set_status(Status(StatusCode.ERROR, str(ready.error.get("message", ""))))
        ready_ns = int(sandbox.ready_at * 1e9)
        init.end(ready_ns)
        cold.end(ready_ns)
    span.set_attribute("squall.cold_start", bool(record.cold))
    span.set_attribute("squall.status", record.status)
    if result is not None:
        if result.attributes:
            span.set_attributes(result.attributes)
        if result.spans:
            tracing.user_spans(span, result.spans)
    if record.error:
        span.set_status(Status(StatusCode.ERROR, str(record.error.get("message", ""))))
    span.end(int((record.end or time.time()) * 1e9))


def traceparent_of(span: Span) -> str | None:
    """The W3C ``traceparent`` naming ``span`` as the parent of what it causes."""
    context = span.get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def current_traceparent() -> str | None:
    return traceparent_of(get_current_span())


def parent_of(traceparent: object) -> Context | None:
    """The context to start a child span of ``traceparent`` in; None when it is malformed."""
    if not isinstance(traceparent, str) or len(traceparent) != 55:
        return None
    parts = traceparent.split("-")
    if len(parts) != 4:
        return None
    version, trace_id, span_id, flags = parts
    if version != "00" or len(trace_id) != 32 or len(span_id) != 16 or len(flags) != 2:
        return None
    try:
        context = SpanContext(
            int(trace_id, 16), int(span_id, 16), True, TraceFlags(int(flags, 16) & 1)
        )
    except ValueError:
        return None
    if not context.is_valid:
        return None
    return set_span_in_context(NonRecordingSpan(context))


def trace_id_of(span: Span) -> str | None:
    context = span.get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else None


def otlp_traces_url(endpoint: str) -> str:
    """An OTLP/HTTP collector's base URL (``http://host:4318``) or its full traces URL."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


def endpoint_from_env() -> str | None:
    return os.environ.get("SQUALL_OTLP_ENDPOINT") or None


NO_SPAN = INVALID_SPAN
