"""Retention: the sweep deletes log lines and traces past their configured age, and only
those; structured fields and trace ids on stored log lines."""

from __future__ import annotations

import time

from conftest import StartPlatform

APP = """
import logging

import squall

app = squall.App("ret")


@app.function()
def talk(event, ctx):
    ctx.log.warning("structured", order_id=event["n"], tags=["a", "b"], obj=object())
    logging.getLogger("ret").info("from logging", extra={"user": "ann"})
    print("plain print")
    return ctx.trace_id
"""


async def test_log_lines_carry_fields_trace_and_version(platform: StartPlatform) -> None:
    p = await platform(APP)
    record = await p.invoke("talk", b'{"n": 3}')
    assert record.status == "succeeded"
    trace_id = record.trace_id
    assert trace_id is not None and record.result == f'"{trace_id}"'.encode()
    rows = await p.list_logs(trace_id=trace_id)
    by_message = {row.message: row for row in rows}
    structured = by_message["structured"]
    assert structured.level == "warning" and structured.stream == "log"
    assert structured.fields is not None
    assert structured.fields["order_id"] == 3 and structured.fields["tags"] == ["a", "b"]
    assert str(structured.fields["obj"]).startswith("<object object")
    assert by_message["from logging"].fields == {"user": "ann"}
    assert by_message["plain print"].fields is None
    assert {row.trace_id for row in rows} == {trace_id}
    assert {row.version for row in rows} == {"1"}
    assert all(row.span_id is not None and len(row.span_id) == 16 for row in rows)
    other = await p.invoke("talk", b'{"n": 4}')
    assert {row.invocation_id for row in await p.list_logs(trace_id=other.trace_id)} == {
        other.id
    }
    # the invocation record's lines keep their fields
    got = await p.get_invocation(record.id)
    assert any(line.fields == {"user": "ann"} for line in got.logs)


async def test_retention_sweep_drops_only_what_is_old(platform: StartPlatform) -> None:
    p = await platform(APP, log_retention_s=60.0, trace_retention_s=120.0)
    first = await p.invoke("talk", b'{"n": 1}')
    await p.tracing.flush()
    assert await p.list_logs(invocation_id=first.id)
    assert await p.traces.get(str(first.trace_id))

    # Now: nothing is old enough.
    await p.retention.sweep()
    assert await p.list_logs(invocation_id=first.id)
    assert await p.traces.get(str(first.trace_id))

    # 90 s later: logs (60 s) go, traces (120 s) stay.
    later = time.time() + 90
    await p.retention.sweep(now=later)
    assert await p.list_logs(invocation_id=first.id) == []
    assert await p.traces.get(str(first.trace_id))

    # 200 s later: the trace goes too, spans, summary and function index alike.
    await p.retention.sweep(now=time.time() + 200)
    page, _ = await p.traces.page(function="talk")
    assert all(t.trace_id != first.trace_id for t in page)
    spans = await p._store.get_trace(str(first.trace_id))
    assert spans == []


async def test_retention_runs_by_itself(platform: StartPlatform) -> None:
    p = await platform(APP, log_retention_s=0.2, retention_sweep_s=0.1)
    record = await p.invoke("talk", b'{"n": 1}')
    assert await p.list_logs(invocation_id=record.id)
    deadline = time.monotonic() + 10
    while await p.list_logs(invocation_id=record.id):
        assert time.monotonic() < deadline, "the sweep never ran"
        await __import__("asyncio").sleep(0.1)
