"""The JetStream work queue's contract, against a real NATS server (see ``nats_service``)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from nats_service import NATS_URL, JetStreams, jetstreams

from squall.errors import ConfigError
from squall.storage.nats import JetStreamQueue, LeasedDelivery, QueueSpec
from squall.storage.protocols import Ack, Bury, Delivery, Retry


@pytest.fixture
async def js() -> AsyncIterator[JetStreams]:
    async with jetstreams() as streams:
        yield streams


def delivery(queue: str, n: int = 0, *, delay_s: float = 0.0) -> Delivery:
    now = time.time()
    return Delivery(
        id=f"d-{uuid.uuid4().hex}",
        queue=queue,
        payload=f'{{"n": {n}}}'.encode(),
        invocation_id=f"i-{n}-{uuid.uuid4().hex[:8]}",
        enqueued_at=now,
        available_at=now + delay_s,
        headers={"traceparent": f"00-{n:032x}-{n:016x}-01"},
    )


async def lease_until(
    queue: JetStreamQueue, name: str, want: int, visibility_s: float, timeout: float = 5.0
) -> list[LeasedDelivery]:
    """Lease until ``want`` deliveries came or ``timeout`` passed.

    One long fetch rather than many short ones: nats-server 2.9 may count a redelivery
    that comes due just as a fetch expires as delivered without handing it over (it is
    back after its ack wait, an attempt spent), which would make attempt counts flaky.
    """
    got: list[LeasedDelivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and (left := deadline - time.monotonic()) > 0.01:
        got += await queue.lease(name, want - len(got), visibility_s, wait_s=left)
    return got


async def test_publish_lease_ack_in_order(js: JetStreams) -> None:
    q = await js.open()
    await q.declare(QueueSpec(name="fn:resize", visibility_s=5))
    sent = [delivery("fn:resize", n) for n in range(5)]
    for d in sent:
        assert await q.publish(d)
    assert q.subject("fn:resize") == f"{js.prefix}.work.fn.resize"
    leased = await lease_until(q, "fn:resize", 5, 5)
    assert [d.id for d in leased] == [d.id for d in sent]
    first = leased[0]
    assert (first.payload, first.invocation_id, first.headers) == (
        sent[0].payload,
        sent[0].invocation_id,
        sent[0].headers,
    )
    assert all(d.attempts == 1 and not d.last_attempt for d in leased)
    for d in leased:
        await q.ack(d)
    assert await q.depth("fn:resize") == 0
    assert await q.lease("fn:resize", 10, 5) == []


async def test_duplicate_publish_is_dropped(js: JetStreams) -> None:
    q = await js.open()
    await q.declare(QueueSpec(name="fn:a", visibility_s=5))
    d = delivery("fn:a")
    assert await q.publish(d) is True
    assert await q.publish(d) is False  # same id inside the duplicate window
    keyed = [delivery("fn:a", 1), delivery("fn:a", 2)]
    assert await q.publish(keyed[0], dedup_key="order-7") is True
    assert await q.publish(keyed[1], dedup_key="order-7") is False
    leased = await lease_until(q, "fn:a", 3, 5, timeout=1.5)
    assert sorted(x.id for x in leased) == sorted([d.id, keyed[0].id])


async def test_retry_redelivers_after_its_delay(js: JetStreams) -> None:
    q = await js.open()
    await q.declare(QueueSpec(name="fn:r", visibility_s=10, retries=3))
    await q.publish(delivery("fn:r"))
    [first] = await lease_until(q, "fn:r", 1, 10)
    started = time.monotonic()
    await q.retry(first, 0.8)
    assert await q.lease("fn:r", 1, 10, wait_s=0.3) == []  # not before its delay
    [again] = await lease_until(q, "fn:r", 1, 10)
    assert time.monotonic() - started >= 0.7
    assert again.id == first.id and again.attempts == 2
    await q.ack(again)


async def test_bury_stops_redelivery(js: JetStreams) -> None:
    q = await js.open()
    await q.declare(QueueSpec(name="fn:b", visibility_s=0.5))
    await q.publish(delivery("fn:b"))
    [d] = await lease_until(q, "fn:b", 1, 0.5)
    letter = q.dead_letter(d, function="b", error={"type": "FunctionError"}, now=time.time())
    assert (letter.id, letter.invocation_id, letter.attempts) == (d.id, d.invocation_id, 1)
    await q.bury(d)
    await asyncio.sleep(0.8)  # past the ack wait: a live message would be back
    assert await q.lease("fn:b", 1, 0.5, wait_s=0.3) == []


async def test_after_the_last_attempt_comes_one_delivery_to_dead_letter(js: JetStreams) -> None:
    q = await js.open()
    spec = QueueSpec(name="fn:m", visibility_s=0.5, retries=1)
    await q.declare(spec)
    info = await q._js.consumer_info(q.work_stream, "fn~3Am")
    assert (spec.attempts, info.config.max_deliver) == (2, 3)
    await q.publish(delivery("fn:m"))
    [one] = await lease_until(q, "fn:m", 1, 0.5)
    assert (one.attempts, one.last_attempt, one.exhausted) == (1, False, False)
    await q.retry(one, 0)
    [two] = await lease_until(q, "fn:m", 1, 0.5)
    assert (two.attempts, two.last_attempt, two.exhausted) == (2, True, False)
    # The process running the last attempt dies: nothing settles it, its ack wait passes.
    [dead] = await lease_until(q, "fn:m", 1, 0.5)
    assert (dead.id, dead.attempts, dead.exhausted) == (one.id, 3, True)
    await q.bury(dead)
    await asyncio.sleep(0.7)
    assert await q.lease("fn:m", 1, 0.5, wait_s=0.3) == []  # max_deliver reached


_LEASE_AND_HANG = textwrap.dedent(
    """
    import asyncio, sys
    from squall.storage.nats import ConnectOptions, JetStreamConfig, JetStreamQueue, QueueSpec

    async def main():
        config = JetStreamConfig(
            connect=ConnectOptions(url=sys.argv[1], attempts=1), prefix=sys.argv[2],
            memory=True, move_delays=False,
        )
        q = await JetStreamQueue.open(config)
        await q.declare(QueueSpec(name="fn:work", visibility_s=1.0))
        got = []
        while len(got) < 40:
            got += await q.lease("fn:work", 40 - len(got), 1.0, wait_s=0.5)
        print("leased", " ".join(d.id for d in got), flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


async def test_deliveries_of_a_killed_consumer_are_redelivered(js: JetStreams) -> None:
    q = await js.open()
    await q.declare(QueueSpec(name="fn:work", visibility_s=1.0))
    sent = [delivery("fn:work", n) for n in range(200)]
    for d in sent[:100]:
        await q.publish(d)
    child = subprocess.Popen(
        [sys.executable, "-c", _LEASE_AND_HANG, NATS_URL, js.prefix],
        stdout=subprocess.PIPE,
        text=True,
    )
    done: dict[str, int] = {}  # delivery id -> times this consumer completed it
    redelivered: set[str] = set()

    async def work(leased: list[LeasedDelivery]) -> None:
        for d in leased:
            await q.ack(d)
            done[d.id] = done.get(d.id, 0) + 1
            if d.attempts == 2:
                redelivered.add(d.id)

    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 20)
        held = set(line.split()[1:])
        assert len(held) == 40
        # Under load: more is published and this consumer works while the other dies.
        for d in sent[100:]:
            await q.publish(d)
        # Under load the held ones may come back already (their ack wait is 1 s).
        await work(await q.lease("fn:work", 50, 1.0, wait_s=0.5))
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    # What the dead consumer held comes back after its ack wait; nothing is lost or doubled.
    deadline = time.monotonic() + 15
    while len(done) < len(sent) and time.monotonic() < deadline:
        await work(await q.lease("fn:work", 100, 1.0, wait_s=0.3))
    assert sorted(done) == sorted(d.id for d in sent)
    assert set(done.values()) == {1}
    assert redelivered == held
    assert await q.depth("fn:work") == 0


