"""Capture stdout, stderr and ``logging`` output of user code, per invocation.

Each line is structured: level, stream or logger, message, the fields given with it
(``ctx.log.info("…", order_id=7)`` or ``logging``'s ``extra=``) and the trace and span it
was written in.
"""

from __future__ import annotations

import io
import logging
import sys
import time
from typing import Any

import msgspec

from squall.model.invocation import LogEntry
from squall.runtime.spans import SpanRecorder

# What every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_KEYS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class Capture:
    """Collects log lines; ``drain()`` hands them over at the end of an invocation."""

    def __init__(self) -> None:
        self.lines: list[LogEntry] = []
        self.spans = SpanRecorder()  # the trace position lines are stamped with

    def add(
        self, level: str, stream: str, message: str, fields: dict[str, Any] | None = None
    ) -> None:
        spans = self.spans
        self.lines.append(
            LogEntry(
                time.time(),
                level,
                stream,
                message,
                json_fields(fields) if fields else None,
                spans.trace_id,
                spans.span_id,
            )
        )

    def drain(self) -> list[LogEntry]:
        lines, self.lines = self.lines, []
        return lines


class _Stream(io.TextIOBase):
    """A text stream that turns each written line into a log entry."""

    def __init__(self, capture: Capture, name: str, level: str) -> None:
        self._capture = capture
        self._name = name
        self._level = level
        self._partial = ""

    @property
    def name(self) -> str:
        return f"<{self._name}>"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        data = self._partial + text
        *complete, self._partial = data.split("\n")
        for line in complete:
            self._capture.add(self._level, self._name, line)
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self._capture.add(self._level, self._name, self._partial)
            self._partial = ""


class _Handler(logging.Handler):
    def __init__(self, capture: Capture) -> None:
        super().__init__(logging.DEBUG)
        self._capture = capture
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._capture.add(
                record.levelname.lower(), record.name, self.format(record), extra_fields(record)
            )
        except Exception:
            self.handleError(record)


class StructuredLog:
    """``ctx.log``: ``ctx.log.info("order placed", order_id=7)`` stores the keyword
    arguments as the line's fields."""

    __slots__ = ("_capture",)

    def __init__(self, capture: Capture) -> None:
        self._capture = capture

    def debug(self, message: str, **fields: Any) -> None:
        self._capture.add("debug", "log", str(message), fields)

    def info(self, message: str, **fields: Any) -> None:
        self._capture.add("info", "log", str(message), fields)

    def warning(self, message: str, **fields: Any) -> None:
        self._capture.add("warning", "log", str(message), fields)

    def error(self, message: str, **fields: Any) -> None:
        self._capture.add("error", "log", str(message), fields)

    def critical(self, message: str, **fields: Any) -> None:
        self._capture.add("critical", "log", str(message), fields)


def extra_fields(record: logging.LogRecord) -> dict[str, Any] | None:
    """What ``extra=`` put on ``record`` (None when nothing)."""
    extra = {k: v for k, v in vars(record).items() if k not in _RECORD_KEYS}
    return extra or None


def json_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with every value JSON can carry kept and any other turned into its repr."""
    safe: dict[str, Any] = {}
    for key, value in fields.items():
        try:
            msgspec.json.encode(value)
        except (TypeError, ValueError, OverflowError):
            value = repr(value)
        safe[str(key)] = value
    return safe


def install() -> Capture:
    """Route sys.stdout, sys.stderr and the root logger into one capture."""
    capture = Capture()
    sys.stdout = _Stream(capture, "stdout", "info")
    sys.stderr = _Stream(capture, "stderr", "error")
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_Handler(capture))
    if root.level == logging.WARNING:  # the untouched default: let info through, as Lambda does
        root.setLevel(logging.INFO)
    return capture


def flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
