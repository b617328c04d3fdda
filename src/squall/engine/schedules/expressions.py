"""Schedule expressions and their fire times: rate(), cron() (AWS), Unix cron and at().

``rate(5 minutes)`` fires every interval from an anchor (when the schedule began);
``cron(0 9 ? * MON-FRI *)`` is AWS's six-field form (see ``aws_cron``); ``*/15 * * * *`` is
five-field Unix cron; ``at(2026-12-01T09:00:00)`` fires once. Cron and at() times are wall
times in the schedule's IANA zone. croniter walks the wall clock (naive datetimes) and
zoneinfo maps each wall time to an instant with ``fold=0``: a time that does not exist (the
spring-forward gap) lands that much later (02:30 -> 03:30), a time that exists twice (fall
back) fires at its first occurrence only, and instants are kept strictly increasing, so
nothing fires twice.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from squall.engine.schedules.aws_cron import translate
from squall.errors import InvalidInput

# Sub-minute rates exist for tests only (AWS's smallest rate is one minute).
SECONDS_ENV = "SQUALL_SCHEDULE_SECONDS"
UNITS = {"minute": 60, "hour": 3600, "day": 86400}
MAX_INTERVAL_S = 10 * 365 * 86400
END = datetime(2100, 1, 1, tzinfo=UTC).timestamp()  # no fire times from 2100 on (cron's years)
MAX_YEARS = 75  # croniter gives up after this many years without a match: 2026 to 2099
MAX_SKIPPED = 100_000  # wall times mapped before the search gives up (a bound, never reached)

_RATE = re.compile(r"^rate\((?P<body>.*)\)$", re.DOTALL)
_CRON = re.compile(r"^cron\((?P<body>.*)\)$", re.DOTALL)
_AT = re.compile(r"^at\((?P<body>.*)\)$", re.DOTALL)
_AT_BODY = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_RATE_BODY = re.compile(r"^(?P<value>-?\d+) (?P<unit>[a-z]+)$")


@dataclass(frozen=True)
class Expression:
    """A parsed expression in its zone; ``next_after`` is the whole arithmetic."""

    text: str
    kind: str  # "rate" | "cron" | "at"
    zone: ZoneInfo
    rate_s: float = 0.0
    cron: str = ""  # croniter's form
    at: float = 0.0

    def next_after(self, after: float, anchor: float) -> float | None:
        """The first fire time strictly after ``after`` (epoch s), or None when none is left."""
        return next(self.times(after, anchor), None)

    def times(self, after: float, anchor: float) -> Iterator[float]:
        """Fire times strictly after ``after``, increasing; ``anchor`` starts a rate."""
        if self.kind == "rate":
            k = max(1, math.floor((after - anchor) / self.rate_s) + 1)
            while (instant := anchor + k * self.rate_s) < END:
                yield instant
                k += 1
        elif self.kind == "at":
            if after < self.at < END:
                yield self.at
        else:
            for instant in self._cron_times(after):
                if instant >= END:
                    return
                yield instant

    def _cron_times(self, after: float) -> Iterator[float]:
        start = datetime.fromtimestamp(after, self.zone).replace(tzinfo=None)
        walk = croniter(self.cron, start, max_years_between_matches=MAX_YEARS)
        last = after
        skipped = 0
        while skipped < MAX_SKIPPED:
            try:
                wall = walk.get_next(datetime)
            except CroniterBadDateError:  # e.g. the year field has run out
                return
            instant = wall.replace(tzinfo=self.zone, fold=0).timestamp()
            if instant > last:
                last = instant
                skipped = 0
                yield instant
            else:  # a second pass over a fall-back hour, or a gap already covered
                skipped += 1


def parse(text: str, tz: str = "UTC") -> Expression:
    """Parse ``text`` in zone ``tz``; InvalidInput names ``expression`` or ``tz``."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("schedule expression is empty", field="expression")
    zone = parse_zone(tz)
    text = text.strip()
    if match := _RATE.match(text):
        return Expression(text, "rate", zone, rate_s=_rate(text, match["body"]))
    if match := _AT.match(text):
        return Expression(text, "at", zone, at=_at(text, match["body"], zone))
    if match := _CRON.match(text):
        return _checked_cron(text, translate(match["body"], text), zone)
    if len(text.split()) == 5 and "(" not in text:
        return _checked_cron(text, text, zone)
    raise InvalidInput(
        f"schedule expression {text!r} is not rate(value unit), cron(six fields),"
        " at(yyyy-mm-ddThh:mm:ss) or a five-field Unix cron expression",
        field="expression",
    )


