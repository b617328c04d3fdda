"""The Squall error tree.

Every error the platform reports derives from :class:`SquallError`. Errors carry
fields, serialize across the sandbox boundary (``to_dict`` / ``from_dict``) and
are translated at the edge into an HTTP status with a JSON body, or a CLI line.

    SquallError
    ├── ConfigError            invalid app / function configuration      (400)
    │   └── DependencyError    a requirement set failed to install
    ├── InvalidInput           malformed request or payload              (400)
    ├── Unauthorized           missing or invalid credentials            (401)
    ├── Forbidden              valid credentials, action not allowed     (403)
    │   └── AccessDenied       a function used a resource it did not declare
    ├── NotFound               unknown function, invocation, …           (404)
    ├── Conflict               resource in a state that forbids the call (409)
    │   ├── ConditionFailed    a conditional write's condition did not hold
    │   ├── WriteConflict      what an invocation wrote changed before it committed
    │   │   └── WrongExpectedVersion  an append expected another stream version
    │   └── NonDeterministicWorkflow  a replay's steps differ from the run's history
    ├── PayloadTooLarge        payload over the configured limit         (413)
    ├── UnsupportedMediaType   a body in a content type the API does not read (415)
    ├── TooManyRequests        concurrency exhausted for a sync call     (429)
    ├── ResultNotSerializable  handler returned something not JSON-able  (502)
    └── InvocationError        the invocation itself failed              (502)
        ├── FunctionError      the handler raised
        ├── InitError          the init hook raised
        ├── Timeout            the deadline passed; the sandbox was killed (504)
        ├── OutOfMemory        the handler went past memory_mb
        ├── SandboxCrashed     the sandbox process died
        ├── StepFailed         a workflow step failed after its retries
        ├── EventWaitTimeout   a workflow's wait_for_event timed out
        └── WorkflowCancelled  the workflow run was cancelled
"""

from __future__ import annotations

from typing import Any, ClassVar


class SquallError(Exception):
    """Root of every error Squall raises or reports."""

    status: ClassVar[int] = 500

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    @property
    def type(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        body.update(self.details)
        return body

    @staticmethod
    def from_dict(data: dict[str, Any]) -> SquallError:
        """Rebuild an error reported by a sandbox or a server."""
        fields = dict(data)
        cls = ERROR_TYPES.get(str(fields.pop("type", "")), SquallError)
        message = str(fields.pop("message", ""))
        field = fields.pop("field", None)
        return cls(message, field=field, **fields)

    def __str__(self) -> str:
        return self.message


class ConfigError(SquallError):
    status = 400


class DependencyError(ConfigError):
    """Installing a dependency environment failed; ``details`` carry the
    ``requirements`` and the installer's ``stderr`` (its last lines)."""


class InvalidInput(SquallError):
    status = 400


class Unauthorized(SquallError):
    status = 401


class Forbidden(SquallError):
    status = 403


class AccessDenied(Forbidden):
    """``details`` name the ``function``, the ``action`` and the ``resource``."""


class NotFound(SquallError):
    status = 404


class Conflict(SquallError):
    status = 409


class ConditionFailed(Conflict):
    """A conditional table write (``if_not_exists``, ``if_version``, a condition on an
    attribute) found the item otherwise; nothing was written."""


class WriteConflict(Conflict):
    """An item the invocation wrote was changed by someone else before the invocation's
    effects committed; none of them were applied (an async attempt is retried)."""


class WrongExpectedVersion(WriteConflict):
    """An event-store append expected a stream version other than the stream's (its
    details say ``stream``, ``expected`` and ``current``)."""


class PayloadTooLarge(SquallError):
    status = 413


class UnsupportedMediaType(SquallError):
    status = 415


class TooManyRequests(SquallError):
    status = 429


class ResultNotSerializable(SquallError):
    status = 502


class InvocationError(SquallError):
    status = 502


class FunctionError(InvocationError):
    """The handler raised; ``details`` carry ``error_type`` and ``traceback``."""


class InitError(InvocationError):
    pass


class Timeout(InvocationError):
    status = 504


class OutOfMemory(InvocationError):
    pass


class SandboxCrashed(InvocationError):
    pass


class NonDeterministicWorkflow(Conflict):
    """A replay asked for a different step than the one its history holds at a position."""


class StepFailed(InvocationError):
    """A workflow step failed after its retries; ``details`` name the step and its error."""


class EventWaitTimeout(InvocationError):
    status = 504


class WorkflowCancelled(InvocationError):
    status = 409


ERROR_TYPES: dict[str, type[SquallError]] = {
    cls.__name__: cls
    for cls in (
        SquallError,
        ConfigError,
        DependencyError,
        InvalidInput,
        Unauthorized,
        Forbidden,
        AccessDenied,
        NotFound,
        Conflict,
        ConditionFailed,
        WriteConflict,
        WrongExpectedVersion,
        PayloadTooLarge,
        UnsupportedMediaType,
        TooManyRequests,
        ResultNotSerializable,
        InvocationError,
        FunctionError,
        InitError,
        Timeout,
        OutOfMemory,
        SandboxCrashed,
        NonDeterministicWorkflow,
        StepFailed,
        EventWaitTimeout,
        WorkflowCancelled,
    )
}
