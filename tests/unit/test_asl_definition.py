"""Loading ASL definitions: what is accepted, and a load error naming the state and field
for each kind of bad definition."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import squall
from squall.asl import load
from squall.errors import ConfigError


def machine(**states: Any) -> dict[str, Any]:
    return {"StartAt": next(iter(states)), "States": states}


def error_of(definition: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load("m", definition)
    return caught.value


GOOD = {
    "Comment": "every state type",
    "TimeoutSeconds": 60,
    "StartAt": "A",
    "States": {
        "A": {"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.a", "Next": "B"},
        "B": {"Type": "Task", "Resource": "squall:function:charge", "TimeoutSeconds": 3,
              "Retry": [{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1,
                         "MaxAttempts": 2, "BackoffRate": 1.5, "MaxDelaySeconds": 10,
                         "JitterStrategy": "FULL"},
                        {"ErrorEquals": ["States.ALL"]}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "F"}],
              "Next": "C"},
        "C": {"Type": "Choice", "Choices": [
            {"Variable": "$.a.x", "NumericEquals": 1, "Next": "W"}], "Default": "F"},
        "W": {"Type": "Wait", "Timestamp": "2030-01-01T00:00:00Z", "Next": "P"},
        "P": {"Type": "Parallel", "Branches": [machine(X={"Type": "Succeed"})], "Next": "M"},
        "M": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 3,
              "ItemSelector": {"v.$": "$$.Map.Item.Value"},
              "ItemProcessor": machine(Y={"Type": "Task", "Resource": "ship", "End": True}),
              "End": True},
        "F": {"Type": "Fail", "Error": "Failed", "CausePath": "$.err.Cause"},
    },
}


def test_a_definition_with_every_state_type_loads() -> None:
    loaded = load("m", GOOD)
    assert loaded.start_at == "A"
    assert loaded.timeout_s == 60
    assert loaded.states["B"].resource == "charge"
    assert loaded.states["B"].retry[0].jitter == "FULL"
    assert loaded.resources() == {"charge", "ship"}
    assert loaded.branch([["M", 0]]).start_at == "Y"
    assert loaded.states["M"].max_concurrency == 3


def test_json_text_and_files_load(tmp_path: Path) -> None:
    assert load("m", json.dumps(GOOD)).start_at == "A"
    path = tmp_path / "m.asl.json"
    path.write_text(json.dumps(GOOD))
    assert load("m", path).states["A"].type == "Pass"


@pytest.mark.parametrize(
    ("definition", "field", "words"),
    [
        (machine(A={"Type": "Pass", "End": True}, B={"Type": "Succeed"}), "States.B",
         "unreachable"),
        (machine(A={"Type": "Pass"}), "States.A.Next", "needs Next"),
        (machine(A={"Type": "Pass", "Next": "A", "End": True}), "States.A.Next", "not both"),
        (machine(A={"Type": "Pass", "Next": "Nowhere"}), "States.A.Next", "not a state"),
        (machine(A={"Type": "Magic", "End": True}), "States.A.Type", "not a state type"),
        (machine(A={"Type": "Pass", "End": True, "Resource": "x"}), "States.A.Resource",
         "not a field of a Pass state"),
        (machine(A={"Type": "Pass", "InputPath": "order", "End": True}), "States.A.InputPath",
         "must start with '$'"),
        (machine(A={"Type": "Pass", "OutputPath": "$.a[", "End": True}),
         "States.A.OutputPath", "not closed"),
        (machine(A={"Type": "Pass", "ResultPath": "$.a[*]", "End": True}),
         "States.A.ResultPath", "not a reference path"),
        (machine(A={"Type": "Pass", "ResultPath": "$$.a", "End": True}),
         "States.A.ResultPath", "$$"),
        (machine(A={"Type": "Pass", "Parameters": {"x.$": "States.Nope($)"}, "End": True}),
         "States.A.Parameters.x.$", "not an intrinsic function"),
        (machine(A={"Type": "Pass", "Parameters": {"x.$": "States.Format('{} {}', $.a)"},
                    "End": True}), "States.A.Parameters.x.$", "2 placeholder"),
        (machine(A={"Type": "Pass", "Parameters": {"x.$": "States.MathAdd(1)"},
                    "End": True}), "States.A.Parameters.x.$", "takes 2 argument"),
        (machine(A={"Type": "Pass", "Parameters": {"x.$": "States.Array('a)"},
                    "End": True}), "States.A.Parameters.x.$", "not closed"),
        (machine(A={"Type": "Pass", "Parameters": {"n": {"x.$": 3}}, "End": True}),
         "States.A.Parameters.n.x.$", "must be a path"),
        (machine(A={"Type": "Task", "Resource": "arn:aws:lambda:x", "End": True}),
         "States.A.Resource", "not a function"),
        (machine(A={"Type": "Task", "Resource": "f", "TimeoutSeconds": 0, "End": True}),
         "States.A.TimeoutSeconds", ">="),
        (machine(A={"Type": "Task", "Resource": "f", "End": True,
                    "Retry": [{"ErrorEquals": []}]}), "States.A.Retry[0].ErrorEquals",
         "non-empty"),
        (machine(A={"Type": "Task", "Resource": "f", "End": True,
                    "Retry": [{"ErrorEquals": ["X"], "BackoffRate": 0.5}]}),
         "States.A.Retry[0].BackoffRate", ">= 1.0"),
        (machine(A={"Type": "Task", "Resource": "f", "End": True,
                    "Retry": [{"ErrorEquals": ["X"], "MaxAttempts": 1.5}]}),
         "States.A.Retry[0].MaxAttempts", "integer"),
        (machine(A={"Type": "Task", "Resource": "f", "End": True,
                    "Retry": [{"ErrorEquals": ["X"], "JitterStrategy": "SOME"}]}),
         "States.A.Retry[0].JitterStrategy", "FULL or NONE"),
        (machine(A={"Type": "Task", "Resource": "f", "End": True,
                    "Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}]}),
         "States.A.Retry[0].ErrorEquals", "last"),
        (machine(A={"Type": "Task", "Resource": "f", "End": True,
                    "Retry": [{"ErrorEquals": ["X"], "Interval": 1}]}),
         "States.A.Retry[0].Interval", "not a field of a retrier"),
        (machine(A={"Type": "Task", "Resource": "f", "End": True,
                    "Catch": [{"ErrorEquals": ["States.ALL", "X"], "Next": "A"}]}),
         "States.A.Catch[0].ErrorEquals", "only error name"),
        (machine(A={"Type": "Task", "Resource": "f", "End": True,
                    "Catch": [{"ErrorEquals": ["X"]}]}), "States.A.Catch[0].Next", "Next"),
        (machine(A={"Type": "Task", "Resource": "f", "End": True,
                    "Catch": [{"ErrorEquals": ["X"], "Next": "Gone"}]}),
         "States.A.Catch[0].Next", "not a state"),
        (machine(A={"Type": "Choice", "Choices": []}), "States.A.Choices", "non-empty"),
        (machine(A={"Type": "Choice", "Next": "A", "Choices": []}), "States.A.Next",
         "not a field of a Choice"),
        (machine(A={"Type": "Choice", "Choices": [{"Variable": "$.x", "StringEquals": "a"}]}),
         "States.A.Choices[0].Next", "needs Next"),
        (machine(A={"Type": "Choice", "Choices": [
            {"Variable": "$.x", "StringIs": "a", "Next": "A"}]}),
         "States.A.Choices[0].StringIs", "not a comparison operator"),
        (machine(A={"Type": "Choice", "Choices": [
            {"Variable": "$.x", "NumericEquals": "1", "Next": "A"}]}),
         "States.A.Choices[0].NumericEquals", "takes a number"),
        (machine(A={"Type": "Choice", "Choices": [
            {"Variable": "$.x[*]", "IsNull": True, "Next": "A"}]}),
         "States.A.Choices[0].Variable", "reference path"),
        (machine(A={"Type": "Choice", "Choices": [
            {"And": [{"Variable": "$.x", "IsNull": "yes"}], "Next": "A"}]}),
         "States.A.Choices[0].And[0].IsNull", "true or false"),
        (machine(A={"Type": "Choice", "Choices": [
            {"Not": {"Variable": "$.x", "TimestampEquals": "yesterday"}, "Next": "A"}]}),
         "States.A.Choices[0].Not.TimestampEquals", "RFC 3339"),
        (machine(A={"Type": "Choice", "Choices": [
            {"Variable": "$.x", "IsNull": True, "Next": "A"}], "Default": "B"}),
         "States.A.Default", "not a state"),
        (machine(A={"Type": "Wait", "End": True}), "States.A.Seconds", "exactly one"),
        (machine(A={"Type": "Wait", "Seconds": 1, "SecondsPath": "$.s", "End": True}),
         "States.A.Seconds", "exactly one"),
        (machine(A={"Type": "Wait", "Timestamp": "soon", "End": True}), "States.A.Timestamp",
         "RFC 3339"),
        (machine(A={"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}), "States.A.ErrorPath",
         "not both"),
        (machine(A={"Type": "Fail", "CausePath": "States.Format('{}')"}),
         "States.A.CausePath", "placeholder"),
        (machine(A={"Type": "Succeed", "End": True}), "States.A.End", "not a field"),
        (machine(A={"Type": "Parallel", "Branches": [], "End": True}), "States.A.Branches",
         "non-empty"),
        (machine(A={"Type": "Parallel", "End": True, "Branches": [
            machine(X={"Type": "Pass"})]}), "States.A.Branches[0].States.X.Next",
         "needs Next"),
        (machine(A={"Type": "Map", "End": True}), "States.A.ItemProcessor", "needs"),
        (machine(A={"Type": "Map", "End": True, "MaxConcurrency": -1,
                    "ItemProcessor": machine(X={"Type": "Succeed"})}),
         "States.A.MaxConcurrency", ">= 0"),
        (machine(A={"Type": "Map", "End": True, "ItemProcessor": {
            "StartAt": "X", "States": {"X": {"Type": "Succeed"}, "Y": {"Type": "Succeed"}}}}),
         "States.A.ItemProcessor.States.Y", "unreachable"),
        ({"StartAt": "Nope", "States": {"A": {"Type": "Succeed"}}}, "StartAt", "not one of"),
        ({"StartAt": "A", "States": {}}, "States", "at least one state"),
        ({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}, "TimeoutSeconds": 0},
         "TimeoutSeconds", ">= 0.001"),
        (machine(A={"Type": "Parallel", "End": True, "Branches": [
            {"StartAt": "X", "States": {"X": {"Type": "Succeed"}}, "TimeoutSeconds": 5}]}),
         "States.A.Branches[0].TimeoutSeconds", "not a supported field"),
        ({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}, "HeartbeatSeconds": 5},
         "HeartbeatSeconds", "not a supported field"),
        ("{not json", "definition", "not JSON"),
    ],
)
def test_bad_definitions_name_the_state_and_field(definition: Any, field: str,
                                                  words: str) -> None:
    error = error_of(definition)
    assert error.field == field
    assert words in error.message
    assert error.message.startswith("state machine 'm': ")


def test_app_state_machine_refuses_a_bad_definition_at_load() -> None:
    app = squall.App("a")
    with pytest.raises(ConfigError, match=r"States\.A\.Next"):
        app.state_machine("m", definition=machine(A={"Type": "Pass"}))
    assert not app.workflows and not app.functions


def test_app_state_machine_declares_its_workflows_and_permissions() -> None:
    app = squall.App("a")
    app.state_machine("m", definition=GOOD, permissions=["publish:default"])
    assert [w.name for w in app.workflows] == ["m", "m-branch"]
    config = app.functions["m"].config
    assert set(config.permissions) == {"publish:default", "invoke:charge", "invoke:ship"}
    assert [w.step_retries for w in app.workflows] == [0, 0]
    simple = squall.App("b")
    simple.state_machine("s", definition=machine(A={"Type": "Succeed"}))
    assert [w.name for w in simple.workflows] == ["s"]


def test_a_task_naming_no_function_of_the_app_fails_the_manifest() -> None:
    app = squall.App("a")
    app.state_machine("m", definition=machine(
        P={"Type": "Parallel", "End": True, "Branches": [
            machine(T={"Type": "Task", "Resource": "later", "End": True})]}))

    @app.function()
    def later(event: Any, ctx: Any) -> Any:
        return event

    assert [f.name for f in app.manifest().functions] == ["m", "m-branch", "later"]
    app.state_machine("n", definition=machine(T={"Type": "Task", "Resource": "nope",
                                                 "End": True}))
    with pytest.raises(ConfigError) as caught:
        app.manifest()
    assert caught.value.field == "States.T.Resource"
    assert "'nope' is not a function of app 'a'" in caught.value.message
    del app.state_machines["n"]
    app.state_machine("o", definition=machine(T={"Type": "Task", "Resource": "m",
                                                 "End": True}))
    with pytest.raises(ConfigError, match="it is a workflow"):
        app.manifest()
