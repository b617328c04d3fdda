"""Plain data: function configuration, invocation records, the app manifest."""

from squall.model.config import FunctionConfig, Manifest
from squall.model.invocation import (
    DeadLetter,
    InvocationRecord,
    InvocationStatus,
    LogEntry,
    LogRow,
    Trigger,
)

__all__ = [
    "DeadLetter",
    "FunctionConfig",
    "InvocationRecord",
    "InvocationStatus",
    "LogEntry",
    "LogRow",
    "Manifest",
    "Trigger",
]
