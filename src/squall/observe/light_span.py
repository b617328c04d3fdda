"""The platform's spans: OpenTelemetry API ``Span`` objects made cheaply on the hot path.

The SDK's span costs over a hundred Python calls to start and end (attribute cleaning,
locks, sampler, processor fan-out); at a warm invocation of ~100 µs that would add tens
of µs. A ``LightSpan`` is a slotted object with a dict of attributes: it works with the
API's context functions (``use_span``, ``get_current_span``) and is converted, in batches,
to the stored form and, for OTLP, to the SDK's ``ReadableSpan`` (see ``observe.span_batch``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes

Sink = Callable[["LightSpan"], None]


class LightSpan(Span):
    __slots__ = (
        "_sink",
        "attributes",
        "context",
        "end_ns",
        "events",
        "kind",
        "links",
        "name",
        "parent_id",
        "start_ns",
        "status",
        "status_message",
    )

    def __init__(
        self,
        sink: Sink | None,
        name: str,
        context: SpanContext,
        parent_id: int | None,
        kind: SpanKind,
        attributes: Mapping[str, Any] | None,
        start_ns: int,
        links: Sequence[Link] = (),
    ) -> None:
        self._sink = sink  # None: not sampled, nothing is recorded
        self.name = name
        self.context = context
        self.parent_id = parent_id
        self.kind = kind
        self.attributes: dict[str, Any] = dict(attributes) if attributes else {}
        self.start_ns = start_ns
        self.end_ns: int | None = None
        self.status = StatusCode.UNSET
        self.status_message: str | None = None
        self.events: list[tuple[str, int, dict[str, Any]]] = []
        self.links = list(links)

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self._sink is not None and self.end_ns is None

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self.attributes.update(attributes)

    def add_event(
        self, name: str, attributes: Attributes = None, timestamp: int | None = None
    ) -> None:
        self.events.append((name, timestamp or time.time_ns(), dict(attributes or {})))

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        self.links.append(Link(context, attributes))

    def update_name(self, name: str) -> None:
        self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if isinstance(status, Status):
            self.status, self.status_message = status.status_code, status.description
        else:
            self.status, self.status_message = status, description

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        self.add_event(
            "exception",
            {
                "exception.type": type(exception).__name__,
                "exception.message": str(exception),
                **dict(attributes or {}),
            },
            timestamp,
        )

    def end(self, end_time: int | None = None) -> None:
        if self.end_ns is not None:
            return
        self.end_ns = end_time or time.time_ns()
        if self._sink is not None:
            self._sink(self)
