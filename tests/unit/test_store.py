"""The store contract, on SQLite and PostgreSQL: work queue, state, units of work, group commit."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
import pytest

from squall.errors import Conflict
from squall.model.ids import new_id
from squall.model.invocation import DeadLetter, InvocationRecord, LogEntry
from squall.storage import open_store
from squall.storage.protocols import (
    Ack,
    AppendLogs,
    Bury,
    Delivery,
    Enqueue,
    PutIdempotency,
    PutInvocation,
    Retry,
    TakeDeadLetter,
)
from squall.storage.sqlite.store import SqliteStore

Q = "fn:resize"


def delivery(
    queue: str = Q, payload: bytes = b"{}", available_at: float | None = None, **headers: str
) -> Delivery:
    now = time.time()
    did = new_id()
    return Delivery(
        id=did,
        queue=queue,
        payload=payload,
        invocation_id=did,
        enqueued_at=now,
        available_at=now if available_at is None else available_at,
        headers=dict(headers),
    )


def record(function: str = "resize", status: str = "queued", **fields: object) -> InvocationRecord:
    return InvocationRecord(
        id=new_id(),
        function=function,
        version="v1",
        trigger="async",
        status=status,
        created_at=time.time(),
        **fields,
    )


def letter(d: Delivery, function: str = "resize") -> DeadLetter:
    return DeadLetter(
        id=d.id,
        function=function,
        invocation_id=d.invocation_id,
        payload=d.payload,
        error={"type": "FunctionError", "message": "boom", "condition": "RetriesExhausted"},
        attempts=3,
        enqueued_at=d.enqueued_at,
        failed_at=time.time(),
    )


async def test_open_store_by_url(tmp_path: Path) -> None:
    opened = await open_store(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        assert isinstance(opened, SqliteStore)
        assert await opened.depth() == 0
    finally:
        await opened.close()
    assert (tmp_path / "a.db").exists()


async def test_enqueue_lease_ack(store: SqliteStore) -> None:
    d = delivery(payload=b'{"n": 1}', trigger="async")
    await store.commit([Enqueue(d)])
    assert await store.depth(Q) == 1
    assert await store.depth("fn:other") == 0
    leased = await store.lease(Q, 10, 30)
    assert len(leased) == 1
    got = leased[0]
    assert (got.id, got.payload, got.invocation_id, got.attempts) == (d.id, b'{"n": 1}', d.id, 1)
    assert got.headers == {"trigger": "async"}
    assert got.queue == Q
    await store.commit([Ack(d.id)])
    assert await store.depth() == 0
    assert await store.lease(Q, 10, 30) == []


async def test_lease_respects_limit_order_and_queue(store: SqliteStore) -> None:
    ds = [delivery() for _ in range(5)]
    other = delivery(queue="fn:other")
    await store.commit([Enqueue(d) for d in ds] + [Enqueue(other)])
    first = await store.lease(Q, 3, 30)
    second = await store.lease(Q, 3, 30)
    assert [d.id for d in first] == [d.id for d in ds[:3]]
    assert [d.id for d in second] == [d.id for d in ds[3:]]
    assert [d.id for d in await store.lease("fn:other", 10, 30)] == [other.id]


async def test_future_delivery_is_not_due(store: SqliteStore) -> None:
    later = time.time() + 60
    await store.commit([Enqueue(delivery(available_at=later))])
    assert await store.lease(Q, 10, 30) == []
    assert await store.next_due(Q) == pytest.approx(later)
    assert await store.next_due("fn:empty") is None


async def test_leased_delivery_is_invisible_until_visibility_passes(store: SqliteStore) -> None:
    d = delivery()
    await store.commit([Enqueue(d)])
    assert len(await store.lease(Q, 10, 0.3)) == 1
    assert await store.lease(Q, 10, 0.3) == []  # invisible while leased
    assert await store.depth(Q) == 1  # but still there
    deadline = time.monotonic() + 5
    while not (again := await store.lease(Q, 10, 30)):
        assert time.monotonic() < deadline, "lease never expired"
        await asyncio.sleep(0.02)
    assert [x.id for x in again] == [d.id]
    assert again[0].attempts == 2


async def test_retry_makes_delivery_due_later(store: SqliteStore) -> None:
    d = delivery()
    await store.commit([Enqueue(d)])
    await store.lease(Q, 1, 30)
    due = time.time() + 0.2
    await store.commit([Retry(d.id, due)])
    assert await store.lease(Q, 1, 30) == []
    assert await store.next_due(Q) == pytest.approx(due)
    await asyncio.sleep(max(0.0, due - time.time()) + 0.01)
    again = await store.lease(Q, 1, 30)
    assert [x.id for x in again] == [d.id]
    assert again[0].attempts == 2


async def test_bury_moves_delivery_to_dead_letters(store: SqliteStore) -> None:
    d = delivery(payload=b'{"x": 1}')
    await store.commit([Enqueue(d)])
    await store.lease(Q, 1, 30)
    await store.commit([Bury(d.id, letter(d))])
    assert await store.depth() == 0
    [dead] = await store.list_dead_letters(function=None, ids=None, limit=10)
    expected = letter(d)
    assert (dead.id, dead.function, dead.invocation_id, dead.attempts, dead.enqueued_at) == (
        expected.id,
        expected.function,
        expected.invocation_id,
        3,
        d.enqueued_at,
    )
    assert dead.payload == b'{"x": 1}'
    assert dead.error["condition"] == "RetriesExhausted"
    assert dead.public()["payload"] == {"x": 1}


async def test_list_dead_letters_filters(store: SqliteStore) -> None:
    a, b, c = delivery(), delivery(), delivery(queue="fn:other")
    await store.commit([Enqueue(a), Enqueue(b), Enqueue(c)])
    await store.commit(
        [Bury(a.id, letter(a)), Bury(b.id, letter(b)), Bury(c.id, letter(c, "other"))]
    )
    by_fn = await store.list_dead_letters(function="resize", ids=None, limit=10)
    assert {x.id for x in by_fn} == {a.id, b.id}
    by_id = await store.list_dead_letters(function=None, ids=[c.id, b.id], limit=10)
    assert {x.id for x in by_id} == {b.id, c.id}
    assert len(await store.list_dead_letters(function=None, ids=None, limit=1)) == 1


async def test_dedup_key_drops_second_enqueue(store: SqliteStore) -> None:
    first, second = delivery(payload=b"1"), delivery(payload=b"2")
    await store.commit([Enqueue(first, dedup_key="evt-1")])
    await store.commit([Enqueue(second, dedup_key="evt-1")])
    assert await store.depth(Q) == 1
    [got] = await store.lease(Q, 10, 30)
    assert got.id == first.id
    assert got.payload == b"1"
    # the key is per queue, and deliveries without a key never collide
    await store.commit([Enqueue(delivery(queue="fn:other"), dedup_key="evt-1")])
    await store.commit([Enqueue(delivery()), Enqueue(delivery())])
    assert await store.depth("fn:other") == 1
    assert await store.depth(Q) == 3


async def test_recover_after_restart(store_url: str) -> None:
    first = await open_store(store_url)
    d = delivery()
    await first.commit([Enqueue(d)])
    [leased] = await first.lease(Q, 10, 600)
    assert leased.attempts == 1
    await first.close()

    second = await open_store(store_url)
    try:
        assert await second.lease(Q, 10, 600) == []  # still invisible: the lease persisted
        assert await second.recover() == 1
        [again] = await second.lease(Q, 10, 600)
        assert again.id == d.id
        assert again.attempts == 1  # the attempt the dead process held was given back
        assert await second.recover() == 1
        assert await second.recover() == 0
    finally:
        await second.close()


async def test_unit_with_missing_dead_letter_is_atomic(store: SqliteStore) -> None:
    d = delivery()
    r = record()
    with pytest.raises(Conflict) as info:
        await store.commit(
            [
                Enqueue(d),
                PutInvocation(r),
                AppendLogs(r.id, "resize", [LogEntry(time.time(), "info", "stdout", "x")]),
                PutIdempotency("resize", "k", r.id, time.time() + 60),
                TakeDeadLetter("missing-letter"),
            ]
        )
    assert "missing-letter" in str(info.value)
    assert await store.depth() == 0
    assert await store.get_invocation(r.id) is None
    assert await store.find_idempotent("resize", "k", time.time()) is None
    logs = await store.list_logs(
        function=None, invocation_id=None, since=None, after=None, level=None, limit=10
    )
    assert logs == []


async def test_failing_unit_does_not_spoil_its_group(store: SqliteStore) -> None:
    good, bad = record(), record()
    results = await asyncio.gather(
        store.commit([PutInvocation(good)]),
        store.commit([PutInvocation(bad), TakeDeadLetter("nope")]),
        return_exceptions=True,
    )
    assert results[0] is None
    assert isinstance(results[1], Conflict)
    assert await store.get_invocation(good.id) is not None
    assert await store.get_invocation(bad.id) is None


async def test_take_dead_letter_twice_conflicts(store: SqliteStore) -> None:
    d = delivery()
    await store.commit([Enqueue(d)])
    await store.commit([Bury(d.id, letter(d))])
    await store.commit([TakeDeadLetter(d.id)])
    assert await store.list_dead_letters(function=None, ids=None, limit=10) == []
    with pytest.raises(Conflict):
        await store.commit([TakeDeadLetter(d.id)])


async def test_commit_soon_lands_after_barrier(store: SqliteStore) -> None:
    r = record(status="succeeded")
    r.logs = [LogEntry(time.time(), "info", "stdout", "lazy line")]
    store.commit_soon([PutInvocation(r), AppendLogs(r.id, r.function, r.logs)])
    await store.commit(())
    got = await store.get_invocation(r.id)
    assert got is not None
    assert got.status == "succeeded"
    assert [line.message for line in got.logs] == ["lazy line"]


async def test_commit_soon_lands_on_its_own(store: SqliteStore) -> None:
    r = record()
    store.commit_soon([PutInvocation(r)])
    deadline = time.monotonic() + 2
    while await store.get_invocation(r.id) is None:
        assert time.monotonic() < deadline, "lazy commit never landed"
        await asyncio.sleep(0.01)


async def test_put_invocation_replaces_and_keeps_logs_apart(store: SqliteStore) -> None:
    r = record(idempotency_key="k1")
    await store.commit([PutInvocation(r)])
    r.status = "succeeded"
    r.result = b'{"ok": true}'
    r.logs = [LogEntry(1.0, "info", "stdout", "only in logs table")]
    await store.commit([PutInvocation(r)])
    assert r.logs  # the caller's record is left as it was
    got = await store.get_invocation(r.id)
    assert got is not None
    assert got.status == "succeeded"
    assert got.result == b'{"ok": true}'
    assert got.idempotency_key == "k1"
    assert got.logs == []  # lines live in the logs table; none were appended


async def test_list_invocations_filters_and_pages(store: SqliteStore) -> None:
    rs = [record(status="succeeded") for _ in range(3)] + [record("other", status="failed")]
    await store.commit([PutInvocation(r) for r in rs])
    newest_first = await store.list_invocations(function=None, status=None, limit=10, before=None)
    assert [r.id for r in newest_first] == [r.id for r in reversed(rs)]
    failed = await store.list_invocations(function=None, status="failed", limit=10, before=None)
    assert [r.id for r in failed] == [rs[3].id]
    mine = await store.list_invocations(function="resize", status=None, limit=2, before=None)
    assert [r.id for r in mine] == [rs[2].id, rs[1].id]
    older = await store.list_invocations(function="resize", status=None, limit=10, before=rs[1].id)
    assert [r.id for r in older] == [rs[0].id]


async def test_list_logs_level_filter_and_after_cursor(store: SqliteStore) -> None:
    now = time.time()
    levels = ["debug", "info", "warning", "error", "critical", "info"]
    lines = [LogEntry(now + i, lvl, "app", f"m{i}") for i, lvl in enumerate(levels)]
    await store.commit([AppendLogs("inv-a", "resize", lines[:3])])
    await store.commit([AppendLogs("inv-b", "other", lines[3:])])

    async def logs(**kw: object) -> list[str]:
        args: dict[str, object] = dict(
            function=None, invocation_id=None, since=None, after=None, level=None, limit=100
        )
        args.update(kw)
        return [row.message for row in await store.list_logs(**args)]

    assert await logs() == ["m0", "m1", "m2", "m3", "m4", "m5"]
    assert await logs(level="warning") == ["m2", "m3", "m4"]
    assert await logs(level="error") == ["m3", "m4"]
    assert await logs(level="debug") == ["m0", "m1", "m2", "m3", "m4", "m5"]
    assert await logs(function="other") == ["m3", "m4", "m5"]
    assert await logs(invocation_id="inv-a", level="info") == ["m1", "m2"]
    assert await logs(since=now + 4) == ["m4", "m5"]

    rows = await store.list_logs(
        function=None, invocation_id=None, since=None, after=None, level=None, limit=2
    )
    assert [r.message for r in rows] == ["m0", "m1"]
    assert rows[0].seq < rows[1].seq
    assert rows[0].invocation_id == "inv-a" and rows[0].function == "resize"
    assert await logs(after=rows[-1].seq) == ["m2", "m3", "m4", "m5"]
    assert await logs(after=rows[-1].seq, level="error") == ["m3", "m4"]
    last = (
        await store.list_logs(
            function=None, invocation_id=None, since=None, after=None, level=None, limit=100
        )
    )[-1]
    assert await logs(after=last.seq) == []


async def test_get_invocation_includes_its_logs(store: SqliteStore) -> None:
    r = record()
    await store.commit(
        [
            PutInvocation(r),
            AppendLogs(
                r.id,
                r.function,
                [LogEntry(1.0, "info", "stdout", "a"), LogEntry(2.0, "error", "stderr", "b")],
            ),
            AppendLogs("someone-else", r.function, [LogEntry(1.5, "info", "stdout", "z")]),
        ]
    )
    got = await store.get_invocation(r.id)
    assert got is not None
    assert got.logs == [LogEntry(1.0, "info", "stdout", "a"), LogEntry(2.0, "error", "stderr", "b")]


async def test_idempotency_expiry(store: SqliteStore) -> None:
    now = time.time()
    await store.commit([PutIdempotency("resize", "key-1", "inv-1", now + 10)])
    assert await store.find_idempotent("resize", "key-1", now) == "inv-1"
    assert await store.find_idempotent("resize", "key-1", now + 9.9) == "inv-1"
    assert await store.find_idempotent("resize", "key-1", now + 10) is None
    assert await store.find_idempotent("resize", "key-1", now + 20) is None
    assert await store.find_idempotent("other", "key-1", now) is None
    assert await store.find_idempotent("resize", "key-2", now) is None
    # an expired key may be bound again
    await store.commit([PutIdempotency("resize", "key-1", "inv-2", now + 100)])
    assert await store.find_idempotent("resize", "key-1", now + 20) == "inv-2"


async def test_rules_are_kept_replaced_and_deleted(store_url: str) -> None:
    from squall.model.rules import RuleConfig
    from squall.model.targets import HttpTarget, InputTransformer
    from squall.storage.protocols import DeleteRule, PutRule

    target = HttpTarget(
        "https://example.com/hook",
        id="0",
        input_transformer=InputTransformer(input_template="<a>", input_paths_map={"a": "$.id"}),
    )
    rule = RuleConfig(name="b", pattern={"type": ["t"]}, targets=(target,), origin="api")
    store = await open_store(store_url)
    await store.commit([PutRule(rule), PutRule(RuleConfig(name="a", pattern={"x": [1]}))])
    await store.commit([PutRule(msgspec.structs.replace(rule, enabled=False))])
    await store.close()
    reopened = await open_store(store_url)
    try:
        listed = await reopened.list_rules()
        assert [r.name for r in listed] == ["a", "b"]
        assert listed[1] == msgspec.structs.replace(rule, enabled=False)
        await reopened.commit([DeleteRule("a"), DeleteRule("missing")])
        assert [r.name for r in await reopened.list_rules()] == ["b"]
    finally:
        await reopened.close()
