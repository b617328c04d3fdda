"""Exactly-once across the state store and JetStream, against a real NATS: a unit's
deliveries survive a crash right after the state commit, a relay killed between publishing
and deleting its rows queues nothing twice (JetStream drops the second publish by
``Nats-Msg-Id``), and a delivery redelivered after its unit committed is only acked."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats_service import NATS_URL, JetStreams, jetstreams

from squall.model.invocation import InvocationRecord
from squall.storage.nats import OutboxRelay, QueueSpec, ack_finished
from squall.storage.protocols import Delivery, PutInvocation, PutOutbox
from squall.storage.sqlite.store import SqliteStore


@pytest.fixture
async def js() -> AsyncIterator[JetStreams]:
    async with jetstreams() as streams:
        yield streams


# Commits a unit (an invocation's record and five deliveries in the outbox), then dies
# before anything could publish them.
_COMMIT_AND_DIE = textwrap.dedent(
    """
    import asyncio, os, signal, sys, time
    from pathlib import Path
    from squall.model.invocation import InvocationRecord
    from squall.storage.protocols import Delivery, PutInvocation, PutOutbox
    from squall.storage.sqlite.store import SqliteStore

    async def main():
        store = await SqliteStore.open(Path(sys.argv[1]))
        now = time.time()
        ops = [
            PutOutbox(Delivery(id=f"d{n}", queue="fn:out", payload=b"{}",
                               invocation_id=f"i{n}", enqueued_at=now, available_at=now))
            for n in range(5)
        ]
        await store.commit(ops)
        print("committed", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
    """
)

# Relays the outbox, and dies (SIGKILL) after its third publish was acked: before the
# rows it published could be deleted.
_RELAY_AND_DIE = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from pathlib import Path
    from squall.storage.nats import ConnectOptions, JetStreamConfig, JetStreamQueue, OutboxRelay
    from squall.storage.sqlite.store import SqliteStore

    class DiesAfterThree:
        def __init__(self, queue):
            self.queue, self.count = queue, 0

        async def publish(self, delivery, dedup_key=None):
            stored = await self.queue.publish(delivery, dedup_key)
            self.count += 1
            if self.count == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            return stored

    async def main():
        store = await SqliteStore.open(Path(sys.argv[1]))
        config = JetStreamConfig(connect=ConnectOptions(url=sys.argv[2], attempts=1),
                                 prefix=sys.argv[3], memory=True, move_delays=False)
        queue = await JetStreamQueue.open(config)
        await OutboxRelay(store, DiesAfterThree(queue)).relay_once()

    asyncio.run(main())
    """
)


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60
    )


async def test_outbox_survives_crashes_without_loss_or_duplicates(
    js: JetStreams, tmp_path: Path
) -> None:
    q = await js.open()
    await q.declare(QueueSpec(name="fn:out", visibility_s=30))
    db = tmp_path / "squall.db"

    committed = await asyncio.to_thread(run, _COMMIT_AND_DIE, str(db))
    assert committed.returncode == -9 and "committed" in committed.stdout, committed.stderr
    relayed = await asyncio.to_thread(run, _RELAY_AND_DIE, str(db), NATS_URL, js.prefix)
    assert relayed.returncode == -9, relayed.stderr

    store = await SqliteStore.open(db)
    try:
        # All five rows are still there: the three published ones were never deleted.
        assert [r.delivery.id for r in await store.pending_outbox(10)] == [
            f"d{n}" for n in range(5)
        ]
        assert await q.depth("fn:out") == 3
        relay = OutboxRelay(store, q)
        assert await relay.relay_once() == 5
        assert await store.pending_outbox(10) == []
    finally:
        await store.close()

    leased = []
    while len(leased) < 6:  # one more than were sent: a duplicate would show up here
        batch = await q.lease("fn:out", 10, 30, wait_s=0.5)
        if not batch:
            break
        leased += batch
    assert [d.id for d in leased] == [f"d{n}" for n in range(5)]
    assert all(d.attempts == 1 for d in leased)


async def test_relay_task_publishes_what_is_committed(js: JetStreams, tmp_path: Path) -> None:
    q = await js.open()
    await q.declare(QueueSpec(name="fn:live", visibility_s=30))
    store = await SqliteStore.open(tmp_path / "squall.db")
    relay = OutboxRelay(store, q, poll_s=5.0)
    task = asyncio.create_task(relay.run())
    try:
        now = time.time()
        await store.commit(
            [
                PutOutbox(
                    Delivery(
                        id="live-1",
                        queue="fn:live",
                        payload=b"{}",
                        invocation_id="i",
                        enqueued_at=now,
                        available_at=now,
                    )
                )
            ]
        )
        relay.notify()  # well before the 5 s poll
        got = []
        for _ in range(20):
            got = await q.lease("fn:live", 1, 30, wait_s=0.1)
            if got:
                break
        assert [d.id for d in got] == ["live-1"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()


async def test_a_redelivered_finished_invocation_is_only_acked(
    js: JetStreams, tmp_path: Path
) -> None:
    q = await js.open()
    await q.declare(QueueSpec(name="fn:done", visibility_s=0.5))
    store = await SqliteStore.open(tmp_path / "squall.db")
    try:
        now = time.time()
        sent = [
            Delivery(
                id=f"x{n}",
                queue="fn:done",
                payload=b"{}",
                invocation_id=f"inv{n}",
                enqueued_at=now,
                available_at=now,
            )
            for n in range(2)
        ]
        for d in sent:
            await q.publish(d)
        first = []
        while len(first) < 2:
            first += await q.lease("fn:done", 2, 0.5, wait_s=0.3)
        assert await ack_finished(q, store, first) == first  # first deliveries all run
        # inv0's unit committed its final record; the process died before acking either.
        record = InvocationRecord(
            id="inv0", function="done", version="v1", trigger="async", status="succeeded"
        )
        await store.commit([PutInvocation(record)])
        again = []
        deadline = time.monotonic() + 5
        while len(again) < 2 and time.monotonic() < deadline:
            again += await q.lease("fn:done", 2, 0.5, wait_s=0.3)
        assert {d.attempts for d in again} == {2}
        to_run = await ack_finished(q, store, again)
        assert [d.id for d in to_run] == ["x1"]
        await q.ack(to_run[0])
        await asyncio.sleep(0.7)
        assert await q.lease("fn:done", 2, 0.5, wait_s=0.3) == []  # x0 was acked
    finally:
        await store.close()
