"""The interpreter in the sandbox, driven through a recording link instead of a platform:
state I/O processing, Retry delays, Catch, the errors the spec names, and replays that
return what the first run recorded (UUIDs, random draws, jitter) without new checkpoints."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from squall.asl import load
from squall.asl.interpreter import run_machine
from squall.errors import FunctionError, SquallError
from squall.runtime.context import Context
from squall.runtime.workflow_context import run_workflow


class Link:
    """Answers ``invoke`` from Python functions and records every checkpoint."""

    def __init__(self, functions: dict[str, Callable[[Any], Any]]) -> None:
        self.functions = functions
        self.invoked: list[tuple[str, Any]] = []
        self.steps: list[dict[str, Any]] = []

    def call(self, op: str, args: dict[str, Any]) -> bytes | None:
        if op == "invoke":
            payload = msgspec.json.decode(args["payload"])
            self.invoked.append((args["function"], payload))
            try:
                return msgspec.json.encode(self.functions[args["function"]](payload))
            except Exception as exc:
                name = type(exc).__name__
                raise SquallError.from_dict(FunctionError(
                    f"{name}: {exc}", error_type=name).to_dict()) from None
        assert op == "workflow" and args["action"] == "checkpoint"
        self.steps.append(args["step"])
        return b"null"

    def history(self) -> list[dict[str, Any]]:
        """The checkpoints as a run's history, with every sleep over."""
        out = []
        for step in self.steps:
            record = {k: v for k, v in step.items() if k != "output_json"}
            if "output_json" in step:
                record["output"] = msgspec.json.decode(step["output_json"])
            if record["status"] == "sleeping":
                record["status"] = "completed"
            out.append(record)
        return out


def execute(definition: dict[str, Any], value: Any, link: Link) -> dict[str, Any]:
    """Replay until the run no longer sleeps; its last outcome."""
    machine = load("m", definition)
    while True:
        ctx = Context(link=link, function_name="m", version="v", memory_mb=128,
                      logger=logging.getLogger("asl"))
        run = {"run_id": "r1", "workflow": "m", "input": value, "history": link.history()}
        outcome = run_workflow(lambda wf, v: run_machine(wf, "m", machine, v), run, ctx)
        if outcome["status"] != "sleeping":
            return outcome


def states(link: Link) -> list[tuple[str, str]]:
    return [(s["name"], s["status"]) for s in link.steps if s["kind"] == "state"]


def test_input_and_output_processing_in_order() -> None:
    link = Link({"add": lambda e: {"sum": e["a"] + e["b"], "noise": 1}})
    definition = {"StartAt": "Add", "States": {"Add": {
        "Type": "Task", "Resource": "add", "InputPath": "$.numbers",
        "Parameters": {"a.$": "$.x", "b.$": "$.y"}, "ResultSelector": {"value.$": "$.sum"},
        "ResultPath": "$.numbers.result", "OutputPath": "$.numbers", "End": True}}}
    outcome = execute(definition, {"numbers": {"x": 2, "y": 3}, "other": 0}, link)
    assert outcome == {"status": "completed",
                       "result": {"x": 2, "y": 3, "result": {"value": 5}}}
    assert link.invoked == [("add", {"a": 2, "b": 3})]


def test_null_paths_discard() -> None:
    link = Link({"f": lambda e: "ignored"})
    definition = {"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "f", "InputPath": None, "ResultPath": None,
              "Next": "B"},
        "B": {"Type": "Pass", "OutputPath": None, "End": True}}}
    assert execute(definition, {"keep": 1}, link)["result"] == {}
    assert link.invoked == [("f", {})]
    assert link.steps[-2]["output_json"] == b'{"keep":1}'


def test_retry_delays_back_off_and_are_capped() -> None:
    tries: list[int] = []

    def flaky(event: Any) -> Any:
        tries.append(1)
        if len(tries) < 4:
            raise TimeoutError("slow")
        return "ok"

    link = Link({"f": flaky})
    definition = {"StartAt": "A", "States": {"A": {
        "Type": "Task", "Resource": "f", "End": True,
        "Retry": [{"ErrorEquals": ["ValueError"], "MaxAttempts": 9},
                  {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 2,
                   "BackoffRate": 3, "MaxAttempts": 3, "MaxDelaySeconds": 10}]}}}
    assert execute(definition, {}, link)["result"] == "ok"
    sleeps = [s["wake_at"] - s["started_at"] for s in link.steps if s["kind"] == "sleep"]
    assert [round(s) for s in sleeps] == [2, 6, 10]


def test_retries_run_out_and_the_error_keeps_its_name() -> None:
    link = Link({"f": lambda e: 1 / 0})
    definition = {"StartAt": "A", "States": {"A": {
        "Type": "Task", "Resource": "f", "End": True,
        "Retry": [{"ErrorEquals": ["ZeroDivisionError"], "IntervalSeconds": 0.001,
                   "MaxAttempts": 2}]}}}
    outcome = execute(definition, {}, link)
    assert outcome["status"] == "failed"
    assert outcome["error"]["error"] == "ZeroDivisionError"
    assert outcome["error"]["cause"] == "division by zero"
    assert len(link.invoked) == 3


