"""The event store's data: streams of events per aggregate, expected versions, metadata,
snapshots and projections, with the rules their names and values follow.

A stream (``order-42``) holds events numbered from 1; its version is the number of its
last event (0: no events yet). Every event also gets a global position when it is stored,
increasing across all streams in commit order: the order projections read.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

from squall.errors import InvalidInput, WrongExpectedVersion

STREAM_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
EVENT_TYPE_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,127}")
PROJECTION_RE: Final = re.compile(r"[a-zA-Z][a-zA-Z0-9_-]{0,63}")
MAX_APPEND: Final = 500  # events in one append
MAX_EVENT_BYTES: Final = 256 * 1024  # data plus metadata of one event
MAX_READ: Final = 1000  # events in one read
MAX_SCHEMA_VERSION: Final = 2**31 - 1
EVENT_ID_RE: Final = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
ES_SOURCE: Final = "squall.es"  # the CloudEvents source of appended events
GENERATION_MARK: Final = "@"  # physical read-model tables: "orders_by_customer@2"


class ExpectedVersion:
    """What an append expects of its stream: ``any()`` (no check), ``no_stream()`` (the
    stream has no events yet) or ``exact(n)`` (its last event is number ``n``; ``exact(0)``
    is ``no_stream``). On the wire: ``"any"``, ``"no_stream"`` or the integer."""

    __slots__ = ("value",)

    def __init__(self, value: int | None) -> None:
        self.value = value  # None: any

    @classmethod
    def any(cls) -> ExpectedVersion:
        return cls(None)

    @classmethod
    def no_stream(cls) -> ExpectedVersion:
        return cls(0)

    @classmethod
    def exact(cls, version: int) -> ExpectedVersion:
        return cls(parse_expected(version))

    def wire(self) -> int | str:
        return "any" if self.value is None else self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExpectedVersion) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        if self.value is None:
            return "ExpectedVersion.any()"
        if self.value == 0:
            return "ExpectedVersion.no_stream()"
        return f"ExpectedVersion.exact({self.value})"


def parse_expected(value: Any, field: str = "expected_version") -> int | None:
    """The expected version from the wire: None for ``"any"``, 0 for ``"no_stream"``."""
    if isinstance(value, ExpectedVersion):
        return value.value
    if value is None or value == "any":
        return None
    if value == "no_stream":
        return 0
    if isinstance(value, float) and value.is_integer():  # JSON has numbers, not ints
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(
            f"{field} must be 'any', 'no_stream' or a version number, not {value!r}",
            field=field,
        )
    if value < 0:
        raise InvalidInput(
            f"{field} must be 0 or more (the version of the stream's last event), not {value}",
            field=field,
        )
    return value


def wrong_version(stream: str, expected: int, current: int) -> WrongExpectedVersion:
    def shown(version: int) -> str:
        return "no stream" if version == 0 else f"version {version}"

    return WrongExpectedVersion(
        f"stream {stream!r}: the append expected {shown(expected)}, the stream is at"
        f" {shown(current)}; nothing was appended",
        field="expected_version",
        stream=stream,
        expected=expected,
        current=current,
    )


def check_stream_name(name: Any, field: str = "stream") -> str:
    if not isinstance(name, str) or not STREAM_RE.fullmatch(name):
        raise InvalidInput(
            f"stream name {name!r} is invalid: use 1-200 letters, digits, '_', '.' or '-',"
            " starting with a letter or digit (e.g. 'order-42')",
            field=field,
        )
    return name


def check_event_type(value: Any, field: str) -> str:
    if not isinstance(value, str) or not EVENT_TYPE_RE.fullmatch(value):
        raise InvalidInput(
            f"event type {value!r} is invalid: use 1-128 letters, digits, '_', '.' or '-',"
            " starting with a letter (e.g. 'OrderPlaced')",
            field=field,
        )
    return value


def check_projection_name(name: Any) -> str:
    if not isinstance(name, str) or not PROJECTION_RE.fullmatch(name):
        raise InvalidInput(
            f"projection name {name!r} is invalid: use 1-64 letters, digits, '-' or '_',"
            " starting with a letter",
            field="name",
        )
    return name


def stream_category(stream: str) -> str:
    """``order-42`` → ``order``: the part before the first ``-``."""
    return stream.split("-", 1)[0]


def physical_table(read_model: str, generation: int) -> str:
    """The table a projection generation writes: the read model's own name for the first,
    ``name@N`` (a name no declared table may have) for the ones rebuilds make."""
    return read_model if generation <= 1 else f"{read_model}{GENERATION_MARK}{generation}"


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event to append, checked and encoded: ``data`` and ``metadata`` are JSON."""

    id: str
    type: str
    data: bytes
    metadata: bytes = b"{}"
    schema_version: int = 1  # the event type's version, for upcasters


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True):
    stream: str
    version: int  # its number in the stream, from 1
    position: int  # its place in the global order, from 1
    id: str
    type: str
    data: msgspec.Raw
    metadata: msgspec.Raw
    schema_version: int
    recorded_at: float


class StreamMetadata(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What reads of a stream keep: events younger than ``max_age_s`` and the last
    ``max_count``. Read-all (projections) sees every event, so a rebuild matches."""

    max_age_s: float | None = None
    max_count: int | None = None

    def validate(self) -> None:
        for field in ("max_age_s", "max_count"):
            value = getattr(self, field)
            if value is None:
                continue
            wrong = isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
            if field == "max_count" and not isinstance(value, int):
                wrong = True
            if wrong:
                raise InvalidInput(
                    f"{field} must be a positive number (or null for no limit), not {value!r}",
                    field=field,
                )


class StreamState(msgspec.Struct, frozen=True, kw_only=True):
    stream: str
    version: int
    deleted: bool
    created_at: float
    updated_at: float
    metadata: StreamMetadata = StreamMetadata()


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    stream: str
    version: int  # the state after this event
    state: msgspec.Raw
    recorded_at: float


class ProjectionConfig(msgspec.Struct, frozen=True, kw_only=True):
    """A projection: the function fed events in global order, the read-model table it
    writes, and the streams it reads (prefixes of stream names; empty: all)."""

    name: str
    function: str
    table: str
    from_streams: tuple[str, ...] = ()
    batch_size: int = 100

    def validate(self) -> None:
        check_projection_name(self.name)
        for prefix in self.from_streams:
            if not isinstance(prefix, str) or not prefix:
                raise InvalidInput(
                    f"projection {self.name!r}: from_streams holds {prefix!r}; give stream"
                    " name prefixes such as 'order-'",
                    field="from_streams",
                )
        if isinstance(self.batch_size, bool) or not 1 <= self.batch_size <= MAX_READ:
            raise InvalidInput(
                f"projection {self.name!r}: batch_size={self.batch_size!r} is out of range"
                f" (allowed 1-{MAX_READ})",
                field="batch_size",
            )

    def reads(self, stream: str) -> bool:
        return not self.from_streams or stream.startswith(self.from_streams)
