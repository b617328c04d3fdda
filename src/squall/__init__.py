"""Squall: a self-hosted, Python-native serverless and event-driven platform."""

from squall import targets
from squall.app import App
from squall.errors import (
    AccessDenied,
    ConditionFailed,
    ConfigError,
    Conflict,
    Forbidden,
    FunctionError,
    InitError,
    InvalidInput,
    InvocationError,
    NotFound,
    OutOfMemory,
    PayloadTooLarge,
    ResultNotSerializable,
    SandboxCrashed,
    SquallError,
    Timeout,
    TooManyRequests,
    Unauthorized,
    WriteConflict,
)
from squall.model.http import CorsConfig, JwtConfig, RateLimit
from squall.request import Request
from squall.response import Response
from squall.runtime.context import Context

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "App",
    "ConditionFailed",
    "ConfigError",
    "Conflict",
    "Context",
    "CorsConfig",
    "Forbidden",
    "FunctionError",
    "InitError",
    "InvalidInput",
    "InvocationError",
    "JwtConfig",
    "NotFound",
    "OutOfMemory",
    "PayloadTooLarge",
    "RateLimit",
    "Request",
    "Response",
    "ResultNotSerializable",
    "SandboxCrashed",
    "SquallError",
    "Timeout",
    "TooManyRequests",
    "Unauthorized",
    "WriteConflict",
    "__version__",
    "targets",
]
