"""Buckets and their objects: configuration, object metadata, and the rules names and keys obey.

A bucket name is S3-like (3-63 lowercase letters, digits, '-' and '.', starting and ending with
a letter or digit). An object key is 1-1,024 bytes of UTF-8 with no control characters or
noncharacters (it is its events' subject) and no ``.`` or ``..`` path segment, so a key can
never name a file outside its bucket (files are not named after keys anyway: see
``engine/buckets/files.py``).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from squall.errors import ConfigError, InvalidInput, PayloadTooLarge
from squall.model.cloudevent_syntax import check_chars

BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_KEY_BYTES = 1024
DEFAULT_MAX_OBJECT_BYTES = 5 * 1024**3  # 5 GiB, S3's single-PUT limit
MAX_OBJECT_BYTES = 5 * 1024**4  # the largest limit a bucket may set
MAX_METADATA_BYTES = 2048  # user metadata, names and values together (S3: 2 KB)
META_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}$")
MAX_LIST = 1000
CREATED = "squall.object.created"
REMOVED = "squall.object.removed"
EVENT_KINDS = {"created": CREATED, "removed": REMOVED}
DEFAULT_CONTENT_TYPE = "application/octet-stream"


class BucketConfig(msgspec.Struct, frozen=True, kw_only=True):
    """A bucket; objects over ``max_object_bytes`` are refused with 413."""

    name: str
    max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES

    def validate(self) -> None:
        check_bucket_name(self.name)
        size = self.max_object_bytes
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_OBJECT_BYTES:
            raise InvalidInput(
                f"bucket {self.name!r}: max_object_bytes={size!r} is out of range"
                f" (allowed 1-{MAX_OBJECT_BYTES})",
                field="max_object_bytes",
            )


class ObjectInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the store keeps of one object: its metadata and the file holding its bytes."""

    bucket: str
    key: str
    version: str  # unique per put; also the name of its file, and the event's sequencer
    size: int
    etag: str  # MD5 of the bytes, hex
    content_type: str = DEFAULT_CONTENT_TYPE
    metadata: dict[str, str] = {}
    created_at: float

    def public(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "version": self.version,
            "size": self.size,
            "etag": self.etag,
            "content_type": self.content_type,
            "metadata": self.metadata,
            "created_at": self.created_at,
        }


class ObjectPage(msgspec.Struct, frozen=True, kw_only=True):
    objects: list[ObjectInfo]
    prefixes: list[str] = []  # common prefixes, with a delimiter
    next_cursor: str | None = None  # the last key of this page, when there may be more


def check_bucket_name(name: object, field: str = "bucket") -> str:
    if not isinstance(name, str) or not BUCKET_RE.fullmatch(name) or ".." in name:
        raise InvalidInput(
            f"bucket name {name!r} is invalid: use 3-63 lowercase letters, digits, '-' or '.',"
            " starting and ending with a letter or digit",
            field=field,
        )
    return name


def check_key(key: object, field: str = "key") -> str:
    """A valid object key, or InvalidInput naming ``field`` and the rule it broke."""
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"{field} must be a non-empty string", field=field)
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput(f"{field} is not valid UTF-8 (a lone surrogate)", field=field) from None
    if size > MAX_KEY_BYTES:
        raise InvalidInput(
            f"{field} is {size} bytes of UTF-8; the limit is {MAX_KEY_BYTES}",
            field=field,
            size=size,
            limit=MAX_KEY_BYTES,
        )
    if "\x00" in key:
        raise InvalidInput(f"{field} holds a NUL character", field=field)
    try:
        check_chars(field, key)  # the key is its events' subject, a CloudEvents String
    except InvalidInput as exc:
        raise InvalidInput(exc.message.replace("attribute ", "", 1), field=field) from None
    if any(segment in (".", "..") for segment in key.split("/")):
        raise InvalidInput(f"{field} {key!r} has a '.' or '..' path segment", field=field)
    return key


def check_metadata(metadata: object, field: str = "metadata") -> dict[str, str]:
    """User metadata: lowercase names (as HTTP headers ``x-squall-meta-<name>`` carry them)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidInput(f"{field} must map names to strings", field=field)
    total = 0
    checked: dict[str, str] = {}
    for name, value in metadata.items():
        if not isinstance(name, str) or not META_NAME_RE.fullmatch(name.lower()):
            raise InvalidInput(
                f"{field} name {name!r} is invalid: 1-128 letters, digits, '-' or '_'",
                field=f"{field}.{name}",
            )
        if not isinstance(value, str) or not (value.isprintable() and value.isascii()):
            # Values travel as HTTP headers (x-squall-meta-<name>), as S3's do: ASCII.
            raise InvalidInput(
                f"{field}.{name} must be a printable ASCII string", field=f"{field}.{name}"
            )
        total += len(name) + len(value.encode("utf-8", "replace"))
        checked[name.lower()] = value
    if total > MAX_METADATA_BYTES:
        raise InvalidInput(
            f"{field} is {total} bytes; the limit is {MAX_METADATA_BYTES}", field=field
        )
    return checked


def check_content_type(value: object, field: str = "content_type") -> str:
    if value is None or value == "":
        return DEFAULT_CONTENT_TYPE
    if (
        not isinstance(value, str)
        or len(value) > 256
        or not (value.isprintable() and value.isascii())
    ):
        raise InvalidInput(f"{field} must be a printable ASCII media type", field=field)
    return value


def event_types(events: object, where: str) -> list[str]:
    """``["created", "removed"]`` (or the full type names) as CloudEvent types."""
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, list | tuple) or not events:
        raise ConfigError(f"{where}: events must list 'created' and/or 'removed'", field="events")
    types = []
    for kind in events:
        name = EVENT_KINDS.get(str(kind), str(kind))
        if name not in EVENT_KINDS.values():
            raise ConfigError(
                f"{where}: event {kind!r} is unknown (allowed: created, removed)", field="events"
            )
        types.append(name)
    return sorted(set(types))


def object_pattern(
    bucket: str, types: list[str], prefix: str | None, suffix: str | None
) -> dict[str, Any]:
    """The rule pattern of ``@app.on_object``: the key's prefix on ``data.key``, its suffix on
    ``subject`` (the key too), so both can be asked for at once."""
    pattern: dict[str, Any] = {"type": types, "data": {"bucket": [bucket]}}
    if prefix:
        pattern["data"]["key"] = [{"prefix": prefix}]
    if suffix:
        pattern["subject"] = [{"suffix": suffix}]
    return pattern


def object_too_large(size: int, limit: int, *, complete: bool = True) -> PayloadTooLarge:
    """The 413 of an object over its bucket's limit, with both sizes (nothing was stored)."""
    size_text = f"{size} bytes" if complete else f"over {limit} bytes (read {size} so far)"
    return PayloadTooLarge(
        f"object is {size_text}; the bucket's limit is {limit} bytes",
        field="body",
        size=size,
        limit=limit,
    )
