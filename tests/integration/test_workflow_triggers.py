"""Workflows started by triggers: an event rule, a schedule, a queue, an async invoke."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from squall.app import App
from squall.engine.platform import Platform
from squall.engine.schedules.expressions import SECONDS_ENV
from squall.errors import ConfigError
from squall.model.cloudevent import CloudEvent
from squall.model.workflows import RunStatus, WorkflowRun

APP = '''
import squall

app = squall.App("wf-triggers")

def stamp(x):
    return {"seen": x}

@app.on("order.placed")
@app.queue("orders", batch_size=5)
@app.workflow()
def fulfil(wf, order):
    got = wf.step(stamp, order.get("data", order))
    return got

@app.schedule("rate(1 second)", payload={"tick": True})
@app.workflow()
def nightly(wf, tick):
    return wf.step(stamp, tick["detail"])

@app.function(permissions=["workflow:fulfil"])
def checkout(order, ctx):
    run_id = ctx.start_workflow("fulfil", order, id="order-" + order["id"])
    if order.get("fail"):
        raise RuntimeError("checkout failed after starting the run")
    return run_id

@app.function()
def sneaky(order, ctx):
    return ctx.start_workflow("fulfil", order)

app.rule(
    "paid-to-fulfil",
    event_type="order.paid",
    targets=[squall.targets.Function("fulfil", input_path="$.data")],
)
'''


@pytest.fixture(autouse=True)
def second_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECONDS_ENV, "1")  # rate(1 second), for a test that waits for ticks


async def runs_of(p: Platform, workflow: str, eventually: Any, count: int) -> list[WorkflowRun]:
    async def check() -> list[WorkflowRun] | None:
        runs = await p.workflows.runs(workflow=workflow, limit=100)
        done = [r for r in runs if RunStatus(r.status).finished]
        return done if len(done) >= count and len(done) == len(runs) else None

    result: list[WorkflowRun] = await eventually(check, timeout=20)
    return result


async def test_an_event_starts_one_run_per_event(platform, eventually) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    event = CloudEvent.create("order.placed", {"id": "o-1"}, source="shop", id="e-1")
    await p.publish([event])
    await p.publish([event])  # a duplicate: dropped by the bus, no second run
    [run] = await runs_of(p, "fulfil", eventually, 1)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result == {"seen": {"id": "o-1"}}
    assert run.input["id"] == "e-1"  # the whole event, as a function target gets it
    records = await p.list_invocations(function="fulfil", limit=10)
    [record] = [r for r in records if r.trigger == "event"]  # the others replay the run
    assert record.id == run.id and record.status == "succeeded"
    assert msgspec.json.decode(record.result or b"") == {"workflow": "fulfil", "run_id": run.id}


async def test_a_rule_target_transforms_the_input(platform, eventually) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    await p.publish([CloudEvent.create("order.paid", {"id": "o-2"}, source="shop", id="e-2")])
    [run] = await runs_of(p, "fulfil", eventually, 1)
    assert run.input == {"id": "o-2"}
    assert run.result == {"seen": {"id": "o-2"}}


async def test_queue_messages_start_a_run_each_and_are_deleted(platform, eventually) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    sent = [await p.queues.send("orders", msgspec.json.encode({"n": i})) for i in range(3)]
    runs = await runs_of(p, "fulfil", eventually, 3)
    assert {r.id for r in runs} == {s.id for s in sent}
    assert sorted(r.result["seen"]["n"] for r in runs) == [0, 1, 2]
    stats = await p.queues.stats("orders")
    assert (stats.visible, stats.in_flight) == (0, 0)


async def test_an_async_invoke_starts_a_run_with_its_id(platform, eventually) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    record = await p.invoke_async("fulfil", b'{"id": "o-3"}')
    [run] = await runs_of(p, "fulfil", eventually, 1)
    assert run.id == record.id and run.result == {"seen": {"id": "o-3"}}


async def test_a_schedule_starts_a_run_per_tick(platform, eventually) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    runs = await runs_of(p, "nightly", eventually, 2)
    assert all(r.status == RunStatus.COMPLETED for r in runs)
    assert all(r.result == {"seen": {"tick": True}} for r in runs)
    assert len({r.id for r in runs}) == len(runs)


async def test_a_function_starts_a_run_when_it_succeeds(platform, eventually) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    failed = await p.invoke("checkout", b'{"id": "o-4", "fail": true}')
    assert failed.status == "failed"
    record = await p.invoke("checkout", b'{"id": "o-5"}')
    assert msgspec.json.decode(record.result or b"") == "order-o-5"
    again = await p.invoke("checkout", b'{"id": "o-5"}')  # the id is the idempotency key
    assert again.status == "succeeded"
    [run] = await runs_of(p, "fulfil", eventually, 1)
    assert run.id == "order-o-5" and run.result == {"seen": {"id": "o-5"}}
    denied = await p.invoke("sneaky", b'{"id": "o-6"}')
    assert denied.error is not None and denied.error["error_type"] == "AccessDenied"
    assert 'permissions=["workflow:fulfil"]' in str(denied.error["message"])


def test_trigger_options_on_a_workflow_are_refused() -> None:
    app = App("bad")
    with pytest.raises(ConfigError, match=r"give its options to @app.workflow\(\)"):

        @app.on("x.y", memory_mb=256)
        @app.workflow()
        def flow(wf: Any, x: Any) -> None: ...


def test_a_workflow_above_its_trigger_says_how_to_stack() -> None:
    app = App("bad")
    with pytest.raises(ConfigError, match=r"put @app\.workflow"):

        @app.workflow()
        @app.on("x.y")
        def flow(wf: Any, x: Any) -> None: ...
