"""The store's workflow runs and checkpoints (SQLite and PostgreSQL): first checkpoint wins,
the first of an event and a timeout ends a wait, a suspended run's delivery is released until
its timer but due at once when its wait ended meanwhile or a cancel came, and pagination."""

from __future__ import annotations

import time

from squall.model.workflows import StepRecord, WorkflowRun, workflow_queue
from squall.storage.protocols import (
    Ack,
    CancelRun,
    Delivery,
    Enqueue,
    PutRun,
    PutStep,
    ResolveStep,
    StartRun,
    SuspendRun,
    WakeJoins,
    WakeRun,
)
from squall.storage.sqlite.store import SqliteStore

WORKFLOW_QUEUE = workflow_queue("w")


def run(run_id: str = "r1", created_at: float = 1.0) -> WorkflowRun:
    return WorkflowRun(
        id=run_id, workflow="w", status="pending", created_at=created_at, updated_at=created_at
    )


def wait_step(seq: int = 0, status: str = "waiting") -> StepRecord:
    return StepRecord(
        run_id="r1", seq=seq, name="x.done", kind="wait", status=status, started_at=1.0,
        event_type="x.done", wake_at=100.0,
    )


async def start(store: SqliteStore) -> str:
    now = time.time()
    delivery = Delivery(
        id="d1", queue=WORKFLOW_QUEUE, payload=b"", invocation_id="r1", enqueued_at=now,
        available_at=now,
    )
    await store.commit([PutRun(run()), Enqueue(delivery, dedup_key="r1")])
    return delivery.id


async def test_a_second_enqueue_for_a_run_is_dropped(store: SqliteStore) -> None:
    await start(store)
    again = Delivery(
        id="d2", queue=WORKFLOW_QUEUE, payload=b"", invocation_id="r1", enqueued_at=0,
        available_at=0,
    )
    await store.commit([Enqueue(again, dedup_key="r1")])
    assert await store.depth(WORKFLOW_QUEUE) == 1


async def test_first_checkpoint_of_a_position_wins(store: SqliteStore) -> None:
    await start(store)
    first = StepRecord(run_id="r1", seq=0, name="a", kind="step", status="completed",
                       output=1, started_at=1.0)
    second = StepRecord(run_id="r1", seq=0, name="a", kind="step", status="completed",
                        output=2, started_at=2.0)
    await store.commit([PutStep(first)])
    await store.commit([PutStep(second)])
    [step] = await store.list_steps("r1")
    assert step.output == 1


async def test_the_first_of_an_event_and_a_timeout_ends_a_wait(store: SqliteStore) -> None:
    await start(store)
    await store.commit([PutStep(wait_step())])
    assert [s.seq for s in await store.pending_waits()] == [0]
    await store.commit([ResolveStep("r1", 0, "completed", output={"id": "e1"}, ended_at=5.0)])
    await store.commit([ResolveStep("r1", 0, "failed", error={"type": "T"}, ended_at=6.0)])
    [step] = await store.list_steps("r1")
    assert (step.status, step.output, step.error, step.ended_at) == (
        "completed", {"id": "e1"}, None, 5.0
    )
    assert await store.pending_waits() == []


async def test_suspend_releases_until_the_timer(store: SqliteStore) -> None:
    delivery_id = await start(store)
    [leased] = await store.lease(WORKFLOW_QUEUE, 10, 60)
    await store.commit([PutStep(wait_step())])
    now = time.time()
    await store.commit([SuspendRun(delivery_id, "r1", 0, now + 3600, now)])
    assert await store.lease(WORKFLOW_QUEUE, 10, 60) == []
    due = await store.next_due(WORKFLOW_QUEUE)
    assert due is not None and due > now + 3500
    await store.commit([WakeRun("r1", time.time())])  # the event came
    [again] = await store.lease(WORKFLOW_QUEUE, 10, 60)
    assert again.id == leased.id


