"""The platform's own log lines as JSON: one object a line, ids and fields where known."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, use_span

from squall.observe.log_format import configure, default_format


@pytest.fixture
def squall_logger() -> logging.Logger:
    logger = logging.getLogger("squall")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield logger
    logger.handlers, logger.propagate = saved[0], saved[2]
    logger.setLevel(saved[1])


def test_json_lines_carry_ids_fields_and_trace(squall_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure("json", stream)
    log = logging.getLogger("squall.dispatcher")
    log.info("plain %s", "message")
    log.warning(
        "settled", extra={"function": "billing", "invocation_id": "inv-1", "attempt": 2}
    )
    span = NonRecordingSpan(SpanContext(0xABC, 0xDEF, False, TraceFlags(1)))
    with use_span(span):
        try:
            raise ValueError("bad")
        except ValueError:
            log.exception("failed")
    logging.getLogger("other").warning("not ours")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 3
    first, second, third = lines
    assert first["message"] == "plain message" and first["level"] == "info"
    assert first["logger"] == "squall.dispatcher" and first["time"].endswith("+00:00")
    assert "trace_id" not in first and "fields" not in first
    assert second["function"] == "billing" and second["invocation_id"] == "inv-1"
    assert second["fields"] == {"attempt": 2}
    assert third["trace_id"] == f"{0xABC:032x}" and third["span_id"] == f"{0xDEF:016x}"
    assert "ValueError: bad" in third["exception"]


def test_text_format_and_defaults(squall_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure("text", stream)
    logging.getLogger("squall").warning("hello")
    assert stream.getvalue().rstrip().endswith("WARNING squall: hello")
    assert default_format(io.StringIO()) == "json"
    with pytest.raises(ValueError, match="yaml"):
        configure("yaml", stream)
