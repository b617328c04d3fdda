"""Streams: partitioned, ordered logs of records, and the triggers that consume them.

A record goes to shard ``md5(partition_key) mod shards``, as Kinesis hashes keys, and gets
the next sequence number of that shard, so records of one key keep their order.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any, Final

import msgspec

from squall.errors import ConfigError, InvalidInput, PayloadTooLarge

STREAM_RE: Final = re.compile(r"[a-zA-Z][a-zA-Z0-9_.-]{0,127}")
MAX_SHARDS: Final = 64
MIN_RETENTION_S: Final = 60
MAX_RETENTION_S: Final = 365 * 86400
DEFAULT_RETENTION_S: Final = 86400
MAX_RECORD_BYTES: Final = 1024 * 1024  # data plus partition key, as in Kinesis
MAX_KEY_CHARS: Final = 256
MAX_PUT_RECORDS: Final = 500
POSITIONS: Final = ("latest", "trim_horizon", "at_timestamp")
FAILURE_CONDITIONS: Final = ("RetryAttemptsExhausted", "RecordAgeExceeded")


class StreamConfig(msgspec.Struct, frozen=True, kw_only=True):
    """A stream of ``shards`` ordered logs; records are kept ``retention_s`` seconds."""

    name: str
    shards: int = 1
    retention_s: int = DEFAULT_RETENTION_S

    def validate(self) -> None:
        if not isinstance(self.name, str) or not STREAM_RE.fullmatch(self.name):
            raise ConfigError(
                f"stream name {self.name!r} is invalid: use 1-128 letters, digits, '.', '-'"
                " or '_', starting with a letter",
                field="name",
                stream=str(self.name),
                value=repr(self.name),
            )
        _check_range(f"stream {self.name!r}", "shards", self.shards, 1, MAX_SHARDS)
        _check_range(
            f"stream {self.name!r}", "retention_s", self.retention_s, MIN_RETENTION_S,
            MAX_RETENTION_S,
        )


class StreamTrigger(msgspec.Struct, frozen=True, kw_only=True):
    """A function fed the records of ``stream``, shard by shard, in order (Lambda's event
    source mapping). ``-1`` means no limit for ``max_retries`` and ``max_record_age_s``."""

    function: str
    stream: str
    batch_size: int = 100
    batch_window_s: float = 0.0
    starting_position: str = "latest"
    starting_timestamp: float | None = None
    max_retries: int = -1
    max_record_age_s: int = -1
    bisect_on_error: bool = False
    report_batch_item_failures: bool = False
    on_failure: str | None = None

    def validate(self) -> None:
        where = f"function {self.function!r}: stream trigger"
        fn = {"function": self.function}
        _check_range(where, "batch_size", self.batch_size, 1, 10_000, **fn)
        if (
            isinstance(self.batch_window_s, bool)
            or not isinstance(self.batch_window_s, int | float)
            or not 0 <= self.batch_window_s <= 300
        ):
            raise _config(where, "batch_window_s", self.batch_window_s, "0-300", **fn)
        if self.starting_position not in POSITIONS:
            allowed = ", ".join(POSITIONS)
            raise _config(where, "starting_position", self.starting_position, allowed, **fn)
        stamp = self.starting_timestamp
        if self.starting_position == "at_timestamp":
            if (
                isinstance(stamp, bool)
                or not isinstance(stamp, int | float)
                or not math.isfinite(stamp)
                or stamp < 0
            ):
                raise _config(where, "starting_timestamp", stamp, "epoch seconds >= 0", **fn)
        elif stamp is not None:
            raise _config(where, "starting_timestamp", stamp, "only with 'at_timestamp'", **fn)
        _check_range(where, "max_retries", self.max_retries, -1, 10_000, **fn)
        age = self.max_record_age_s
        _check_range(where, "max_record_age_s", age, -1, MAX_RETENTION_S, **fn)
        if age == 0:
            raise _config(where, "max_record_age_s", age, f"-1 or 1-{MAX_RETENTION_S}", **fn)
        for flag in ("bisect_on_error", "report_batch_item_failures"):
            if not isinstance(getattr(self, flag), bool):
                raise _config(where, flag, getattr(self, flag), "true or false", **fn)


class StreamRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One record as consumers and readers see it; ``data`` is its JSON."""

    shard: int
    sequence: int
    partition_key: str
    data: msgspec.Raw
    arrival_time: float


class PutResult(msgspec.Struct, frozen=True):
    shard: int
    sequence: int | None  # None from inside an invocation: numbered when its effects commit


def shard_for(partition_key: str, shards: int) -> int:
    """The shard of a key: its MD5 as a 128-bit integer, mod the shard count."""
    digest = hashlib.md5(partition_key.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest, "big") % shards


def check_partition_key(key: Any, field: str = "partition_key") -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_CHARS:
        shown = f"{len(key)} characters" if isinstance(key, str) else type(key).__name__
        raise InvalidInput(
            f"{field} must be a string of 1-{MAX_KEY_CHARS} characters, got {shown}",
            field=field,
        )
    try:
        key.encode()
    except UnicodeEncodeError:
        raise InvalidInput(
            f"{field} is not valid Unicode (it holds a lone surrogate)", field=field
        ) from None
    return key


def check_record_size(
    data: bytes, key: str, field: str = "data", limit: int = MAX_RECORD_BYTES
) -> None:
    """At most ``limit`` bytes (``MAX_RECORD_BYTES``, or less where the store's broker takes
    smaller messages)."""
    size = len(data) + len(key.encode())
    if size > limit:
        raise PayloadTooLarge(
            f"record is {size} bytes (data and partition key); the limit is {limit} bytes",
            field=field,
            size=size,
            limit=limit,
        )


def check_streams(
    streams: list[StreamConfig], triggers: list[StreamTrigger], functions: set[str]
) -> None:
    """Names unique, every trigger on a declared stream and naming functions of the app."""
    names: set[str] = set()
    for stream in streams:
        stream.validate()
        if stream.name in names:
            raise ConfigError(f"stream {stream.name!r} is declared twice", field="name")
        names.add(stream.name)
    for trigger in triggers:
        trigger.validate()
        if trigger.stream not in names:
            raise ConfigError(
                f"function {trigger.function!r}: stream {trigger.stream!r} is not declared"
                f" (declare it with app.stream_resource({trigger.stream!r}, shards=...))",
                field="stream",
                function=trigger.function,
                value=repr(trigger.stream),
            )
        if trigger.on_failure is not None and trigger.on_failure not in functions:
            raise ConfigError(
                f"function {trigger.function!r}: on_failure={trigger.on_failure!r} names no"
                f" function of the app (functions: {', '.join(sorted(functions))})",
                field="on_failure",
                function=trigger.function,
                value=repr(trigger.on_failure),
            )


def _check_range(
    where: str, field: str, value: Any, low: int, high: int, **details: str
) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _config(where, field, value, f"{low}-{high}", **details)


def _config(where: str, field: str, value: Any, allowed: str, **details: str) -> ConfigError:
    return ConfigError(
        f"{where}: {field}={value!r} is out of range (allowed {allowed})",
        field=field,
        value=repr(value),
        allowed=allowed,
        **details,
    )
