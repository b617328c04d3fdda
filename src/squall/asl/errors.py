"""The errors a state machine raises while it runs, named as the ASL spec names them."""

from __future__ import annotations

from typing import Any

ALL = "States.ALL"
TASK_FAILED = "States.TaskFailed"
TIMEOUT = "States.Timeout"
RUNTIME = "States.Runtime"
NO_CHOICE_MATCHED = "States.NoChoiceMatched"
BRANCH_FAILED = "States.BranchFailed"
RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"
PARAMETER_PATH_FAILURE = "States.ParameterPathFailure"
INTRINSIC_FAILURE = "States.IntrinsicFailure"
PERMISSIONS = "States.Permissions"

# Platform error types a Task's function call can end with, as ASL error names.
_PLATFORM_ERRORS = {
    "Timeout": TIMEOUT,
    "AccessDenied": PERMISSIONS,
    "SandboxCrashed": TASK_FAILED,
    "OutOfMemory": TASK_FAILED,
    "InitError": TASK_FAILED,
    "ResultNotSerializable": TASK_FAILED,
}


class StatesError(Exception):
    """A failure with an ASL ``Error`` name and a ``Cause``; ``Catch`` and ``Retry`` match
    on the name."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause

    def output(self) -> dict[str, Any]:
        """What a ``Catch`` passes on: ``{"Error", "Cause"}``."""
        return {"Error": self.error, "Cause": self.cause}


def task_error(cause: dict[str, Any]) -> StatesError:
    """The ASL error of a failed function call (its error as the platform reported it):
    a handler's exception type is the name (``ValueError``); platform failures map to
    ``States.Timeout``, ``States.Permissions`` or ``States.TaskFailed``."""
    kind = str(cause.get("type") or "")
    message = str(cause.get("message") or "")
    if kind == "FunctionError":
        name = str(cause.get("error_type") or TASK_FAILED)
        return StatesError(name, message.removeprefix(f"{name}: "))
    if kind == "StatesFailure":  # a nested state machine's failure keeps its name
        return StatesError(str(cause.get("error") or TASK_FAILED), str(cause.get("cause", "")))
    return StatesError(_PLATFORM_ERRORS.get(kind, TASK_FAILED), message)


def matches(error_equals: tuple[str, ...], error: str) -> bool:
    """Whether a retrier or catcher on ``error_equals`` takes ``error``. ``States.ALL``
    matches every error, ``States.TaskFailed`` every error but ``States.Timeout``; nothing
    takes ``States.Runtime``, which always fails the execution, as the spec says."""
    if error == RUNTIME:
        return False
    if error in error_equals:
        return True
    if ALL in error_equals:
        return True
    if TASK_FAILED in error_equals:
        return error != TIMEOUT
    return False
