"""Squall: a self-hosted, Python-native serverless and event-driven platform."""

from squall.app import App
from squall.errors import (
    ConfigError,
    Conflict,
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
)
from squall.response import Response
from squall.runtime.context import Context

__version__ = "0.1.0"

__all__ = [
    "App",
    "ConfigError",
    "Conflict",
    "Context",
    "FunctionError",
    "InitError",
    "InvalidInput",
    "InvocationError",
    "NotFound",
    "OutOfMemory",
    "PayloadTooLarge",
    "Response",
    "ResultNotSerializable",
    "SandboxCrashed",
    "SquallError",
    "Timeout",
    "TooManyRequests",
    "__version__",
]