def test_max_attempts_zero_never_retries() -> None:
    link = Link({"f": lambda e: 1 / 0})
    definition = {"StartAt": "A", "States": {"A": {
        "Type": "Task", "Resource": "f", "End": True,
        "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 0}]}}}
    assert execute(definition, {}, link)["status"] == "failed"
    assert len(link.invoked) == 1


def test_a_runtime_error_is_never_caught_or_retried() -> None:
    link = Link({"f": lambda e: e})
    for catch in (["States.ALL"], ["States.Runtime"]):
        definition = {"StartAt": "A", "States": {
            "A": {"Type": "Task", "Resource": "f", "InputPath": "$.missing", "End": True,
                  "Retry": [{"ErrorEquals": catch}],
                  "Catch": [{"ErrorEquals": catch, "Next": "B"}]},
            "B": {"Type": "Succeed"}}}
        outcome = execute(definition, {}, link)
        assert outcome["error"]["error"] == "States.Runtime"
        assert "InputPath" in outcome["error"]["cause"]
    assert link.invoked == []
    assert not [s for s in link.steps if s["kind"] == "sleep"]


def test_catch_result_path_puts_the_error_beside_the_input() -> None:
    link = Link({"f": lambda e: int("x")})
    definition = {"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "f", "End": True,
              "Catch": [{"ErrorEquals": ["TypeError"], "Next": "B"},
                        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "B"}]},
        "B": {"Type": "Succeed"}}}
    outcome = execute(definition, {"x": 1}, link)
    assert outcome["result"] == {"x": 1, "e": {
        "Error": "ValueError", "Cause": "invalid literal for int() with base 10: 'x'"}}


def test_result_path_into_a_non_object_is_a_match_failure() -> None:
    definition = {"StartAt": "A", "States": {"A": {
        "Type": "Task", "Resource": "f", "ResultPath": "$.x.y", "End": True,
        "Catch": [{"ErrorEquals": ["States.ResultPathMatchFailure"], "ResultPath": None,
                   "Next": "B"}]}, "B": {"Type": "Succeed"}}}
    link = Link({"f": lambda e: 1})
    outcome = execute(definition, {"x": 5}, link)
    assert outcome["result"] == {"x": 5}
    assert states(link) == [("A", "failed"), ("B", "completed")]
    failed = next(s for s in link.steps if s["kind"] == "state")
    assert failed["error"]["type"] == "States.ResultPathMatchFailure"


def test_wait_states_sleep_durably() -> None:
    link = Link({})
    definition = {"StartAt": "A", "States": {
        "A": {"Type": "Wait", "Seconds": 30, "Next": "B"},
        "B": {"Type": "Wait", "Timestamp": "2001-01-01T00:00:00Z", "Next": "C"},
        "C": {"Type": "Wait", "TimestampPath": "$.when", "Next": "D"},
        "D": {"Type": "Wait", "SecondsPath": "$.s", "End": True}}}
    value = {"when": "2002-01-01T00:00:00+01:00", "s": 0}
    assert execute(definition, value, link)["result"] == value
    sleeps = [s for s in link.steps if s["kind"] == "sleep"]
    assert [s["name"] for s in sleeps] == ["sleep", "sleep_until", "sleep_until"]
    assert sleeps[1]["wake_at"] == 978307200.0
    assert sleeps[2]["wake_at"] == 1009839600.0
    assert states(link) == [("A", "completed"), ("B", "completed"), ("C", "completed"),
                            ("D", "completed")]


def test_a_bad_seconds_path_value_is_a_runtime_error() -> None:
    definition = {"StartAt": "A", "States": {"A": {"Type": "Wait", "SecondsPath": "$.s",
                                                   "End": True}}}
    outcome = execute(definition, {"s": "soon"}, Link({}))
    assert outcome["error"]["error"] == "States.Runtime"


def test_uuids_and_random_numbers_are_the_same_on_replay() -> None:
    definition = {"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Parameters": {
            "id.$": "States.UUID()", "n.$": "States.MathRandom(0, 1000000)",
            "hash.$": "States.Hash($.name, 'SHA-1')"}, "Next": "B"},
        "B": {"Type": "Wait", "Seconds": 5, "End": True}}}
    link = Link({})
    first = execute(definition, {"name": "x"}, link)["result"]
    recorded = len(link.steps)
    again = execute(definition, {"name": "x"}, link)["result"]
    assert again == first
    assert len(link.steps) == recorded  # the replay checkpointed nothing new
    assert [s["name"] for s in link.steps if s["kind"] == "step"] == [
        "States.UUID", "States.MathRandom"]


