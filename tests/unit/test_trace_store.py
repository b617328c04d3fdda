"""The store's traces on each backend: spans batched in, a trace's summary kept up to date
as its spans land in any order, listing newest first by function, expiry of whole traces."""

from __future__ import annotations

from squall.model.traces import SpanRow
from squall.storage.sqlite.store import SqliteStore
from squall.storage.traces import ExpireSpans, PutSpans

TRACE = "a" * 32


def span(
    span_id: str, start: float, end: float, *, parent: str | None = None, status: str = "ok",
    trace: str = TRACE, function: str | None = None,
) -> SpanRow:
    attributes = {} if function is None else {"squall.function": function}
    return SpanRow(
        trace_id=trace, span_id=span_id * 16, parent_id=parent, name=f"op-{span_id}",
        kind="internal", start=start, end=end, status=status, attributes=attributes,
    )


async def test_a_trace_summary_follows_its_spans_in_any_order(store: SqliteStore) -> None:
    await store.commit([PutSpans([span("c", 1.5, 1.8, parent="b" * 16, status="error")])])
    [early] = await store.list_traces(function=None, before=None, limit=10)
    assert (early.name, early.spans, early.error) == ("op-c", 1, True)
    root = span("b", 1.0, 3.0, function="checkout")
    await store.commit([PutSpans([root, span("d", 2.0, 2.5, parent="b" * 16)])])
    [summary] = await store.list_traces(function=None, before=None, limit=10)
    assert summary.name == "op-b"  # the root names the trace once it lands
    assert (summary.start, summary.duration_ms, summary.spans) == (1.0, 2000.0, 3)
    assert summary.error and summary.functions == ["checkout"]
    assert [s.span_id[0] for s in await store.get_trace(TRACE)] == ["b", "c", "d"]
    await store.commit([PutSpans([root])])  # a span exported twice is kept once
    assert len(await store.get_trace(TRACE)) == 3


async def test_traces_list_newest_first_by_function_and_expire_whole(store: SqliteStore) -> None:
    traces = [f"{n:032x}" for n in range(3)]
    await store.commit([
        PutSpans([span("a", float(n), n + 0.5, trace=t, function=f"f{n % 2}")])
        for n, t in enumerate(traces)
    ])
    listed = await store.list_traces(function=None, before=None, limit=2)
    assert [t.trace_id for t in listed] == [traces[2], traces[1]]
    after = await store.list_traces(
        function=None, before=(listed[-1].start, listed[-1].trace_id), limit=10
    )
    assert [t.trace_id for t in after] == [traces[0]]
    assert [t.trace_id for t in await store.list_traces(function="f0", before=None, limit=10)] == [
        traces[2], traces[0]
    ]
    await store.commit([ExpireSpans(before=1.5)])
    assert [t.trace_id for t in await store.list_traces(function=None, before=None, limit=10)] == [
        traces[2]
    ]
    assert await store.get_trace(traces[0]) == []
