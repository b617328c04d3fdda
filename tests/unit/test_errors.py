"""The error tree: serialization across the sandbox boundary and the public API."""

from __future__ import annotations

import pytest

import squall
from squall import errors
from squall.errors import ERROR_TYPES, SquallError

ALL_ERRORS = sorted(ERROR_TYPES.values(), key=lambda cls: cls.__name__)


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_round_trip_keeps_class_message_field_details(cls: type[SquallError]) -> None:
    original = cls("it broke", field="payload", size=10, nested={"a": [1, 2]})
    data = original.to_dict()
    assert data == {
        "type": cls.__name__,
        "message": "it broke",
        "field": "payload",
        "size": 10,
        "nested": {"a": [1, 2]},
    }
    rebuilt = SquallError.from_dict(data)
    assert type(rebuilt) is cls
    assert rebuilt.message == "it broke"
    assert str(rebuilt) == "it broke"
    assert rebuilt.field == "payload"
    assert rebuilt.details == {"size": 10, "nested": {"a": [1, 2]}}
    assert rebuilt.status == cls.status


def test_round_trip_without_field() -> None:
    data = errors.Timeout("late", timeout_s=3).to_dict()
    assert "field" not in data
    rebuilt = SquallError.from_dict(data)
    assert isinstance(rebuilt, errors.Timeout)
    assert rebuilt.field is None
    assert rebuilt.details == {"timeout_s": 3}


def test_from_dict_does_not_mutate_its_input() -> None:
    data = errors.NotFound("gone", field="function", function="x").to_dict()
    before = dict(data)
    SquallError.from_dict(data)
    assert data == before


def test_unknown_type_falls_back_to_base() -> None:
    rebuilt = SquallError.from_dict({"type": "WeirdError", "message": "m", "extra": 1})
    assert type(rebuilt) is SquallError
    assert rebuilt.details == {"extra": 1}


def test_every_error_class_is_registered() -> None:
    classes = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, SquallError)
    }
    assert set(ERROR_TYPES.values()) == classes


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (errors.ConfigError, 400),
        (errors.InvalidInput, 400),
        (errors.NotFound, 404),
        (errors.Conflict, 409),
        (errors.ConditionFailed, 409),
        (errors.WriteConflict, 409),
        (errors.PayloadTooLarge, 413),
        (errors.TooManyRequests, 429),
        (errors.ResultNotSerializable, 502),
        (errors.InvocationError, 502),
        (errors.FunctionError, 502),
        (errors.InitError, 502),
        (errors.Timeout, 504),
        (errors.OutOfMemory, 502),
        (errors.SandboxCrashed, 502),
    ],
)
def test_http_status(cls: type[SquallError], status: int) -> None:
    assert cls.status == status


def test_invocation_errors_share_a_base() -> None:
    for cls in (
        errors.FunctionError,
        errors.InitError,
        errors.Timeout,
        errors.OutOfMemory,
        errors.SandboxCrashed,
    ):
        assert issubclass(cls, errors.InvocationError)


def test_public_api_is_pinned() -> None:
    assert squall.__all__ == [
        "AccessDenied",
        "Aggregate",
        "App",
        "ConditionFailed",
        "ConfigError",
        "Conflict",
        "Context",
        "CorsConfig",
        "EventWaitTimeout",
        "ExpectedVersion",
        "Forbidden",
        "FunctionError",
        "InitError",
        "InvalidInput",
        "InvocationError",
        "JwtConfig",
        "NonDeterministicWorkflow",
        "NotFound",
        "OutOfMemory",
        "PayloadTooLarge",
        "RateLimit",
        "Request",
        "Response",
        "ResultNotSerializable",
        "SandboxCrashed",
        "SquallError",
        "Stage",
        "StepFailed",
        "Timeout",
        "TooManyRequests",
        "Unauthorized",
        "Workflow",
        "WorkflowCancelled",
        "WriteConflict",
        "WrongExpectedVersion",
        "__version__",
        "targets",
    ]
    for name in squall.__all__:
        assert hasattr(squall, name), name
