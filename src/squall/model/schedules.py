"""Schedules: a function run on a rate, a cron expression or once at a time."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from squall.errors import InvalidInput
from squall.model.rule_input import shape_error

SCHEDULE_NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.-]{0,63}$")
MISSED = ("skip", "fire_once")  # what a start does with ticks due while the platform was down
MAX_JITTER_S = 86400
MAX_PAYLOAD = 256 * 1024
RESERVED_NAMES = ("next",)  # /api/v1/schedules/next


class ScheduleConfig(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    function: str
    expression: str  # rate(...), cron(...), at(...) or five-field Unix cron
    tz: str = "UTC"
    payload: Any = None  # JSON: the event's "detail"
    jitter_s: int = 0  # each tick fires at a deterministic offset in [0, jitter_s)
    missed: str = "skip"
    enabled: bool = True
    description: str = ""
    origin: str = "app"  # "api": made through the admin API, kept in the store

    def validate(self) -> None:
        """Everything but the expression and zone (parsed by the engine's expressions)."""
        if not isinstance(self.name, str) or not SCHEDULE_NAME_RE.match(self.name):
            raise InvalidInput(
                f"schedule name {self.name!r} is invalid: use 1-64 letters, digits, '-', '_'"
                " or '.', starting with a letter",
                field="name",
            )
        if (
            isinstance(self.jitter_s, bool)
            or not isinstance(self.jitter_s, int)
            or not 0 <= self.jitter_s <= MAX_JITTER_S
        ):
            raise InvalidInput(
                f"schedule {self.name!r}: jitter_s={self.jitter_s!r} is out of range"
                f" (allowed 0-{MAX_JITTER_S})",
                field="jitter_s",
            )
        if self.missed not in MISSED:
            raise InvalidInput(
                f"schedule {self.name!r}: missed={self.missed!r} is unknown"
                f" (one of {', '.join(MISSED)})",
                field="missed",
            )
        try:
            size = len(msgspec.json.encode(self.payload))
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"schedule {self.name!r}: the payload is not JSON: {exc}", field="payload"
            ) from None
        if size > MAX_PAYLOAD:
            raise InvalidInput(
                f"schedule {self.name!r}: the payload is {size} bytes, over {MAX_PAYLOAD}",
                field="payload",
            )


class ScheduleInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A schedule as the admin API takes it."""

    name: str
    function: str
    expression: str
    tz: str = "UTC"
    payload: Any = None
    jitter_s: int = 0
    missed: str = "skip"
    enabled: bool = True
    description: str = ""


def parse_schedule(body: dict[str, Any]) -> ScheduleConfig:
    """A schedule from a JSON body; ``InvalidInput`` naming the field for a wrong shape."""
    try:
        msgspec.json.encode(body)
    except UnicodeEncodeError:  # JSON may escape a lone surrogate ("\ud800"): not text
        raise InvalidInput("the body holds a lone surrogate: not text", field="body") from None
    jitter = body.get("jitter_s")
    if isinstance(jitter, float) and jitter.is_integer():  # JSON has numbers, not ints: 60.0
        body = {**body, "jitter_s": int(jitter)}
    try:
        given = msgspec.convert(body, ScheduleInput)
    except msgspec.ValidationError as exc:
        raise shape_error(str(exc), body) from None
    if given.name in RESERVED_NAMES:
        raise InvalidInput(f"schedule name {given.name!r} is reserved", field="name")
    config = ScheduleConfig(**msgspec.structs.asdict(given), origin="api")
    config.validate()
    return config


class ScheduleState(msgspec.Struct, kw_only=True):
    """What the store keeps per schedule: when it fires next and when it last fired.

    ``next_at`` is the nominal time of the next tick (None: no tick is left); the tick
    fires at ``next_at`` plus its jitter. ``anchor`` starts a rate's intervals, and
    ``fingerprint`` (expression and zone) tells a start that the app changed the schedule.
    """

    name: str
    fingerprint: str
    anchor: float
    next_at: float | None
    last_at: float | None = None
    fired: int = 0
    config: ScheduleConfig | None = None  # kept for schedules made through the admin API
