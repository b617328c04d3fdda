"""Invocation records and captured log lines."""

from __future__ import annotations

import enum
from typing import Any

import msgspec


class InvocationStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset(
    {InvocationStatus.SUCCEEDED, InvocationStatus.FAILED, InvocationStatus.DEAD_LETTERED}
)


class Trigger(enum.StrEnum):
    SYNC = "sync"
    ASYNC = "async"
    DESTINATION = "destination"
    REDRIVE = "redrive"
    FUNCTION = "function"
    HTTP = "http"
    EVENT = "event"
    STREAM = "stream"
    SCHEDULE = "schedule"
    WORKFLOW = "workflow"  # a replay of a workflow run
    PROJECTION = "projection"  # a batch of events for a projection


class LogEntry(msgspec.Struct, frozen=True, array_like=True):
    """One captured line: time (epoch s), level, stream/logger, message; the structured
    ``fields`` given with it (``ctx.log.info("…", order_id=7)``, ``logging`` ``extra=``) and
    the trace and span it was written in."""

    time: float
    level: str
    stream: str
    message: str
    fields: dict[str, Any] | None = None
    trace_id: str | None = None
    span_id: str | None = None


class InvocationRecord(msgspec.Struct, kw_only=True):
    id: str
    function: str
    version: str
    trigger: str
    status: str
    attempt: int = 0
    created_at: float = 0.0
    start: float | None = None
    end: float | None = None
    duration_ms: float | None = None
    billed_ms: int | None = None
    memory_mb: int = 0
    peak_rss_kb: int | None = None
    cold: bool | None = None
    init_ms: float | None = None
    error: dict[str, object] | None = None
    result: bytes | None = None
    response: dict[str, object] | None = None  # status, headers, content_type
    idempotency_key: str | None = None
    request_id: str | None = None  # the HTTP request that caused it (X-Request-Id)
    trace_id: str | None = None  # the trace its span belongs to (32 hex digits)
    logs: list[LogEntry] = []

    def public(self, *, with_result: bool = True) -> dict[str, object]:
        """The JSON shape served by the admin API."""
        data = msgspec.structs.asdict(self)
        data.pop("result")
        data["logs"] = [msgspec.structs.asdict(line) for line in self.logs]
        if with_result and self.result is not None:
            content_type = str((self.response or {}).get("content_type", "application/json"))
            if content_type.startswith("application/json"):
                data["result"] = msgspec.json.decode(self.result)
            else:
                data["result"] = self.result.decode("utf-8", "replace")
        return data


class LogRow(msgspec.Struct, frozen=True, kw_only=True):
    """A stored log line, addressable by its sequence number for ``logs -f``."""

    seq: int
    time: float
    level: str
    stream: str
    message: str
    function: str
    invocation_id: str
    request_id: str | None = None
    version: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    fields: dict[str, Any] | None = None


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """An async invocation that ran out of retries or event age."""

    id: str
    function: str
    invocation_id: str
    payload: bytes
    error: dict[str, object]
    attempts: int
    enqueued_at: float
    failed_at: float

    def public(self) -> dict[str, object]:
        data = msgspec.structs.asdict(self)
        data["payload"] = msgspec.json.decode(self.payload)
        return data