def test_context_object() -> None:
    definition = {"StartAt": "Here", "States": {"Here": {"Type": "Pass", "Parameters": {
        "run.$": "$$.Execution.Id", "machine.$": "$$.StateMachine.Name",
        "state.$": "$$.State.Name", "input.$": "$$.Execution.Input"}, "End": True}}}
    outcome = execute(definition, {"a": 1}, Link({}))
    assert outcome["result"] == {"run": "r1", "machine": "m", "state": "Here",
                                 "input": {"a": 1}}


@pytest.mark.parametrize(("value", "expected"), [({"n": 1}, "One"), ({"n": 2}, "Other")])
def test_choice_default(value: Any, expected: str) -> None:
    definition = {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [
            {"Variable": "$.n", "NumericEquals": 1, "Next": "One"}], "Default": "Other"},
        "One": {"Type": "Pass", "Result": "One", "End": True},
        "Other": {"Type": "Pass", "Result": "Other", "End": True}}}
    assert execute(definition, value, Link({}))["result"] == expected


def test_a_fail_state_is_not_caught_and_ends_the_run() -> None:
    definition = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Boom",
                                                   "Cause": "on purpose"}}}
    outcome = execute(definition, {}, Link({}))
    assert outcome["status"] == "failed"
    assert outcome["error"]["type"] == "StatesFailure"
    assert (outcome["error"]["error"], outcome["error"]["cause"]) == ("Boom", "on purpose")


def test_the_branch_workflow_refuses_input_it_did_not_make() -> None:
    from squall.asl.interpreter import run_branch

    machine = load("m", {"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": True,
        "Branches": [{"StartAt": "X", "States": {"X": {"Type": "Succeed"}}}]}}})
    link = Link({})
    ctx = Context(link=link, function_name="m-branch", version="v", memory_mb=128,
                  logger=logging.getLogger("asl"))
    for bad in ({"address": [["Nope", 0]]}, {"address": [["P", 3]]}, "text", {}):
        run = {"run_id": "r1", "workflow": "m-branch", "input": bad, "history": []}
        outcome = run_workflow(lambda wf, v: run_branch(wf, "m", machine, v), run, ctx)
        assert outcome["status"] == "failed"
        assert outcome["error"]["type"] == "InvalidInput"
        assert "start 'm' instead" in outcome["error"]["message"]
    good = {"run_id": "r2", "workflow": "m-branch", "history": [],
            "input": {"address": [["P", 0]], "input": {"v": 1}}}
    outcome = run_workflow(lambda wf, v: run_branch(wf, "m", machine, v), good, ctx)
    assert outcome == {"status": "completed", "result": {"v": 1}}


def test_the_execution_timeout_caps_waits_and_ends_the_run() -> None:
    link = Link({"f": lambda e: e})
    definition = {"TimeoutSeconds": 5, "StartAt": "Nap", "States": {
        "Nap": {"Type": "Wait", "Seconds": 3600, "Next": "Work"},
        "Work": {"Type": "Task", "Resource": "f", "End": True,
                 "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Never"}]},
        "Never": {"Type": "Succeed"}}}
    machine = load("m", definition)
    ctx = Context(link=link, function_name="m", version="v", memory_mb=128,
                  logger=logging.getLogger("asl"))

    def replay() -> dict[str, Any]:
        run = {"run_id": "r1", "workflow": "m", "input": {}, "history": link.history()}
        return run_workflow(lambda wf, v: run_machine(wf, "m", machine, v), run, ctx)

    assert replay()["status"] == "sleeping"
    started, nap = link.steps
    assert started["name"] == "execution-started"
    assert round(nap["wake_at"] - nap["started_at"]) == 5  # capped by TimeoutSeconds
    # a replay within the deadline goes on; once it has passed, new work is refused
    started["output_json"] = msgspec.json.encode(
        msgspec.json.decode(started["output_json"]) - 10)
    outcome = replay()
    assert outcome["status"] == "failed"
    assert outcome["error"]["error"] == "States.Timeout"
    assert "TimeoutSeconds=5" in outcome["error"]["cause"]
    assert link.invoked == []  # not caught, and the Task never ran
    assert states(link) == [("Nap", "completed")]


def test_a_task_gets_what_is_left_of_the_execution_timeout() -> None:
    seen: list[Any] = []

    class Timed(Link):
        def call(self, op: str, args: dict[str, Any]) -> bytes | None:
            if op == "invoke":
                seen.append(args.get("timeout_s"))
            return super().call(op, args)

    link = Timed({"f": lambda e: 1})
    definition = {"TimeoutSeconds": 30, "StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "f", "TimeoutSeconds": 60, "Next": "B"},
        "B": {"Type": "Task", "Resource": "f", "TimeoutSeconds": 2, "End": True}}}
    assert execute(definition, {}, link)["result"] == 1
    assert 29 < seen[0] <= 30 and seen[1] == 2
