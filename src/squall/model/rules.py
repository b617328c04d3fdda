"""Event rules: which events on which bus go to which function."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from squall.errors import ConfigError

BUS_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
DEFAULT_BUS = "default"
MAX_HOPS = 16  # an event caused by more events than this in a row is a loop


class RuleConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``@app.on("order.placed", pattern={...}, bus=...)``: a rule with one function target."""

    name: str
    bus: str = DEFAULT_BUS
    pattern: dict[str, Any]
    function: str

    def validate(self) -> None:
        if not BUS_RE.match(self.bus):
            raise ConfigError(
                f"rule {self.name!r}: bus {self.bus!r} is invalid (lower-case letters, digits,"
                " '.', '_' or '-', starting with a letter)",
                field="bus",
                value=self.bus,
            )


def rule_pattern(event_type: str | None, pattern: dict[str, Any] | None) -> dict[str, Any]:
    """The full pattern of ``@app.on(event_type, pattern=...)``."""
    full = dict(pattern or {})
    if event_type is not None:
        if "type" in full:
            raise ConfigError(
                f"rule for {event_type!r}: give the event type either as the first argument"
                " or as pattern['type'], not both",
                field="pattern.type",
            )
        full["type"] = [event_type]
    if not full:
        raise ConfigError("a rule needs an event type or a pattern", field="pattern")
    return full
