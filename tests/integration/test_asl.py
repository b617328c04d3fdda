"""ASL state machines on a real platform: every state type, paths, Retry, Catch, history."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from squall.engine.platform import Platform
from squall.model.workflows import RunStatus, WorkflowRun

APP = '''
import json, os, pathlib
import squall

app = squall.App("asl")
LOG = pathlib.Path(os.environ["ASL_LOG"])

def note(*what):
    with LOG.open("a") as f:
        f.write(json.dumps(list(what)) + "\\n")

@app.function()
def price(event, ctx):
    note("price", event)
    return {"total": event["qty"] * event["unit"]}

@app.function()
def double(event, ctx):
    note("double", event)
    return event * 2

@app.function()
def flaky(event, ctx):
    tries = LOG.parent / ("tries-" + event["id"])
    n = int(tries.read_text()) + 1 if tries.exists() else 1
    tries.write_text(str(n))
    note("flaky", n)
    if n <= event["fail_times"]:
        raise ValueError(f"try {n}")
    return {"tries": n}

@app.function()
def declined(event, ctx):
    raise PermissionError("card declined")

@app.function(timeout_s=5)
def slow(event, ctx):
    import time
    time.sleep(2)
    return "late"

ORDER = {
    "StartAt": "Price",
    "States": {
        "Price": {
            "Type": "Task",
            "Resource": "squall:function:price",
            "InputPath": "$.order",
            "Parameters": {"qty.$": "$.qty", "unit.$": "$.unit"},
            "ResultSelector": {"amount.$": "$.total"},
            "ResultPath": "$.priced",
            "Next": "Big?",
        },
        "Big?": {
            "Type": "Choice",
            "Choices": [
                {"And": [{"Variable": "$.priced.amount", "NumericGreaterThan": 100},
                         {"Not": {"And": [{"Variable": "$.vip", "IsPresent": True},
                                          {"Variable": "$.vip", "BooleanEquals": True}]}}],
                 "Next": "Review"},
                {"Variable": "$.priced.amount", "NumericLessThanEqualsPath": "$.limit",
                 "Next": "Label"},
            ],
            "Default": "TooSmall",
        },
        "Review": {"Type": "Fail", "Error": "NeedsReview", "Cause": "amount over 100"},
        "TooSmall": {"Type": "Fail", "ErrorPath": "$.code",
                     "CausePath": "States.Format('amount {} over limit', $.priced.amount)"},
        "Label": {
            "Type": "Pass",
            "Parameters": {
                "label.$": "States.Format('order {} costs {}', $.order.id, $.priced.amount)",
                "exec.$": "$$.Execution.Id",
                "state.$": "$$.State.Name",
            },
            "ResultPath": "$.label",
            "OutputPath": "$.label",
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
    },
}
app.state_machine("order", definition=ORDER)

app.state_machine("fanout", definition={
    "StartAt": "Both",
    "States": {
        "Both": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "D", "States": {"D": {"Type": "Task", "Resource": "double",
                                                  "InputPath": "$.n", "End": True}}},
                {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "static",
                                                  "End": True}}},
            ],
            "ResultPath": "$.both",
            "Next": "Each",
        },
        "Each": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "MaxConcurrency": 2,
            "ItemSelector": {"value.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index",
                             "n.$": "$.n"},
            "ItemProcessor": {"StartAt": "Twice", "States": {
                "Twice": {"Type": "Task", "Resource": "double", "InputPath": "$.value",
                          "End": True}}},
            "ResultPath": "$.doubled",
            "End": True,
        },
    },
})

app.state_machine("retrying", definition={
    "StartAt": "Try",
    "States": {
        "Try": {
            "Type": "Task",
            "Resource": "flaky",
            "Retry": [{"ErrorEquals": ["ValueError"], "IntervalSeconds": 0.05,
                       "BackoffRate": 2, "MaxAttempts": 2, "JitterStrategy": "FULL"}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                       "Next": "Recovered"}],
            "End": True,
        },
        "Recovered": {"Type": "Pass", "End": True},
    },
})

app.state_machine("catching", definition={
    "StartAt": "Charge",
    "States": {
        "Charge": {
            "Type": "Task", "Resource": "declined",
            "Catch": [{"ErrorEquals": ["ValueError"], "Next": "Wrong"},
                      {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.why",
                       "Next": "Refund"}],
            "End": True,
        },
        "Wrong": {"Type": "Fail", "Error": "Wrong"},
        "Refund": {"Type": "Pass", "End": True},
    },
})

app.state_machine("timing", definition={
    "StartAt": "Nap",
    "States": {
        "Nap": {"Type": "Wait", "SecondsPath": "$.nap", "Next": "Slow"},
        "Slow": {"Type": "Task", "Resource": "slow", "TimeoutSeconds": 0.5,
                 "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "TimedOut"}],
                 "End": True},
        "TimedOut": {"Type": "Succeed"},
    },
})

app.state_machine("intrinsic", definition={
    "StartAt": "Build",
    "States": {
        "Build": {"Type": "Pass", "Parameters": {
            "id.$": "States.UUID()",
            "greeting.$": "States.Format('Hello, {}!', $.name)",
            "parts.$": "States.StringSplit($.csv, ',')",
            "count.$": "States.ArrayLength(States.StringSplit($.csv, ','))",
            "sum.$": "States.MathAdd($.a, $.b)",
            "json.$": "States.JsonToString($.obj)",
            "back.$": "States.StringToJson(States.JsonToString($.obj))",
            "chunks.$": "States.ArrayPartition(States.ArrayRange(1, 5, 1), 2)",
            "has.$": "States.ArrayContains($.nums, 3)",
            "second.$": "States.ArrayGetItem($.nums, 1)",
            "unique.$": "States.ArrayUnique($.nums)",
            "b64.$": "States.Base64Encode($.name)",
            "plain.$": "States.Base64Decode(States.Base64Encode($.name))",
            "hash.$": "States.Hash($.name, 'SHA-256')",
            "merged.$": "States.JsonMerge($.obj, States.StringToJson('{\\"z\\": 26}'), false)",
            "dice.$": "States.MathRandom(1, 7)",
            "array.$": "States.Array($.name, 1, true)",
        }, "End": True},
    },
})

app.state_machine("failfast", definition={
    "StartAt": "Both",
    "States": {
        "Both": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Boom", "States": {"Boom": {"Type": "Task", "Resource": "declined",
                                                        "End": True}}},
                {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 3600,
                                                      "End": True}}},
            ],
            "Catch": [{"ErrorEquals": ["PermissionError"], "Next": "Caught"}],
            "End": True,
        },
        "Caught": {"Type": "Pass", "End": True},
    },
})

app.state_machine("deadline", definition={
    "TimeoutSeconds": 1,
    "StartAt": "Nap",
    "States": {"Nap": {"Type": "Wait", "Seconds": 30, "Next": "Late"},
               "Late": {"Type": "Task", "Resource": "double", "End": True}},
})


@app.workflow()
def meddler(wf, other):
    wf.cancel_child(other)  # not its child: refused

app.state_machine("unmatched", definition={
    "StartAt": "Pick",
    "States": {
        "Pick": {"Type": "Choice", "Choices": [
            {"Variable": "$.kind", "StringMatches": "a*z", "Next": "Yes"}]},
        "Yes": {"Type": "Succeed"},
    },
})
'''


@pytest.fixture
def log_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "calls.log"
    monkeypatch.setenv("ASL_LOG", str(path))
    return path


def notes(path: Path) -> list[list[Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def finished(p: Platform, run_id: str, eventually: Any, timeout: float = 20) -> WorkflowRun:
    async def check() -> WorkflowRun | None:
        run = await p.workflows.get(run_id)
        return run if RunStatus(run.status).finished else None

    result: WorkflowRun = await eventually(check, timeout=timeout)
    return result


async def test_task_choice_pass_and_paths(platform, log_file, eventually):
    p = await platform(APP)
    order = {"order": {"id": "o1", "qty": 3, "unit": 10}, "limit": 50}
    await p.start_workflow("order", order, id="o1")
    done = await finished(p, "o1", eventually)
    assert done.status == RunStatus.COMPLETED, done.error
    assert done.result == {"label": "order o1 costs 30", "exec": "o1", "state": "Label"}
    assert notes(log_file) == [["price", {"qty": 3, "unit": 10}]]
    history = await p.workflow_history("o1")
    states = [(s.name, s.status) for s in history if s.kind == "state"]
    assert states == [("Price", "completed"), ("Big?", "completed"), ("Label", "completed"),
                      ("Done", "completed")]
    price = next(s for s in history if s.kind == "state" and s.name == "Price")
    assert price.input == order
    assert price.output == {**order, "priced": {"amount": 30}}


async def test_fail_states_name_the_error(platform, log_file, eventually):
    p = await platform(APP)
    big = {"order": {"id": "o2", "qty": 20, "unit": 10}, "limit": 500}
    await p.start_workflow("order", big, id="o2")
    small = {"order": {"id": "o3", "qty": 6, "unit": 10}, "limit": 50, "vip": False,
             "code": "OverLimit"}
    await p.start_workflow("order", small, id="o3")
    done = await finished(p, "o2", eventually)
    assert done.status == RunStatus.FAILED
    assert done.error is not None
    assert (done.error["error"], done.error["cause"]) == ("NeedsReview", "amount over 100")
    done = await finished(p, "o3", eventually)
    assert done.error is not None
    assert (done.error["error"], done.error["cause"]) == ("OverLimit", "amount 60 over limit")
    history = await p.workflow_history("o3")
    last = history[-1]
    assert (last.name, last.status) == ("TooSmall", "failed")
    assert last.error == {"type": "OverLimit", "message": "amount 60 over limit"}


async def test_parallel_and_map_run_as_child_runs(platform, log_file, eventually):
    p = await platform(APP)
    await p.start_workflow("fanout", {"n": 4, "items": [1, 2, 3, 4, 5]}, id="f1")
    done = await finished(p, "f1", eventually, timeout=40)
    assert done.status == RunStatus.COMPLETED, done.error
    assert done.result == {
        "n": 4, "items": [1, 2, 3, 4, 5], "both": [8, "static"], "doubled": [2, 4, 6, 8, 10],
    }
    doubled = sorted(n[1] for n in notes(log_file))
    assert doubled == [1, 2, 3, 4, 4, 5]  # each Task ran once
    history = await p.workflow_history("f1")
    children = [s for s in history if s.kind == "child"]
    assert len(children) == 2 + 5
    assert all(s.name == "fanout-branch" for s in children)
    first_item = await p.workflows.get(f"f1.{children[2].seq}")
    assert first_item.input["input"] == {"value": 1, "index": 0, "n": 4}


async def test_retry_then_succeed_with_backoff(platform, log_file, eventually):
    p = await platform(APP)
    await p.start_workflow("retrying", {"id": "r1", "fail_times": 2}, id="r1")
    done = await finished(p, "r1", eventually)
    assert done.status == RunStatus.COMPLETED, done.error
    assert done.result == {"tries": 3}
    history = await p.workflow_history("r1")
    kinds = [(s.kind, s.name) for s in history]
    assert kinds == [
        ("invoke", "flaky"), ("step", "jitter"), ("sleep", "sleep"),
        ("invoke", "flaky"), ("step", "jitter"), ("sleep", "sleep"),
        ("invoke", "flaky"), ("state", "Try"),
    ]
    first_jitter = history[1].output
    delay = history[2].wake_at - history[2].started_at
    assert 0 <= delay <= 0.05 * first_jitter + 0.05


async def test_retries_run_out_then_catch(platform, log_file, eventually):
    p = await platform(APP)
    await p.start_workflow("retrying", {"id": "r2", "fail_times": 5}, id="r2")
    done = await finished(p, "r2", eventually)
    assert done.status == RunStatus.COMPLETED, done.error
    assert done.result == {"id": "r2", "fail_times": 5,
                           "error": {"Error": "ValueError", "Cause": "try 3"}}
    assert [n for n in notes(log_file) if n[0] == "flaky"] == [["flaky", 1], ["flaky", 2],
                                                              ["flaky", 3]]
    states = [(s.name, s.status) for s in await p.workflow_history("r2") if s.kind == "state"]
    assert states == [("Try", "failed"), ("Recovered", "completed")]


async def test_task_failed_matches_a_function_error(platform, log_file, eventually):
    p = await platform(APP)
    await p.start_workflow("catching", {"card": 1}, id="c1")
    done = await finished(p, "c1", eventually)
    assert done.status == RunStatus.COMPLETED, done.error
    assert done.result == {"card": 1,
                           "why": {"Error": "PermissionError", "Cause": "card declined"}}


async def test_wait_then_task_timeout_is_caught(platform, log_file, eventually):
    p = await platform(APP)
    await p.start_workflow("timing", {"nap": 0.3}, id="t1")
    done = await finished(p, "t1", eventually)
    assert done.status == RunStatus.COMPLETED, done.error
    history = await p.workflow_history("t1")
    assert [(s.kind, s.name, s.status) for s in history] == [
        ("sleep", "sleep", "completed"), ("state", "Nap", "completed"),
        ("invoke", "slow", "failed"), ("state", "Slow", "failed"),
        ("state", "TimedOut", "completed"),
    ]
    assert history[3].error is not None and history[3].error["type"] == "States.Timeout"


async def test_no_choice_matched(platform, log_file, eventually):
    p = await platform(APP)
    await p.start_workflow("unmatched", {"kind": "abc"}, id="u1")
    await p.start_workflow("unmatched", {"kind": "abcz"}, id="u2")
    done = await finished(p, "u1", eventually)
    assert done.error is not None and done.error["error"] == "States.NoChoiceMatched"
    assert (await finished(p, "u2", eventually)).status == RunStatus.COMPLETED


async def test_intrinsics_in_a_real_machine_replay_their_draws(platform, log_file, eventually):
    p = await platform(APP)
    value = {"name": "Ada", "csv": "a,b,c", "a": 2, "b": 40, "obj": {"k": "v"},
             "nums": [3, 1, 3]}
    await p.start_workflow("intrinsic", value, id="i1")
    done = await finished(p, "i1", eventually)
    assert done.status == RunStatus.COMPLETED, done.error
    result = done.result
    history = await p.workflow_history("i1")
    drawn = {s.name: s.output for s in history if s.kind == "step"}
    assert result["id"] == drawn["States.UUID"] and len(result["id"]) == 36
    assert result["dice"] == drawn["States.MathRandom"] and 1 <= result["dice"] < 7
    assert {k: v for k, v in result.items() if k not in ("id", "dice")} == {
        "greeting": "Hello, Ada!", "parts": ["a", "b", "c"], "count": 3, "sum": 42,
        "json": '{"k":"v"}', "back": {"k": "v"}, "chunks": [[1, 2], [3, 4], [5]],
        "has": True, "second": 1, "unique": [3, 1], "b64": "QWRh", "plain": "Ada",
        "hash": hashlib.sha256(b"Ada").hexdigest(),
        "merged": {"k": "v", "z": 26}, "array": ["Ada", 1, True],
    }


async def test_a_failed_branch_fails_the_parallel_and_stops_the_others(
    platform, log_file, eventually
):
    p = await platform(APP)
    await p.start_workflow("failfast", {"x": 1}, id="ff")
    done = await finished(p, "ff", eventually)
    assert done.status == RunStatus.COMPLETED, done.error
    assert done.result == {"Error": "PermissionError", "Cause": "card declined"}
    children = [s for s in await p.workflow_history("ff") if s.kind == "child"]
    boom, nap = [await p.workflows.get(f"ff.{c.seq}") for c in children]
    assert boom.status == RunStatus.FAILED and boom.error is not None
    assert boom.error["error"] == "PermissionError"
    napping = await finished(p, nap.id, eventually)
    assert napping.status == RunStatus.CANCELLED


async def test_a_run_cannot_cancel_runs_it_did_not_start(platform, log_file, eventually):
    p = await platform(APP)
    await p.start_workflow("unmatched", {"kind": "abc"}, id="victim")
    await p.start_workflow("meddler", "victim", id="meddler-1")
    done = await finished(p, "meddler-1", eventually)
    assert done.status == RunStatus.FAILED and done.error is not None
    assert done.error["type"] == "InvalidInput" and done.error["field"] == "child"
    victim = await finished(p, "victim", eventually)
    assert victim.status == RunStatus.FAILED  # it ran to its own end (no choice matched)


async def test_the_execution_timeout_fails_the_run(platform, log_file, eventually):
    p = await platform(APP)
    await p.start_workflow("deadline", 3, id="d1")
    done = await finished(p, "d1", eventually, timeout=10)
    assert done.status == RunStatus.FAILED and done.error is not None
    assert done.error["error"] == "States.Timeout"
    assert notes(log_file) == []  # the Task after the deadline never ran
    assert done.updated_at - done.created_at < 5
