"""wf.gather and wf.map fan-out, calls from several threads at once, async def workflows."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from squall.engine.platform import Platform
from squall.model.workflows import RunStatus, WorkflowRun

APP = '''
import asyncio, time
import squall

app = squall.App("wf-fanout")
app.table("seen", partition_key="id")

@app.function()
def slow(event, ctx):
    time.sleep(0.4)
    return {"slow": event["n"]}

def add(a, b):
    return a + b

def boom():
    raise ValueError("no luck")

@app.workflow(permissions=["invoke:slow"])
def together(wf, order):
    return wf.gather(("slow", {"n": 1}), ("slow", {"n": 2}), ("slow", {"n": 3}), (add, 2, 3))

@app.workflow(step_retries=0)
def partly(wf, order):
    try:
        wf.gather((add, 1, 1), (boom,))
    except squall.StepFailed as exc:
        return {"failed": exc.to_dict()["step"]}

@app.workflow(permissions=["table:seen"])
def writer(wf, ids):
    def put(i):
        wf.ctx.tables["seen"].put({"id": str(i)})
        return wf.ctx.tables["seen"].get({"id": str(i)})["id"]
    return wf.map(put, ids, max_concurrency=8)

async def fetch(x):
    await asyncio.sleep(0.01)
    return x * 10

@app.workflow()
async def awaiting(wf, n):
    first = wf.step(fetch, n)
    wf.sleep(0.2)
    return {"first": first, "again": wf.step(fetch, first)}
'''


async def finished(p: Platform, run_id: str, eventually: Any) -> WorkflowRun:
    async def check() -> WorkflowRun | None:
        run = await p.workflows.get(run_id)
        return run if RunStatus(run.status).finished else None

    result: WorkflowRun = await eventually(check, timeout=20)
    return result


async def test_gather_runs_invokes_and_steps_at_once(platform, eventually) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    await p.invoke("slow", b'{"n": 0}')  # warm: the timing below is the fan-out's
    started = time.monotonic()
    await p.start_workflow("together", {}, id="g1")
    run = await finished(p, "g1", eventually)
    elapsed = time.monotonic() - started
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result == [{"slow": 1}, {"slow": 2}, {"slow": 3}, 5]
    assert elapsed < 1.1, f"three 0.4 s invokes ran one after another ({elapsed:.2f} s)"
    history = await p.workflow_history("g1")
    assert [(s.seq, s.kind, s.name) for s in history] == [
        (0, "invoke", "slow"), (1, "invoke", "slow"), (2, "invoke", "slow"), (3, "step", "add"),
    ]
    samples = {
        (family.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families((await p.observability.scrape()).decode())
        for sample in family.samples
        if family.name.startswith("squall_workflow")
    }
    run_labels = (("status", "completed"), ("workflow", "together"))
    assert samples[("squall_workflow_runs", run_labels)] == 1
    invokes = (("kind", "invoke"), ("status", "completed"), ("workflow", "together"))
    assert samples[("squall_workflow_steps", invokes)] == 3


async def test_gather_raises_the_failure_after_the_others_end(platform, eventually) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    await p.start_workflow("partly", None, id="g2")
    run = await finished(p, "g2", eventually)
    assert run.result == {"failed": "boom"}
    statuses = [(s.name, s.status) for s in await p.workflow_history("g2")]
    assert statuses == [("add", "completed"), ("boom", "failed")]


async def test_map_items_call_the_platform_from_several_threads(platform, eventually) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    ids = list(range(40))
    await p.start_workflow("writer", ids, id="m1")
    run = await finished(p, "m1", eventually)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result == [str(i) for i in ids]


async def test_an_async_workflow_sleeps_and_resumes(platform, eventually) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    await p.start_workflow("awaiting", 4, id="a1")
    run = await finished(p, "a1", eventually)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result == {"first": 40, "again": 400}
    kinds = [s.kind for s in await p.workflow_history("a1")]
    assert kinds == ["step", "sleep", "step"]