MAX_PREVIEW = 100


def preview(
    text: str, tz: str = "UTC", start: str | None = None, count: int = 5, *, now: float
) -> list[str]:
    """The next ``count`` fire times of ``text`` after ``start`` (default: now), RFC 3339.

    ``start`` is RFC 3339; without an offset it is a wall time in ``tz``. A rate counts its
    intervals from ``start``.
    """
    expression = parse(text, tz)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PREVIEW:
        raise InvalidInput(f"count={count!r} is out of range (1-{MAX_PREVIEW})", field="count")
    after = now if start is None else parse_instant(start, expression.zone, "from")
    out = []
    for instant in expression.times(after, after):
        out.append(isoformat(instant))
        if len(out) == count:
            break
    return out


def parse_instant(text: str, zone: ZoneInfo, field: str) -> float:
    """RFC 3339 (``2026-03-29T00:00:00Z``), or a wall time in ``zone`` without offset."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"{field}={text!r} is not a time like 2026-03-29T00:00:00Z", field=field
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone, fold=0)
    if not 1970 <= moment.year <= 2099:
        raise InvalidInput(f"{field}={text!r} is out of range (years 1970-2099)", field=field)
    return moment.timestamp()


def parse_zone(tz: str) -> ZoneInfo:
    if not isinstance(tz, str) or not tz:
        raise InvalidInput("tz must be an IANA time zone name, e.g. 'Europe/Paris'", field="tz")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder, a long name
        raise InvalidInput(
            f"tz {tz!r} is not an IANA time zone (e.g. 'UTC', 'Europe/Paris')", field="tz"
        ) from None


def jitter(name: str, nominal: float, jitter_s: float) -> float:
    """A deterministic offset in [0, jitter_s) for the tick of ``name`` at ``nominal``."""
    if jitter_s <= 0:
        return 0.0
    digest = hashlib.sha256(f"{name}@{nominal:.3f}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * jitter_s


def isoformat(instant: float) -> str:
    """RFC 3339 in UTC with a Z, to the millisecond when it has one."""
    moment = datetime.fromtimestamp(instant, UTC)
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def _rate(text: str, body: str) -> float:
    match = _RATE_BODY.match(body.strip())
    if match is None:
        raise _rate_error(text, "write rate(value unit), e.g. rate(5 minutes)")
    value, unit = int(match["value"]), match["unit"]
    if value <= 0:
        raise _rate_error(text, f"the value must be a positive whole number, got {value}")
    units = dict(UNITS)
    if os.environ.get(SECONDS_ENV) == "1":
        units["second"] = 1
    singular = unit.removesuffix("s")
    if singular not in units:
        allowed = ", ".join(f"{u}(s)" for u in units)
        raise _rate_error(text, f"unit {unit!r} is unknown (one of {allowed})")
    if value == 1 and unit != singular:
        raise _rate_error(text, f"a value of 1 takes the singular unit: rate(1 {singular})")
    if value > 1 and unit == singular:
        raise _rate_error(text, f"a value above 1 takes the plural unit: rate({value} {unit}s)")
    interval = value * units[singular]
    if interval > MAX_INTERVAL_S:
        raise _rate_error(text, "the interval must be at most 10 years")
    return float(interval)


def _rate_error(text: str, problem: str) -> InvalidInput:
    return InvalidInput(f"schedule expression {text!r}: {problem}", field="expression")


def _at(text: str, body: str, zone: ZoneInfo) -> float:
    if not _AT_BODY.match(body):
        raise InvalidInput(
            f"schedule expression {text!r}: write at(yyyy-mm-ddThh:mm:ss), a local time"
            " without offset (the schedule's tz applies)",
            field="expression",
        )
    try:
        wall = datetime.fromisoformat(body)
    except ValueError as exc:
        raise InvalidInput(f"schedule expression {text!r}: {exc}", field="expression") from None
    if not 1970 <= wall.year <= 2099:
        raise InvalidInput(
            f"schedule expression {text!r}: the year must be 1970-2099", field="expression"
        )
    return wall.replace(tzinfo=zone, fold=0).timestamp()


def _checked_cron(text: str, cron: str, zone: ZoneInfo) -> Expression:
    try:
        croniter(cron, datetime(2000, 1, 1))
    except (CroniterBadCronError, CroniterError, ValueError, KeyError) as exc:
        raise InvalidInput(
            f"schedule expression {text!r} is not valid cron: {exc}", field="expression"
        ) from None
    return Expression(text, "cron", zone, cron=cron)
