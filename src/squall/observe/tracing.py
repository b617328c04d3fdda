"""Tracing with OpenTelemetry: one ``TracerProvider`` per platform.

Spans are made for each HTTP request, invocation (with ``cold_start`` and ``init`` children
when a sandbox started for it), publish, rule delivery, queue message and workflow step. The
W3C ``traceparent`` of the current span travels with the work: in events (the CloudEvents
``traceparent`` extension), deliveries (a header), queue messages (a column), workflow runs
and the ``Invoke`` frame, so one trace follows a request through every asynchronous hop.
Finished spans are batched into the store (``observe.span_batch``) and, with an OTLP
endpoint, exported over HTTP/protobuf as well.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
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
from squall.model.workflows import StepRecord
from squall.observe.light_span import LightSpan
from squall.observe.span_batch import NOT_SAMPLED, SAMPLED, SpanBatch
from squall.runtime.protocol import Ready, Result
from squall.runtime.sandbox import Sandbox
from squall.storage.protocols import Store

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
    "step_span",
    "trace_id_of",
    "traceparent_of",
    "use_span",
]


class Tracing:
    """The platform's tracer. The SDK's ``TracerProvider`` holds the resource (the app as
    ``service.name``) and the OTLP export; spans themselves are ``LightSpan`` s (see there
    for why), sampled per new trace with probability ``sample``, children following their
    parent's decision."""

    def __init__(
        self,
        store: Store,
        *,
        service: str,
        sample: float = 1.0,
        otlp_endpoint: str | None = None,
    ) -> None:
        self._store = store
        self._sample = sample
        self._random = random.Random()
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        exporters: list[SpanProcessor] = []
        if otlp_endpoint:
            exporters.append(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_traces_url(otlp_endpoint)))
            )
            for exporter in exporters:
                self.provider.add_span_processor(exporter)
        self._exporters = exporters
        self._batch = SpanBatch(store, self.provider.resource, exporters)

    def start(
        self,
        name: str,
        parent: Context | None = None,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        start: float | None = None,
        links: Sequence[Link] = (),
        span_id: int | None = None,
    ) -> Span:
        """A started span under ``parent`` (None: the current span; ``ROOT``: a new trace);
        ``start`` in epoch seconds (default now)."""
        above = get_current_span(parent).get_span_context()
        if above.is_valid:
            trace_id, parent_id, flags = above.trace_id, above.span_id, above.trace_flags
        else:
            # Led by the time in µs (then 72 random bits), like invocation ids: the store
            # appends to its trace indexes instead of writing a random page per span.
            trace_id = (time.time_ns() // 1000) << 72 | self._random.getrandbits(72)
            parent_id = None
            sampled = self._sample >= 1.0 or self._random.random() < self._sample
            flags = SAMPLED if sampled else NOT_SAMPLED
        context = SpanContext(
            trace_id, span_id or self._random.getrandbits(64) or 1, False, flags
        )
        return LightSpan(
            self._batch.add if flags.sampled else None,
            name,
            context,
            parent_id,
            kind,
            attributes,
            time.time_ns() if start is None else int(start * 1e9),
            links,
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
            span = self.start(
                made.name,
                set_span_in_context(parent),
                attributes=made.attributes,
                start=made.start,
                span_id=span_id,
            )
            if made.error is not None:
                span.add_event("exception", {"exception.message": made.error})
                span.set_status(Status(StatusCode.ERROR, made.error))
            span.end(int(made.end * 1e9))

    async def flush(self) -> None:
        """Wait until every finished span is in the store (reads call this first)."""
        self._batch.flush()
        await self._store.commit(())

    async def shutdown(self) -> None:
        await self.flush()
        self._batch.closed = True
        if self._exporters:
            await asyncio.to_thread(self.provider.shutdown)  # sends what OTLP still holds
        else:
            self.provider.shutdown()


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
        ready_at = ready.ended_at or sandbox.ready_at
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
            start=ready_at - ready.init_ms / 1000,
        )
        if ready.error is not None:
            init.set_status(Status(StatusCode.ERROR, str(ready.error.get("message", ""))))
        ready_ns = int(ready_at * 1e9)
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


def step_span(tracing: Tracing, step: StepRecord, traceparent: object) -> None:
    """A span for a workflow step just checkpointed, under the call that recorded it."""
    span = tracing.start(
        f"step {step.name}",
        parent_of(traceparent) or ROOT,
        attributes={
            "squall.workflow_run": step.run_id,
            "squall.step_seq": step.seq,
            "squall.step_kind": step.kind,
            "squall.step_status": step.status,
            "squall.attempts": step.attempts,
        },
        start=step.started_at,
    )
    if step.status == "failed":
        message = str((step.error or {}).get("message", ""))
        span.set_status(Status(StatusCode.ERROR, message))
    span.end(int((step.ended_at or time.time()) * 1e9))


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
