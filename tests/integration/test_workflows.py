"""Code workflows on a real platform: replay, retries, timers, event waits, sagas, control."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from squall.engine.platform import Platform
from squall.model.cloudevent import CloudEvent
from squall.model.workflows import RunStatus, WorkflowRun

APP = '''
import json, os, pathlib, time
import squall

app = squall.App("wf")
LOG = pathlib.Path(os.environ["WF_LOG"])

def note(*what):
    with LOG.open("a") as f:
        f.write(json.dumps(list(what)) + "\\n")

def reserve(order):
    note("reserve", order["id"])
    return {"reserved": order["id"]}

def charge(order):
    note("charge", order["id"])
    if order.get("decline"):
        raise RuntimeError("card declined")
    return {"charged": order["total"]}

def flaky(order):
    tries = LOG.parent / ("tries-" + order["id"])
    n = int(tries.read_text()) + 1 if tries.exists() else 1
    tries.write_text(str(n))
    note("flaky", n)
    if n < 3:
        raise ValueError(f"try {n}")
    return n

def release(order):
    note("release", order["id"])

def refund(order):
    note("refund", order["id"])
    if order.get("refund_fails"):
        raise RuntimeError("refund refused")

def not_json(order):
    return object()

def double(x):
    note("double", x)
    return x * 2

@app.function()
def price(event, ctx):
    return {"price": event["n"] * 10}

@app.workflow(step_backoff_s=0.01, permissions=["invoke:price"])
def fulfil(wf, order):
    r = wf.step(reserve, order)
    wf.compensate(release, order)
    c = wf.step(charge, order)
    wf.compensate(refund, order)
    if order.get("fail_after"):
        raise RuntimeError("shipping failed")
    return {"r": r, "c": c}

@app.workflow(step_backoff_s=0.01)
def retrying(wf, order):
    return wf.step(flaky, order)

@app.workflow()
def napper(wf, order):
    wf.step(reserve, order)
    wf.sleep(order.get("sleep", 0.5))
    return wf.step(charge, order)

@app.workflow()
def shipper(wf, order):
    wf.step(reserve, order)
    try:
        event = wf.wait_for_event(
            "shipment.delivered",
            pattern={"data": {"order": [order["id"]]}},
            timeout=order.get("timeout", "1h"),
        )
    except squall.EventWaitTimeout:
        return {"timed_out": True}
    return {"delivered": event["data"]}

@app.workflow()
def bad(wf, order):
    return wf.step(not_json, order)

@app.workflow(permissions=["invoke:price"])
def pricing(wf, order):
    return wf.invoke("price", {"n": order["n"]})

@app.workflow()
def mapper(wf, items):
    return wf.map(double, items, max_concurrency=3)

@app.workflow()
def changing(wf, order):
    if (LOG.parent / "changed").exists():
        wf.step(charge, order)
    else:
        wf.step(reserve, order)
    wf.sleep(0.3)
    return "done"
'''


@pytest.fixture
def log_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "side-effects.log"
    monkeypatch.setenv("WF_LOG", str(path))
    return path


def notes(path: Path) -> list[list[Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def finished(p: Platform, run_id: str, eventually: Any, timeout: float = 15) -> WorkflowRun:
    async def check() -> WorkflowRun | None:
        run = await p.workflows.get(run_id)
        return run if RunStatus(run.status).finished else None

    result: WorkflowRun = await eventually(check, timeout=timeout)
    return result


async def test_run_completes_with_each_step_once(platform, log_file, eventually):
    p = await platform(APP)
    run = await p.start_workflow("fulfil", {"id": "o1", "total": 5}, id="order-1")
    assert run.status == RunStatus.PENDING
    done = await finished(p, "order-1", eventually)
    assert done.status == RunStatus.COMPLETED, done.error
    assert done.result == {"r": {"reserved": "o1"}, "c": {"charged": 5}}
    assert notes(log_file) == [["reserve", "o1"], ["charge", "o1"]]
    history = await p.workflow_history("order-1")
    assert [(s.seq, s.name, s.kind, s.status) for s in history] == [
        (0, "reserve", "step", "completed"),
        (1, "charge", "step", "completed"),
    ]
    assert history[0].input == [{"id": "o1", "total": 5}]
    assert history[0].attempts == 1 and history[0].ended_at is not None


async def test_start_is_idempotent_by_id(platform, log_file, eventually):
    p = await platform(APP)
    first, created = await p.workflows.start("fulfil", {"id": "o2", "total": 1}, "same")
    assert first.id == "same"
    second, again = await p.workflows.start("fulfil", {"id": "other", "total": 9}, "same")
    assert created and not again
    assert second.input == {"id": "o2", "total": 1}
    await finished(p, "same", eventually)
    assert notes(log_file) == [["reserve", "o2"], ["charge", "o2"]]


async def test_failed_step_is_retried_with_backoff(platform, log_file, eventually):
    p = await platform(APP)
    await p.start_workflow("retrying", {"id": "r1"}, id="r1")
    done = await finished(p, "r1", eventually)
    assert done.status == RunStatus.COMPLETED and done.result == 3
    [step] = await p.workflow_history("r1")
    assert step.attempts == 3


async def test_saga_compensates_in_reverse_order(platform, log_file, eventually):
    p = await platform(APP)
    await p.start_workflow("fulfil", {"id": "s1", "total": 5, "fail_after": True}, id="s1")
    done = await finished(p, "s1", eventually)
    assert done.status == RunStatus.COMPENSATED
    assert done.error is not None and "shipping failed" in done.error["message"]
    assert notes(log_file) == [
        ["reserve", "s1"], ["charge", "s1"], ["refund", "s1"], ["release", "s1"]
    ]
    history = await p.workflow_history("s1")
    assert [(s.kind, s.name) for s in history][2:] == [
        ("compensate", "refund"), ("compensate", "release")
    ]


async def test_step_failure_compensates_what_succeeded(platform, log_file, eventually):
    p = await platform(APP)
    await p.start_workflow("fulfil", {"id": "d1", "total": 5, "decline": True}, id="d1")
    done = await finished(p, "d1", eventually)
    assert done.status == RunStatus.COMPENSATED
    assert done.error is not None and done.error["type"] == "StepFailed"
    assert notes(log_file)[-1] == ["release", "d1"]
    assert [n[0] for n in notes(log_file)].count("charge") == 4  # first try + 3 retries


async def test_failing_compensation_is_reported(platform, log_file, eventually):
    p = await platform(APP)
    order = {"id": "c1", "total": 5, "fail_after": True, "refund_fails": True}
    await p.start_workflow("fulfil", order, id="c1")
    done = await finished(p, "c1", eventually)
    assert done.status == RunStatus.COMPENSATION_FAILED
    assert [e["step"] for e in done.compensation_errors] == ["refund"]
    assert notes(log_file)[-1] == ["release", "c1"]  # the others still ran


async def test_result_not_json_fails_clearly(platform, log_file, eventually):
    p = await platform(APP)
    await p.start_workflow("bad", {}, id="b1")
    done = await finished(p, "b1", eventually)
    assert done.status == RunStatus.FAILED
    [step] = await p.workflow_history("b1")
    assert step.error is not None and step.error["type"] == "ResultNotSerializable"
    assert "not JSON-serializable" in step.error["message"]
    assert step.attempts == 1


async def test_invoke_runs_a_function_as_a_step(platform, log_file, eventually):
    p = await platform(APP)
    await p.start_workflow("pricing", {"n": 4}, id="p1")
    done = await finished(p, "p1", eventually)
    assert done.result == {"price": 40}
    [step] = await p.workflow_history("p1")
    assert (step.kind, step.name, step.output) == ("invoke", "price", {"price": 40})


async def test_map_runs_each_item_as_a_step(platform, log_file, eventually):
    p = await platform(APP)
    await p.start_workflow("mapper", [1, 2, 3, 4, 5], id="m1")
    done = await finished(p, "m1", eventually)
    assert done.result == [2, 4, 6, 8, 10]
    assert sorted(n[1] for n in notes(log_file)) == [1, 2, 3, 4, 5]
    assert [s.seq for s in await p.workflow_history("m1")] == [0, 1, 2, 3, 4]


async def test_sleep_suspends_and_resumes_after_restart(platform, log_file, eventually):
    p = await platform(APP)
    await p.start_workflow("napper", {"id": "n1", "total": 2, "sleep": 1.5}, id="n1")

    async def sleeping() -> bool:
        return (await p.workflows.get("n1")).status == RunStatus.SLEEPING

    await eventually(sleeping)
    await p.stop()
    p = await platform(APP)
    done = await finished(p, "n1", eventually)
    assert done.status == RunStatus.COMPLETED
    assert notes(log_file) == [["reserve", "n1"], ["charge", "n1"]]
    history = await p.workflow_history("n1")
    assert history[1].kind == "sleep" and history[1].status == "completed"
    assert history[1].ended_at is not None and history[1].wake_at is not None
    assert history[1].ended_at >= history[1].wake_at


async def test_wait_for_event_resumes_on_a_matching_event(platform, log_file, eventually):
    p = await platform(APP)
    await p.start_workflow("shipper", {"id": "w1"}, id="w1")

    async def waiting() -> bool:
        return (await p.workflows.get("w1")).status == RunStatus.WAITING

    await eventually(waiting)
    other = CloudEvent.create("shipment.delivered", {"order": "w2"}, source="test")
    await p.publish([other])
    wrong_type = CloudEvent.create("shipment.lost", {"order": "w1"}, source="test")
    await p.publish([wrong_type])
    assert (await p.workflows.get("w1")).status == RunStatus.WAITING
    event = CloudEvent.create("shipment.delivered", {"order": "w1", "by": "ups"}, source="test")
    await p.publish([event])
    done = await finished(p, "w1", eventually)
    assert done.result == {"delivered": {"order": "w1", "by": "ups"}}
    assert notes(log_file) == [["reserve", "w1"]]


async def test_wait_for_event_survives_restart(platform, log_file, eventually):
    p = await platform(APP)
    await p.start_workflow("shipper", {"id": "w3"}, id="w3")

    async def waiting() -> bool:
        return (await p.workflows.get("w3")).status == RunStatus.WAITING

    await eventually(waiting)
    await p.stop()
    p = await platform(APP)
    await p.publish([CloudEvent.create("shipment.delivered", {"order": "w3"}, source="t")])
    done = await finished(p, "w3", eventually)
    assert done.result == {"delivered": {"order": "w3"}}


async def test_wait_for_event_times_out(platform, log_file, eventually):
    p = await platform(APP)
    await p.start_workflow("shipper", {"id": "t1", "timeout": 0.5}, id="t1")
    done = await finished(p, "t1", eventually)
    assert done.result == {"timed_out": True}
    history = await p.workflow_history("t1")
    assert history[1].status == "failed"
    assert history[1].error is not None and history[1].error["type"] == "EventWaitTimeout"


async def test_cancel_runs_compensations(platform, log_file, eventually):
    source = APP + '''
@app.workflow()
def cancellable(wf, order):
    wf.step(reserve, order)
    wf.compensate(release, order)
    wf.wait_for_event("never.happens")
    wf.step(charge, order)
'''
    p = await platform(source)
    await p.start_workflow("cancellable", {"id": "x1", "total": 1}, id="x1")

    async def waiting() -> bool:
        return (await p.workflows.get("x1")).status == RunStatus.WAITING

    await eventually(waiting)
    await p.workflows.cancel("x1")
    done = await finished(p, "x1", eventually)
    assert done.status == RunStatus.CANCELLED
    assert notes(log_file) == [["reserve", "x1"], ["release", "x1"]]


async def test_a_changed_step_sequence_fails_as_nondeterministic(
    platform, log_file, eventually, tmp_path
):
    p = await platform(APP)
    await p.start_workflow("changing", {"id": "n9", "total": 1}, id="n9")

    async def sleeping() -> bool:
        return (await p.workflows.get("n9")).status == RunStatus.SLEEPING

    await eventually(sleeping)
    (tmp_path / "changed").write_text("")
    done = await finished(p, "n9", eventually)
    assert done.status == RunStatus.FAILED
    assert done.error is not None and done.error["type"] == "NonDeterministicWorkflow"
    assert "step #0 is step 'reserve'" in done.error["message"]
    assert "'charge'" in done.error["message"]
    assert done.error["seq"] == 0


async def test_unknown_workflow_and_bad_input(platform, log_file):
    from squall.errors import InvalidInput, NotFound

    p = await platform(APP)
    with pytest.raises(NotFound) as missing:
        await p.start_workflow("nope", {})
    assert missing.value.field == "name"
    with pytest.raises(InvalidInput) as bad_id:
        await p.start_workflow("fulfil", {}, id="has spaces")
    assert bad_id.value.field == "id"
    with pytest.raises(InvalidInput) as bad_input:
        await p.start_workflow("fulfil", object())
    assert bad_input.value.field == "input"


CHILDREN = APP + '''
@app.workflow()
def parent(wf, order):
    wf.step(reserve, order)
    total = wf.child(napper, {"id": order["id"] + "-c", "total": 1, "sleep": 0.3})
    first = wf.start_child("fulfil", {"id": order["id"] + "-f", "total": 2})
    second = wf.start_child(
        "fulfil", {"id": order["id"] + "-g", "total": 3, "decline": True}, id="declined"
    )
    try:
        wf.wait_child(second)
    except squall.StepFailed as exc:
        failed = str(exc)
    return {"napper": total, "fulfil": wf.wait_child(first), "failed": failed}
'''


async def test_child_workflows_run_and_their_results_return(platform, log_file, eventually):
    p = await platform(CHILDREN)
    await p.start_workflow("parent", {"id": "k1"}, id="k1")
    done = await finished(p, "k1", eventually, timeout=30)
    assert done.status == RunStatus.COMPLETED, done.error
    assert done.result is not None
    assert done.result["napper"] == {"charged": 1}
    assert done.result["fulfil"] == {"r": {"reserved": "k1-f"}, "c": {"charged": 2}}
    assert "child run 'declined' ended compensated" in done.result["failed"]
    child = await p.workflows.get("k1.1")
    assert child.workflow == "napper" and child.status == RunStatus.COMPLETED
    history = await p.workflow_history("k1")
    assert [(s.kind, s.name) for s in history][:3] == [
        ("step", "reserve"), ("child", "napper"), ("join", "child:k1.1")
    ]
    assert [n for n in notes(log_file) if n[1] == "k1"] == [["reserve", "k1"]]



GUARDIAN = APP + '''
@app.workflow()
def guardian(wf, order):
    return wf.child(napper, {"id": order["id"] + "-c", "total": 1, "sleep": 60})
'''


async def test_cancelling_a_parent_cancels_its_open_children(platform, log_file, eventually):
    p = await platform(GUARDIAN)
    await p.start_workflow("guardian", {"id": "k2"}, id="k2")

    async def child_sleeping() -> bool:
        runs = await p.workflows.runs(workflow="napper")
        return bool(runs) and runs[0].status == RunStatus.SLEEPING

    await eventually(child_sleeping)
    await p.workflows.cancel("k2")
    parent = await finished(p, "k2", eventually)
    child = await finished(p, "k2.0", eventually)
    assert (parent.status, child.status) == (RunStatus.CANCELLED, RunStatus.CANCELLED)
    assert [n for n in notes(log_file) if n[0] == "charge"] == []  # the child never resumed
