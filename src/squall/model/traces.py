"""Spans as the platform stores and serves them, and user spans as a sandbox reports them."""

from __future__ import annotations

from typing import Any

import msgspec


class SpanEvent(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    time: float  # epoch seconds
    attributes: dict[str, Any] = {}


class SpanRow(msgspec.Struct, frozen=True, kw_only=True):
    """One finished span: ids are lower-case hex (trace 32 digits, span 16)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str  # internal, server, client, producer, consumer
    start: float  # epoch seconds
    end: float
    status: str  # ok, error, unset
    attributes: dict[str, Any] = {}
    events: list[SpanEvent] = []

    @property
    def function(self) -> str | None:
        value = self.attributes.get("squall.function")
        return value if isinstance(value, str) else None


class TraceSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A trace in a listing: its root span's name, time span, size and the functions in it."""

    trace_id: str
    name: str
    start: float
    duration_ms: float
    spans: int
    error: bool
    functions: list[str]


class UserSpan(msgspec.Struct, frozen=True, array_like=True):
    """A span user code made with ``ctx.span``, sent back with the invocation's result.

    Plain data, so the sandbox needs no tracing SDK: ids are hex strings it drew itself, under
    the trace and the invocation span the ``Invoke`` frame named.
    """

    name: str
    span_id: str
    parent_id: str
    start: float  # epoch seconds
    end: float
    attributes: dict[str, Any]
    error: str | None = None  # the exception that ended it, as "Type: message"
