"""The platform's own log lines (``logging`` under ``squall``) on stderr, as JSON or text.

JSON: one object a line with ``time`` (RFC 3339, UTC), ``level``, ``logger``, ``message``;
``function``, ``invocation_id`` and ``trace_id``/``span_id`` where known (given with
``extra=`` or taken from the current span); the rest of ``extra=`` as ``fields``; and the
traceback as ``exception``.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec
from opentelemetry.trace import get_current_span

from squall.runtime.capture import extra_fields, json_fields

FORMATS = ("json", "text")
_IDS = ("function", "invocation_id", "trace_id", "span_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = extra_fields(record) or {}
        for key in _IDS:
            if key in fields:
                line[key] = str(fields.pop(key))
        context = get_current_span().get_span_context()
        if context.is_valid and "trace_id" not in line:
            line["trace_id"] = f"{context.trace_id:032x}"
            line["span_id"] = f"{context.span_id:016x}"
        if fields:
            line["fields"] = json_fields(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return msgspec.json.encode(line).decode()


def default_format(stream: TextIO) -> str:
    """JSON for machines (stderr piped or redirected), text for a person at a terminal."""
    return "text" if stream.isatty() else "json"


def configure(format: str | None = None, stream: TextIO | None = None) -> logging.Handler:
    """Send the ``squall`` loggers' lines (info and up) to ``stream`` (stderr) as ``format``."""
    stream = sys.stderr if stream is None else stream
    chosen = default_format(stream) if format is None else format
    if chosen not in FORMATS:
        raise ValueError(f"log format {chosen!r} is not one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream)
    if chosen == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("squall")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return handler
