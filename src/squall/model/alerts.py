"""Alert rules an app declares on its metrics (``app.alert``)."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

import msgspec

from squall.errors import ConfigError

METRICS = ("error_rate", "p99_ms", "dlq_depth", "throttles")
NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.-]{0,63}$")
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_WINDOW_S = 86400


class AlertConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Fires when ``metric`` of ``function`` (every function when None) over the last
    ``window_s`` seconds is above ``threshold``; resolves when it is back at or below it.

    ``error_rate`` (0-1: failed / finished invocations), ``p99_ms`` (duration), ``dlq_depth``
    (dead letters held now; the window does not apply), ``throttles`` (sync calls refused).
    """

    name: str
    metric: str
    threshold: float
    window_s: float = 300.0
    function: str | None = None

    def validate(self) -> None:
        where = f"alert {self.name!r}"
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise ConfigError(
                f"alert name {self.name!r} is invalid (letters, digits, '_', '-', '.',"
                " starting with a letter, at most 64)",
                field="name",
            )
        if self.metric not in METRICS:
            raise ConfigError(
                f"{where}: metric={self.metric!r} is not one of {', '.join(METRICS)}",
                field="metric",
            )
        threshold = self.threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold < 0:
            raise ConfigError(
                f"{where}: threshold={threshold!r} must be a number >= 0", field="threshold"
            )
        if self.metric == "error_rate" and threshold >= 1:
            raise ConfigError(
                f"{where}: threshold={threshold!r} must be below 1 for error_rate (a fraction)",
                field="threshold",
            )
        window = self.window_s
        if (
            isinstance(window, bool)
            or not isinstance(window, (int, float))
            or not 1 <= window <= MAX_WINDOW_S
        ):
            raise ConfigError(f"{where}: window={window!r} must be 1 s to 1 d", field="window")


def window_seconds(window: object) -> float:
    """``window=`` as seconds: a number, or a duration such as ``"30s"``, ``"5m"``, ``"1h"``."""
    if isinstance(window, str):
        match = _WINDOW.match(window)
        if match is None:
            raise ConfigError(
                f"window={window!r} is not a duration (30s, 5m, 1h) or a number of seconds",
                field="window",
            )
        return float(match.group(1)) * _UNIT_S[match.group(2)]
    if isinstance(window, bool) or not isinstance(window, (int, float)):
        raise ConfigError(f"window={window!r} must be seconds or a duration", field="window")
    return float(window)


def check_alerts(alerts: Sequence[AlertConfig], functions: Collection[str]) -> None:
    seen: set[str] = set()
    for alert in alerts:
        alert.validate()
        if alert.function is not None and alert.function not in functions:
            raise ConfigError(
                f"alert {alert.name!r}: function={alert.function!r} names no function of the"
                f" app (functions: {', '.join(sorted(functions))})",
                field="function",
            )
        if alert.name in seen:
            raise ConfigError(f"alert {alert.name!r} is declared twice", field="name")
        seen.add(alert.name)
