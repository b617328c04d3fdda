"""The ``ctx`` object a handler receives. It lives in the sandbox process."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any, Protocol

import msgspec

from squall.runtime.buckets_client import Buckets
from squall.runtime.capture import Capture, StructuredLog
from squall.runtime.events_store_client import EventsStore
from squall.runtime.spans import OpenSpan
from squall.runtime.tables_client import Tables


class PlatformLink(Protocol):
    """The sandbox's channel back to the platform."""

    def call(self, op: str, args: dict[str, Any]) -> bytes | None: ...


class Context:
    """Facts about the running invocation and calls back into the platform.

    ``ctx.invoke(name, payload)`` runs another function (sync, returns its result;
    ``async_=True`` returns the new invocation id at once, ``at=`` delays its start).
    What the calls change (events, messages, records, async invokes) is committed with
    this invocation's success and dropped with its failure.
    Times (``at``, ``publish_at``'s ``when``) are aware datetimes, timedeltas from now, or
    epoch seconds.

    ``ctx.log.info("msg", key=value)`` writes a structured log line; ``with
    ctx.span("name", key=value):`` times a part of the work as a span of the invocation's
    trace, and ``ctx.set_attribute(key, value)`` labels the innermost span.
    """

    __slots__ = (
        "_capture",
        "_deadline",
        "_link",
        "attempt",
        "function_name",
        "invocation_id",
        "log",
        "logger",
        "memory_mb",
        "secrets",
        "state",
        "tables",
        "trigger",
        "version",
    )

    def __init__(
        self,
        *,
        link: PlatformLink,
        function_name: str,
        version: str,
        memory_mb: int,
        logger: logging.Logger,
        state: Any = None,
        secrets: dict[str, str] | None = None,
        capture: Capture | None = None,
    ) -> None:
        self._link = link
        self._capture = capture if capture is not None else Capture()
        self.log = StructuredLog(self._capture)
        self.function_name = function_name
        self.version = version
        self.memory_mb = memory_mb
        self.logger = logger
        self.state = state
        self.secrets: dict[str, str] = dict(secrets or {})  # the declared secrets only
        self.tables = Tables(link)  # ctx.tables["orders"].get(...), see runtime.tables_client
        self.invocation_id = ""
        self.attempt = 1
        self.trigger = ""
        self._deadline = float("inf")

    def _begin(self, invocation_id: str, attempt: int, trigger: str, deadline: float) -> None:
        self.invocation_id = invocation_id
        self.attempt = attempt
        self.trigger = trigger
        self._deadline = deadline

    @property
    def events_store(self) -> EventsStore:
        """``ctx.events_store.append("order-42", [...])``: event streams
        (``events_store:<stream or prefix*>`` in permissions)."""
        return EventsStore(self._link)

    @property
    def trace_id(self) -> str | None:
        """The running invocation's trace (32 hex digits), None when it is not traced."""
        return self._capture.spans.trace_id

    def span(self, name: str, **attributes: Any) -> OpenSpan:
        """``with ctx.span("charge", amount=12):`` a child span of the running one."""
        return self._capture.spans.open(name, attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        """Set ``key`` on the innermost open span (the invocation's when none is open)."""
        self._capture.spans.set_attribute(key, value)

    def _traced(self, args: dict[str, Any]) -> dict[str, Any]:
        traceparent = self._capture.spans.traceparent()
        if traceparent is not None:
            args["traceparent"] = traceparent
        return args

    @property
    def buckets(self) -> Buckets:
        """``ctx.buckets["uploads"].put(...)``: objects (``bucket:<name>`` in permissions)."""
        return Buckets(self._link)

    def remaining_ms(self) -> int:
        """Milliseconds left before the platform kills this invocation."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def invoke(
        self,
        name: str,
        payload: Any = None,
        *,
        async_: bool = False,
        at: datetime | timedelta | float | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        """Invoke function ``name``: synchronously (its result, waiting at most
        ``timeout_s`` when given: then ``Timeout``), or queued with ``async_=True``."""
        args: dict[str, Any] = {
            "function": name,
            "payload": msgspec.json.encode(payload),
            "async": async_,
        }
        if timeout_s is not None:
            if async_:
                raise ValueError("timeout_s bounds a sync invocation: not with async_=True")
            args["timeout_s"] = float(timeout_s)
        if at is not None:
            if not async_:
                raise ValueError("at= delays an async invocation: pass async_=True as well")
            args["at"] = _epoch(at)
        body = self._link.call("invoke", self._traced(args))
        return None if body is None else msgspec.json.decode(body)

    def start_workflow(self, workflow: str, input: Any = None, *, id: str | None = None) -> str:
        """Start a run of ``workflow`` (``workflow:<name>`` in permissions) when this
        invocation succeeds; ``id`` is the idempotency key (a run of that id is kept as it
        is). Returns the run id."""
        body = self._link.call(
            "workflow.start",
            self._traced(
                {"workflow": workflow, "input_json": msgspec.json.encode(input), "id": id}
            ),
        )
        return str(msgspec.json.decode(body or b'""'))

    def publish(
        self,
        type: str,
        data: Any = None,
        *,
        subject: str | None = None,
        source: str | None = None,
        bus: str = "default",
    ) -> str:
        """Publish a CloudEvent onto ``bus`` (declared in ``permissions``); returns its id."""
        body = self._link.call(
            "publish",
            self._traced(
                {
                    "type": type,
                    "data": msgspec.json.encode(data),
                    "subject": subject,
                    "source": source,
                    "bus": bus,
                }
            ),
        )
        return str(msgspec.json.decode(body)) if body is not None else ""

    def put_record(self, stream: str, data: Any, partition_key: str) -> dict[str, int | None]:
        """Append a record to ``stream`` (``put:<stream>`` in ``permissions``) when this
        invocation succeeds; returns ``{"shard", "sequence": None}`` (numbered at commit)."""
        return self._put(stream, [{"data": data, "partition_key": partition_key}], False)[0]

    def put_records(
        self, stream: str, records: list[dict[str, Any]]
    ) -> list[dict[str, int | None]]:
        """Append ``[{"data", "partition_key"}, ...]`` to ``stream`` at once, all or none."""
        return self._put(stream, records, True)

    def _put(
        self, stream: str, records: list[dict[str, Any]], batch: bool
    ) -> list[dict[str, int | None]]:
        body = self._link.call(
            "put_records",
            {
                "stream": stream,
                "batch": batch,
                "records": [
                    {
                        "data": msgspec.json.encode(record.get("data")),
                        "partition_key": record.get("partition_key"),
                    }
                    for record in records
                ],
            },
        )
        return list(msgspec.json.decode(body)) if body is not None else []

    def publish_at(
        self,
        when: datetime | timedelta | float,
        type: str,
        data: Any = None,
        *,
        subject: str | None = None,
        source: str | None = None,
        bus: str = "default",
    ) -> str:
        """Publish a CloudEvent onto ``bus`` at ``when``, durably; returns its id at once."""
        body = self._link.call(
            "publish_at",
            self._traced(
                {
                    "when": _epoch(when),
                    "type": type,
                    "data": msgspec.json.encode(data),
                    "subject": subject,
                    "source": source,
                    "bus": bus,
                }
            ),
        )
        return str(msgspec.json.decode(body)) if body is not None else ""

    def send(
        self,
        queue: str,
        body: Any = None,
        *,
        delay_s: int | None = None,
        group_id: str | None = None,
        dedup_id: str | None = None,
        attributes: dict[str, str] | None = None,
    ) -> str:
        """Send a JSON-able ``body`` to ``queue`` (declared as ``send:<queue>`` in
        ``permissions``); returns the message id (the first one's, for a FIFO duplicate)."""
        reply = self._link.call(
            "send",
            self._traced(
                {
                    "queue": queue,
                    "body": msgspec.json.encode(body),
                    "delay_s": delay_s,
                    "group_id": group_id,
                    "dedup_id": dedup_id,
                    "attributes": attributes,
                }
            ),
        )
        return str(msgspec.json.decode(reply)) if reply is not None else ""

    def __repr__(self) -> str:
        return f"Context(function={self.function_name!r}, invocation={self.invocation_id!r})"


def _epoch(when: datetime | timedelta | float) -> float:
    if isinstance(when, timedelta):
        return time.time() + when.total_seconds()
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise ValueError(f"{when!r} has no time zone: pass an aware datetime")
        return when.timestamp()
    if isinstance(when, bool) or not isinstance(when, int | float):
        raise TypeError(f"a time is a datetime, a timedelta or epoch seconds, not {when!r}")
    return float(when)