async def test_fifo_queue_keeps_order_through_retries(js: JetStreams) -> None:
    q = await js.open()
    await q.declare(QueueSpec(name="fifo:orders:customer-1", visibility_s=5, fifo=True))
    sent = [delivery("fifo:orders:customer-1", n) for n in range(4)]
    for d in sent:
        await q.publish(d)
    order: list[str] = []
    retried = False
    while len(order) < 4:
        batch = await q.lease("fifo:orders:customer-1", 10, 5, wait_s=0.5)
        assert len(batch) <= 1  # one in flight at a time
        if not batch:
            continue
        [d] = batch
        if d.id == sent[1].id and not retried:
            retried = True
            await q.retry(d, 0.3)  # the next one must wait for it
            continue
        order.append(d.id)
        await q.ack(d)
    assert order == [d.id for d in sent]


async def test_delayed_publish_is_due_later(js: JetStreams) -> None:
    q = await js.open()
    await q.declare(QueueSpec(name="fn:later", visibility_s=5))
    d = delivery("fn:later", delay_s=1.0)
    assert await q.publish(d)
    assert await q.depth("fn:later") == 1  # parked, not lost
    assert await q.lease("fn:later", 1, 5, wait_s=0.4) == []
    [due] = await lease_until(q, "fn:later", 1, 5)
    assert time.time() >= d.available_at
    assert due.id == d.id and due.attempts == 1  # the wait was not an attempt
    await q.ack(due)


