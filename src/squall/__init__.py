"""Squall: a self-hosted, Python-native serverless and event-driven platform."""

from squall import targets
from squall.aggregate import Aggregate
from squall.app import App
from squall.errors import (
    AccessDenied,
    ConditionFailed,
    ConfigError,
    Conflict,
    EventWaitTimeout,
    Forbidden,
    FunctionError,
    InitError,
    InvalidInput,
    InvocationError,
    NonDeterministicWorkflow,
    NotFound,
    OutOfMemory,
    PayloadTooLarge,
    ResultNotSerializable,
    SandboxCrashed,
    SquallError,
    StepFailed,
    Timeout,
    TooManyRequests,
    Unauthorized,
    WorkflowCancelled,
    WriteConflict,
    WrongExpectedVersion,
)
from squall.model.event_store import ExpectedVersion
from squall.model.http import CorsConfig, JwtConfig, RateLimit
from squall.model.stages import StageConfig as Stage
from squall.request import Request
from squall.response import Response
from squall.runtime.context import Context
from squall.runtime.workflow_context import Workflow

__version__ = "0.1.0"

__all__ = [
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
