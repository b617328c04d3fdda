"""User spans in the sandbox: ``with ctx.span("name", k=v):`` and ``ctx.set_attribute``.

The sandbox carries no tracing SDK: the ``Invoke`` frame names the trace and the invocation's
span (a W3C ``traceparent``); spans made here draw their own ids, are kept as plain
``UserSpan`` structs and go back with the ``Result``, where the platform turns them into
real spans under the invocation's. Log lines written inside a span carry its id.
"""

from __future__ import annotations

import random
import time
from types import TracebackType
from typing import Any

from squall.model.traces import UserSpan

_ids = random.Random()  # reseeded per sandbox: forked children must not share id streams
_SCALARS = (str, bool, int, float)


def reseed() -> None:
    _ids.seed()


def attribute_value(value: Any) -> Any:
    """A value OpenTelemetry accepts: a scalar or a list of scalars; anything else as text."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, _SCALARS) for v in value):
        return list(value)
    return str(value)


class SpanRecorder:
    """The running invocation's trace position and the user spans it made so far."""

    __slots__ = ("_flags", "_parent", "_stack", "attributes", "finished", "trace_id")

    def __init__(self) -> None:
        self.trace_id: str | None = None
        self._parent = ""
        self._flags = "00"
        self._stack: list[OpenSpan] = []
        self.finished: list[UserSpan] = []
        self.attributes: dict[str, Any] = {}

    def begin(self, traceparent: str) -> None:
        """Start an invocation under ``traceparent`` ("" or malformed: not traced)."""
        parts = traceparent.split("-")
        if len(parts) == 4 and len(parts[1]) == 32 and len(parts[2]) == 16 and len(parts[3]) == 2:
            self.trace_id, self._parent, self._flags = parts[1], parts[2], parts[3]
        else:
            self.trace_id, self._parent, self._flags = None, "", "00"
        self._stack.clear()
        self.finished = []
        self.attributes = {}

    @property
    def span_id(self) -> str | None:
        """The innermost open user span, else the invocation's span."""
        if self.trace_id is None:
            return None
        return self._stack[-1].span_id if self._stack else self._parent

    def traceparent(self) -> str | None:
        """Where a call made now (publish, send, invoke) sits in the trace."""
        span_id = self.span_id
        return None if span_id is None else f"00-{self.trace_id}-{span_id}-{self._flags}"

    def open(self, name: str, attributes: dict[str, Any]) -> OpenSpan:
        return OpenSpan(self, name, attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        if self._stack:
            self._stack[-1].attributes[str(key)] = attribute_value(value)
        else:
            self.attributes[str(key)] = attribute_value(value)

    def drain(self) -> tuple[list[UserSpan], dict[str, Any] | None]:
        spans, attributes = self.finished, self.attributes
        self.finished, self.attributes = [], {}
        return spans, attributes or None

    def _push(self, span: OpenSpan) -> str:
        parent = self.span_id or ""
        self._stack.append(span)
        return parent

    def _pop(self, span: OpenSpan, error: str | None) -> None:
        if span in self._stack:
            self._stack.remove(span)
        if self.trace_id is None or not int(self._flags, 16) & 1:
            return  # not traced, or not sampled: nothing to report
        self.finished.append(
            UserSpan(
                span.name, span.span_id, span.parent_id, span.start, time.time(),
                span.attributes, error,
            )
        )


class OpenSpan:
    """A span being timed; ``set_attribute`` adds to it. A context manager."""

    __slots__ = ("_recorder", "attributes", "name", "parent_id", "span_id", "start")

    def __init__(self, recorder: SpanRecorder, name: str, attributes: dict[str, Any]) -> None:
        self._recorder = recorder
        self.name = str(name)
        self.attributes = {str(k): attribute_value(v) for k, v in attributes.items()}
        self.span_id = f"{_ids.getrandbits(64) or 1:016x}"
        self.parent_id = ""
        self.start = 0.0

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[str(key)] = attribute_value(value)

    def __enter__(self) -> OpenSpan:
        self.parent_id = self._recorder._push(self)
        self.start = time.time()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        error = None if exc is None else f"{type(exc).__name__}: {exc}"
        self._recorder._pop(self, error)
