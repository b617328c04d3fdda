"""User spans and structured lines in the sandbox, without a sandbox process."""

from __future__ import annotations

import logging

import pytest

from squall.runtime.capture import Capture, StructuredLog
from squall.runtime.spans import SpanRecorder

TRACE = "0af7651916cd43dd8448eb211c80319c"
INVOKE = "b7ad6b7169203331"


def test_spans_nest_under_the_invocation_and_stamp_lines() -> None:
    capture = Capture()
    spans = capture.spans
    spans.begin(f"00-{TRACE}-{INVOKE}-01")
    log = StructuredLog(capture)
    log.info("outside", a=1)
    with spans.open("outer", {"k": "v"}) as outer:
        outer.set_attribute("n", 2)
        with spans.open("inner", {"obj": object()}):
            log.error("inside")
            assert spans.traceparent() == f"00-{TRACE}-{spans.span_id}-01"
        spans.set_attribute("late", [1, 2])
    spans.set_attribute("on_invocation", True)
    with pytest.raises(KeyError), spans.open("broken", {}):
        raise KeyError("x")
    made, attributes = spans.drain()
    assert attributes == {"on_invocation": True}
    inner, outer_span, broken = made
    assert outer_span.parent_id == INVOKE and inner.parent_id == outer_span.span_id
    assert outer_span.attributes == {"k": "v", "n": 2, "late": [1, 2]}
    assert str(inner.attributes["obj"]).startswith("<object")
    assert broken.error == "KeyError: 'x'"
    assert inner.start >= outer_span.start and inner.end <= outer_span.end
    first, second = capture.drain()
    assert (first.fields, first.trace_id, first.span_id) == ({"a": 1}, TRACE, INVOKE)
    assert second.span_id == inner.span_id and second.level == "error"
    assert spans.drain() == ([], None)


def test_unsampled_or_untraced_invocations_report_no_spans() -> None:
    spans = SpanRecorder()
    spans.begin(f"00-{TRACE}-{INVOKE}-00")
    with spans.open("quiet", {}):
        assert spans.traceparent() is not None  # still propagated
    assert spans.drain() == ([], None)
    spans.begin("")
    assert spans.trace_id is None and spans.traceparent() is None
    with spans.open("untraced", {}):
        pass
    assert spans.drain()[0] == []


def test_logging_extra_becomes_fields() -> None:
    capture = Capture()
    logger = logging.getLogger("test_user_spans")
    from squall.runtime.capture import _Handler

    handler = _Handler(capture)
    logger.addHandler(handler)
    try:
        logger.warning("hi %s", "there", extra={"order_id": 9})
    finally:
        logger.removeHandler(handler)
    [line] = capture.drain()
    assert line.message == "hi there" and line.fields == {"order_id": 9}
    assert line.trace_id is None
