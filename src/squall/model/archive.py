"""Archives of published events, and replays of them onto their bus."""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

from squall.errors import InvalidInput

ARCHIVE_RE: Final = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
MIN_RETENTION_S: Final = 60
MAX_RETENTION_S: Final = 10 * 365 * 86400
DEFAULT_RETENTION_S: Final = 7 * 86400
REPLAY_EXTENSION: Final = "squallreplay"  # set by the platform on every replayed event


class ArchiveConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Every event published to ``bus`` (and matching ``pattern``, if set) is kept
    ``retention_s`` seconds."""

    name: str
    bus: str
    pattern: dict[str, Any] | None = None
    retention_s: int = DEFAULT_RETENTION_S
    created_at: float


class ArchivedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One archived event, in publish order (``seq``); ``body`` is its CloudEvents JSON."""

    seq: int
    archive: str
    source: str
    event_id: str
    published_at: float
    body: bytes


class ReplayState:
    RUNNING: Final = "running"
    COMPLETED: Final = "completed"
    FAILED: Final = "failed"


class ReplayStatus(msgspec.Struct, kw_only=True):
    """A replay's progress; ``total`` is how many archived events it will publish."""

    id: str
    bus: str
    archives: list[str]
    start: float = msgspec.field(name="from")  # epoch seconds: events published from then …
    end: float = msgspec.field(name="to")  # … up to then
    pattern: dict[str, Any] | None = None
    state: str = ReplayState.RUNNING
    total: int = 0
    published: int = 0
    last_event_time: float | None = None  # when the last replayed event was first published
    started_at: float
    finished_at: float | None = None
    error: str | None = None


def check_archive_name(name: object) -> str:
    if not isinstance(name, str) or not ARCHIVE_RE.fullmatch(name):
        raise InvalidInput(
            f"archive name {name!r} is invalid: 1-64 lower-case letters, digits, '.', '_' or"
            " '-', starting with a letter",
            field="name",
        )
    return name


def check_retention(value: object) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("retention_s must be an integer number of seconds", field="retention_s")
    if not MIN_RETENTION_S <= value <= MAX_RETENTION_S:
        raise InvalidInput(
            f"retention_s={value} is out of range (allowed {MIN_RETENTION_S}-{MAX_RETENTION_S})",
            field="retention_s",
        )
    return value