async def test_in_progress_keeps_the_lease(js: JetStreams) -> None:
    q = await js.open()
    other = await js.open(move_delays=False)
    spec = QueueSpec(name="fn:long", visibility_s=1.0)
    await q.declare(spec)
    await other.declare(spec)
    await q.publish(delivery("fn:long"))
    [d] = await lease_until(q, "fn:long", 1, 1.0)
    for _ in range(4):  # 2 s of work, four times the ack wait's half
        await asyncio.sleep(0.5)
        await q.in_progress(d)
    assert await other.lease("fn:long", 1, 1.0, wait_s=0.2) == []
    await q.ack(d)


async def test_settle_applies_a_units_ops(js: JetStreams) -> None:
    q = await js.open()
    await q.declare(QueueSpec(name="fn:s", visibility_s=1.0))
    sent = [delivery("fn:s", n) for n in range(3)]
    for d in sent:
        await q.publish(d)
    leased = {d.id: d for d in await lease_until(q, "fn:s", 3, 1.0)}
    a, r, b = (s.id for s in sent)
    now = time.time()
    letter = q.dead_letter(leased[b], function="s", error={}, now=now)
    await q.settle([Ack(a), Retry(r, now + 0.2), Bury(b, letter), Ack("not-leased")], leased)
    [back] = await lease_until(q, "fn:s", 1, 1.0)
    assert (back.id, back.attempts) == (r, 2)
    await q.ack(back)
    await asyncio.sleep(1.2)  # past the ack wait: nothing acked or buried comes back
    assert await q.lease("fn:s", 3, 1.0, wait_s=0.3) == []


async def test_streams_and_consumers_are_made_idempotently(js: JetStreams) -> None:
    first = await js.open()
    assert set(first.ensured.values()) == {"created"}
    spec = QueueSpec(name="fn:idem", visibility_s=5, retries=2)
    assert await first.declare(spec) == "created"
    second = await js.open(move_delays=False)
    assert set((await second.ensure_streams()).values()) == {"unchanged"}
    assert await second.declare(spec) == "unchanged"
    assert await second.declare(QueueSpec(name="fn:idem", visibility_s=7, retries=4)) == "updated"
    info = await second._js.consumer_info(second.work_stream, "fn~3Aidem")
    assert (info.config.ack_wait, info.config.max_deliver) == (7.0, 6)
    # A lease asking for another visibility makes it the consumer's ack wait.
    assert await second.lease("fn:idem", 1, 9.0, wait_s=0.05) == []
    info = await second._js.consumer_info(second.work_stream, "fn~3Aidem")
    assert info.config.ack_wait == 9.0
    # A changed duplicate window updates the streams in place; the mover's consumer stays.
    third = await js.open(move_delays=False, duplicate_window_s=60.0)
    assert third.ensured == {
        third.work_stream: "updated",
        third.delay_stream: "updated",
        "delays": "unchanged",
    }
    stream = await third._js.stream_info(third.work_stream)
    assert stream.config.duplicate_window == 60.0


async def test_undeclared_queue_and_bad_names_are_rejected(js: JetStreams) -> None:
    q = await js.open()
    with pytest.raises(ConfigError) as caught:
        await q.lease("fn:nobody", 1, 5)
    assert caught.value.field == "queue"
    with pytest.raises(ConfigError) as bad:
        QueueSpec(name="fn:", visibility_s=5)
    assert bad.value.field == "queue"