async def test_suspend_is_due_at_once_when_the_wait_ended_meanwhile(store: SqliteStore) -> None:
    delivery_id = await start(store)
    await store.lease(WORKFLOW_QUEUE, 10, 60)
    await store.commit([PutStep(wait_step())])
    # The event arrives while the run is leased: waking it cannot move a leased delivery...
    await store.commit([ResolveStep("r1", 0, "completed", output={}, ended_at=1.0),
                        WakeRun("r1", time.time())])
    now = time.time()
    # ...so the suspend itself sees the wait is over and keeps the run due.
    await store.commit([SuspendRun(delivery_id, "r1", 0, now + 3600, now)])
    assert len(await store.lease(WORKFLOW_QUEUE, 10, 60)) == 1


async def test_suspend_is_due_at_once_after_a_cancel(store: SqliteStore) -> None:
    delivery_id = await start(store)
    await store.lease(WORKFLOW_QUEUE, 10, 60)
    await store.commit([PutStep(wait_step()), CancelRun("r1")])
    now = time.time()
    await store.commit([SuspendRun(delivery_id, "r1", 0, now + 3600, now)])
    assert len(await store.lease(WORKFLOW_QUEUE, 10, 60)) == 1
    stored = await store.get_run("r1")
    assert stored is not None and stored.cancel_requested


async def test_put_run_keeps_a_cancel_request(store: SqliteStore) -> None:
    await start(store)
    await store.commit([CancelRun("r1")])
    await store.commit([PutRun(run())])  # a replay's stale copy of the run
    stored = await store.get_run("r1")
    assert stored is not None and stored.cancel_requested


async def test_runs_page_newest_first(store: SqliteStore) -> None:
    await store.commit([PutRun(run(f"r{n}", created_at=float(n))) for n in range(5)])
    page = await store.list_runs(workflow=None, status=None, limit=2, before=None)
    assert [r.id for r in page] == ["r4", "r3"]
    rest = await store.list_runs(workflow=None, status=None, limit=10, before="r3")
    assert [r.id for r in rest] == ["r2", "r1", "r0"]
    assert await store.list_runs(workflow="other", status=None, limit=10, before=None) == []
    assert len(await store.list_runs(workflow="w", status="pending", limit=10, before=None)) == 5


async def test_start_run_creates_once_even_after_the_run_finished(store: SqliteStore) -> None:
    now = time.time()

    def start_op(delivery_id: str) -> StartRun:
        delivery = Delivery(
            id=delivery_id, queue=WORKFLOW_QUEUE, payload=b"", invocation_id="r1",
            enqueued_at=now, available_at=now,
        )
        return StartRun(run(), delivery)

    await store.commit([start_op("d1")])
    assert await store.depth(WORKFLOW_QUEUE) == 1
    await store.commit([Ack("d1")])  # the run ended: its delivery is gone
    await store.commit([start_op("d2")])  # a trigger redelivered: no second run, no delivery
    assert await store.depth(WORKFLOW_QUEUE) == 0
    assert (await store.get_run("r1")) is not None


def join_step(child: str) -> StepRecord:
    return StepRecord(run_id="r1", seq=0, name=f"child:{child}", kind="join", status="waiting",
                      started_at=1.0)


async def test_a_join_on_a_finished_child_does_not_stay_suspended(store: SqliteStore) -> None:
    # The child finished while the parent was recording its join: suspending is due at once.
    delivery_id = await start(store)
    await store.lease(WORKFLOW_QUEUE, 10, 60)
    child = run("r1.5")
    child.status = "completed"
    await store.commit([PutRun(child), PutStep(join_step("r1.5"))])
    now = time.time()
    await store.commit([SuspendRun(delivery_id, "r1", 0, now + 3600, now)])
    [again] = await store.lease(WORKFLOW_QUEUE, 10, 60)
    assert again.id == delivery_id


async def test_a_finishing_child_wakes_a_join_recorded_after_its_unit_was_built(
    store: SqliteStore,
) -> None:
    delivery_id = await start(store)
    await store.lease(WORKFLOW_QUEUE, 10, 60)
    await store.commit([PutRun(run("r1.5")), PutStep(join_step("r1.5"))])
    now = time.time()
    await store.commit([SuspendRun(delivery_id, "r1", 0, now + 3600, now)])
    assert await store.lease(WORKFLOW_QUEUE, 10, 60) == []  # the child runs: suspended
    await store.commit([WakeJoins("r1.5", time.time())])  # in the unit that ends the child
    [again] = await store.lease(WORKFLOW_QUEUE, 10, 60)
    assert again.id == delivery_id
