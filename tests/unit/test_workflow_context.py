"""The sandbox side of workflows, with a recording link instead of a platform: replay from
history, checkpoints, retries, suspension, determinism, durations; and event waiters."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from squall.engine.workflows.waiters import Waiters
from squall.errors import InvalidInput, ResultNotSerializable
from squall.model.cloudevent import CloudEvent
from squall.model.workflows import StepRecord
from squall.runtime.context import Context
from squall.runtime.workflow_context import parse_duration, run_workflow


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(self, op: str, args: dict[str, Any]) -> bytes | None:
        self.calls.append((op, args))
        return b"null"

    def steps(self) -> list[dict[str, Any]]:
        return [args["step"] for op, args in self.calls if op == "workflow"]


def context(link: Recorder) -> Context:
    return Context(link=link, function_name="w", version="v", memory_mb=128,
                   logger=logging.getLogger("t"))


def payload(history: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {"run_id": "r1", "workflow": "w", "input": 5, "history": history or [],
            "step_backoff_s": 0.0, **extra}


ran: list[str] = []


def one(x: int) -> int:
    ran.append("one")
    return x + 1


def two(x: int) -> int:
    ran.append("two")
    return x * 2


def flow(wf: Any, x: int) -> int:
    return int(wf.step(two, wf.step(one, x)))


def completed(seq: int, name: str, output: Any) -> dict[str, Any]:
    return {"seq": seq, "name": name, "kind": "step", "status": "completed", "output": output,
            "attempts": 1}


def test_a_fresh_run_checkpoints_each_step() -> None:
    ran.clear()
    link = Recorder()
    outcome = run_workflow(flow, payload(), context(link))
    assert outcome == {"status": "completed", "result": 12}
    steps = link.steps()
    assert [(s["seq"], s["name"], s["status"]) for s in steps] == [
        (0, "one", "completed"), (1, "two", "completed")
    ]
    assert msgspec.json.decode(steps[0]["output_json"]) == 6
    assert steps[0]["input"] == [5] and steps[0]["run_id"] == "r1"


def test_replay_returns_recorded_results_without_running_them() -> None:
    ran.clear()
    link = Recorder()
    outcome = run_workflow(flow, payload([completed(0, "one", 100)]), context(link))
    assert outcome == {"status": "completed", "result": 200}
    assert ran == ["two"]
    assert [s["seq"] for s in link.steps()] == [1]


def test_a_different_step_at_a_recorded_position_is_nondeterministic() -> None:
    link = Recorder()
    outcome = run_workflow(flow, payload([completed(0, "other", 1)]), context(link))
    assert outcome["status"] == "failed"
    error = outcome["error"]
    assert error["type"] == "NonDeterministicWorkflow"
    assert (error["seq"], error["recorded"], error["replayed"]) == (0, "step:other", "step:one")
    assert link.steps() == []


def test_returning_before_the_recorded_steps_is_nondeterministic() -> None:
    history = [completed(0, "one", 1), completed(1, "two", 2), completed(2, "three", 3)]
    outcome = run_workflow(flow, payload(history), context(Recorder()))
    assert outcome["error"]["type"] == "NonDeterministicWorkflow"
    assert outcome["error"]["seq"] == 2


def test_a_step_is_retried_then_recorded_as_failed() -> None:
    attempts: list[int] = []

    def broken(x: int) -> None:
        attempts.append(x)
        raise ValueError("no")

    def wf_flow(wf: Any, x: int) -> Any:
        return wf.step(broken, x, retries=2)

    link = Recorder()
    outcome = run_workflow(wf_flow, payload(), context(link))
    assert len(attempts) == 3
    [step] = link.steps()
    assert (step["status"], step["attempts"], step["error"]["type"]) == ("failed", 3, "ValueError")
    assert outcome["status"] == "failed" and outcome["error"]["type"] == "StepFailed"


def test_sleep_suspends_with_its_wake_time() -> None:
    def sleeper(wf: Any, x: int) -> None:
        wf.sleep("2h")

    link = Recorder()
    outcome = run_workflow(sleeper, payload(), context(link))
    assert outcome["status"] == "sleeping" and outcome["seq"] == 0
    [step] = link.steps()
    assert step["kind"] == "sleep" and step["wake_at"] == pytest.approx(outcome["until"])


def test_a_workflow_result_that_is_not_json_fails_the_run() -> None:
    outcome = run_workflow(lambda wf, x: object(), payload(), context(Recorder()))
    assert outcome["status"] == "failed"
    assert outcome["error"]["type"] == "ResultNotSerializable"


def test_invoking_the_function_directly_is_refused() -> None:
    with pytest.raises(InvalidInput):
        run_workflow(flow, {"not": "a run"}, context(Recorder()))
    assert ResultNotSerializable.status == 502


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("2h", 7200), ("1h30m", 5400), ("500ms", 0.5), ("7d", 604800), (3, 3.0),
     (timedelta(minutes=2), 120)],
)
def test_durations(value: Any, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "2 hours", "h", "-1s", -1, True, "1x"])
def test_bad_durations_name_the_field(value: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_duration(value, "timeout")
    assert caught.value.field == "timeout"


def test_waiters_match_type_and_pattern_on_their_bus() -> None:
    waiters = Waiters()
    waiters.add(StepRecord(run_id="r1", seq=3, name="t", kind="wait", status="waiting",
                           started_at=0, event_type="t", pattern={"data": {"id": ["a"]}},
                           bus="default"))
    wrong = CloudEvent.create("t", {"id": "b"}, source="s")
    other_type = CloudEvent.create("u", {"id": "a"}, source="s")
    match = CloudEvent.create("t", {"id": "a"}, source="s")
    assert waiters.ops_for("default", [wrong, other_type], 1.0) == []
    assert waiters.ops_for("side", [match], 1.0) == []
    resolve, wake = waiters.ops_for("default", [wrong, match], 1.0)
    assert (resolve.run_id, resolve.seq, resolve.output["id"]) == ("r1", 3, match.id)
    assert wake.run_id == "r1"
    waiters.forget("r1")
    assert len(waiters) == 0
