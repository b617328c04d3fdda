"""Stored spans: finished spans batched into the store, traces read back for the dashboard.

Spans are written off the hot path (a batch per export, see ``observe.span_store``) and kept
for the retention the platform is configured with; ``ExpireSpans`` drops whole traces that
started before a time, so a trace is never served half gone.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from squall.model.traces import SpanRow, TraceSummary


class PutSpans(msgspec.Struct, frozen=True):
    spans: list[SpanRow]


class ExpireSpans(msgspec.Struct, frozen=True):
    """Delete the traces that started before ``before`` (epoch s), with their spans."""

    before: float


TraceOp = PutSpans | ExpireSpans


class TraceStore(Protocol):
    async def list_traces(
        self, *, function: str | None, before: tuple[float, str] | None, limit: int
    ) -> list[TraceSummary]:
        """Traces newest first; ``before`` is the (start, trace id) of the last one seen."""
        ...

    async def get_trace(self, trace_id: str) -> list[SpanRow]:
        """A trace's spans sorted by start; empty when none is stored."""
        ...
