"""The CloudEvents 1.0 event: one immutable type, validated against the spec.

Every event on a Squall bus is a :class:`CloudEvent`. The core attributes are
struct fields; every other attribute lives in ``extensions``. The platform owns
four extensions: ``traceparent`` (W3C trace context), ``squallhops`` (loop
detection, an Integer), ``partitionkey`` and ``sequence`` (both Strings, as in
the CloudEvents "partitioning" and "sequence" documented extensions).

``data`` holds a JSON value (``msgspec.UNSET`` when the event has no data; JSON
``null`` is an explicit null payload, distinct from no data, as the JSON format
says); ``data_base64`` holds binary data as ``bytes``. The two never coexist.

Validation errors raise :class:`~squall.errors.InvalidInput` whose ``field`` is
the offending attribute name. Spec references: CloudEvents 1.0.2 core ("Naming
Conventions", "Type System", attribute constraints) and the JSON event format.
"""

from __future__ import annotations

import binascii
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from squall.errors import InvalidInput
from squall.model.cloudevent_syntax import (
    check_chars,
    check_json_value,
    check_media_type,
    check_string,
    check_traceparent,
    check_uri,
    format_time,
    is_json_content_type,
    kind,
    parse_time,
)

SPECVERSION: Final = "1.0"
ExtensionValue = str | int | bool

REQUIRED: Final = ("specversion", "id", "source", "type")
OPTIONAL: Final = ("time", "subject", "datacontenttype", "dataschema")
# Names an extension may not take: the core attributes, and `data` ("CloudEvent
# attributes MUST NOT have the name data"). `data_base64` fails the naming rule anyway.
RESERVED: Final = frozenset((*REQUIRED, *OPTIONAL, "data", "data_base64"))
PLATFORM_EXTENSIONS: Final = ("traceparent", "squallhops", "partitionkey", "sequence")
INT_MIN: Final = -(2**31)
INT_MAX: Final = 2**31 - 1

_NAME = re.compile(r"[a-z0-9]+")
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)", re.ASCII)


class CloudEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One event. Build it with :meth:`create` (new events), :meth:`from_json_dict`
    or :meth:`from_attributes` (received ones), which all validate; a direct
    constructor call does not, so call :meth:`validate` on such an instance.
    ``msgspec.json.encode`` gives a storage form (extensions nested); the
    CloudEvents JSON format is :meth:`to_json` / :meth:`from_json_dict`."""

    id: str
    source: str
    type: str
    specversion: str = SPECVERSION
    time: datetime | None = None
    subject: str | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    data: Any = msgspec.UNSET
    data_base64: bytes | None = None
    extensions: dict[str, ExtensionValue] = {}

    # -- construction ---------------------------------------------------------------

    @classmethod
    def create(
        cls,
        type: str,
        data: Any = msgspec.UNSET,
        *,
        source: str,
        subject: str | None = None,
        datacontenttype: str | None = None,
        dataschema: str | None = None,
        extensions: Mapping[str, ExtensionValue] | None = None,
        id: str | None = None,
        time: datetime | str | None = None,
        traceparent: str | None = None,
        hops: int | None = None,
        partitionkey: str | None = None,
        sequence: str | None = None,
    ) -> CloudEvent:
        """A new, validated event: ``id`` is a fresh uuid4 and ``time`` now (UTC)
        unless given. ``bytes`` data goes to ``data_base64``."""
        platform = {"traceparent": traceparent, "squallhops": hops,
                    "partitionkey": partitionkey, "sequence": sequence}
        ext = {**(extensions or {}), **{k: v for k, v in platform.items() if v is not None}}
        binary = isinstance(data, bytes | bytearray | memoryview)
        return cls(
            id=str(uuid.uuid4()) if id is None else id, source=source, type=type,
            time=datetime.now(UTC) if time is None else _time_value(time), subject=subject,
            datacontenttype=datacontenttype, dataschema=dataschema,
            data=msgspec.UNSET if binary else data, data_base64=bytes(data) if binary else None,
            extensions=ext,
        ).validate()

    @classmethod
    def from_attributes(
        cls, attributes: Mapping[str, Any], *, data: Any = msgspec.UNSET,
        data_base64: bytes | None = None,
    ) -> CloudEvent:
        """Build and validate an event from attribute values given as native types
        or canonical strings (``time`` as RFC 3339, ``squallhops`` as a decimal).
        A ``None`` value means the attribute is unset."""
        attrs = {name: value for name, value in attributes.items() if value is not None}
        if "specversion" not in attrs:
            raise InvalidInput("missing required attribute 'specversion'", field="specversion")
        if attrs["specversion"] != SPECVERSION:
            raise InvalidInput(
                f"unsupported specversion {attrs['specversion']!r}: only '1.0' is supported",
                field="specversion",
            )
        for name in REQUIRED:
            if name not in attrs:
                raise InvalidInput(f"missing required attribute '{name}'", field=name)
        for name in (*REQUIRED, *OPTIONAL):
            value = attrs.get(name)
            allowed = str | datetime if name == "time" else str
            if value is not None and not isinstance(value, allowed):
                raise InvalidInput(f"attribute '{name}' must be a string, got {kind(value)}",
                                   field=name)
        time = attrs.get("time")
        return cls(
            id=attrs["id"], source=attrs["source"], type=attrs["type"],
            time=None if time is None else _time_value(time), subject=attrs.get("subject"),
            datacontenttype=attrs.get("datacontenttype"), dataschema=attrs.get("dataschema"),
            data=data, data_base64=data_base64,
            extensions={name: _coerce_extension(name, value) for name, value in attrs.items()
                        if name not in REQUIRED and name not in OPTIONAL},
        ).validate()

    @classmethod
    def from_json_dict(cls, obj: Any) -> CloudEvent:
        """An event in the CloudEvents JSON format (already decoded)."""
        if not isinstance(obj, dict):
            raise InvalidInput(f"a CloudEvent in JSON must be an object, got {kind(obj)}")
        attrs = dict(obj)
        data = attrs.pop("data", msgspec.UNSET)  # null stays: an explicit null payload
        encoded = attrs.pop("data_base64", None)
        if data is not msgspec.UNSET and encoded is not None:
            raise InvalidInput("'data' and 'data_base64' are mutually exclusive", field="data")
        raw: bytes | None = None
        if encoded is not None:
            if not isinstance(encoded, str):
                raise InvalidInput(f"data_base64 must be a string, got {kind(encoded)}",
                                   field="data_base64")
            try:
                raw = binascii.a2b_base64(encoded, strict_mode=True)
            except (binascii.Error, ValueError) as exc:  # ValueError: a non-ASCII character
                raise InvalidInput(f"data_base64 is not valid base64: {exc}",
                                   field="data_base64") from None
        return cls.from_attributes(attrs, data=data, data_base64=raw)

    # -- rendering ------------------------------------------------------------------

    def attributes(self) -> dict[str, ExtensionValue]:
        """Every set context attribute, in canonical form (``time`` as RFC 3339)."""
        out: dict[str, ExtensionValue] = {
            "specversion": self.specversion, "id": self.id, "source": self.source,
            "type": self.type,
        }
        if self.time is not None:
            out["time"] = format_time(self.time)
        for name in ("subject", "datacontenttype", "dataschema"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out.update(self.extensions)
        return out

    def to_json_dict(self) -> dict[str, Any]:
        """The CloudEvents JSON format: attributes and extensions at the top level."""
        out: dict[str, Any] = dict(self.attributes())
        if self.has_data:
            out["data"] = self.data
        elif self.data_base64 is not None:
            out["data_base64"] = binascii.b2a_base64(self.data_base64, newline=False).decode()
        return out

    def to_json(self) -> bytes:
        return msgspec.json.encode(self.to_json_dict())

    # -- platform extensions --------------------------------------------------------

    @property
    def has_data(self) -> bool:
        return self.data is not msgspec.UNSET

    @property
    def traceparent(self) -> str | None:  # W3C trace context of the publisher
        return _str_or_none(self.extensions.get("traceparent"))

    @property
    def hops(self) -> int:
        """``squallhops``: how many event-triggered invocations led here (0 if unset)."""
        value = self.extensions.get("squallhops", 0)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    @property
    def partitionkey(self) -> str | None:
        return _str_or_none(self.extensions.get("partitionkey"))

    @property
    def sequence(self) -> str | None:
        return _str_or_none(self.extensions.get("sequence"))

    def with_extensions(self, **values: ExtensionValue | None) -> CloudEvent:
        """A validated copy with extensions set (``None`` removes one)."""
        ext = dict(self.extensions)
        for name, value in values.items():
            if value is None:
                ext.pop(name, None)
            else:
                ext[name] = value
        return msgspec.structs.replace(self, extensions=ext).validate()

    def with_hops(self, hops: int) -> CloudEvent:
        return self.with_extensions(squallhops=hops)

    # -- validation -----------------------------------------------------------------

    def validate(self) -> CloudEvent:
        """Check every spec constraint; return ``self`` or raise ``InvalidInput``."""
        for name in REQUIRED:
            check_string(name, getattr(self, name), required=True)
        if self.specversion != SPECVERSION:
            raise InvalidInput(
                f"unsupported specversion {self.specversion!r}: only '1.0' is supported",
                field="specversion",
            )
        check_uri("source", self.source, absolute=False)
        if self.time is not None and (
            not isinstance(self.time, datetime) or self.time.utcoffset() is None
        ):
            raise InvalidInput("time must be a timezone-aware datetime (RFC 3339 needs an "
                               f"offset), got {self.time!r}", field="time")
        check_string("subject", self.subject)
        if self.datacontenttype is not None and check_string("datacontenttype",
                                                             self.datacontenttype):
            check_media_type("datacontenttype", self.datacontenttype)
        if self.dataschema is not None and check_string("dataschema", self.dataschema):
            check_uri("dataschema", self.dataschema, absolute=True)
        self._validate_data()
        for name, value in self.extensions.items():
            _check_extension(name, value)
        return self

    def _validate_data(self) -> None:
        if self.data_base64 is not None:
            if self.has_data:
                raise InvalidInput("'data' and 'data_base64' are mutually exclusive", field="data")
            if not isinstance(self.data_base64, bytes):
                raise InvalidInput("data_base64 must be bytes", field="data_base64")
        if not self.has_data:
            return
        if self.datacontenttype is not None and not is_json_content_type(self.datacontenttype):
            if not isinstance(self.data, str):
                raise InvalidInput(
                    f"datacontenttype {self.datacontenttype!r} is not JSON, so data must be a "
                    f"string (or use data_base64 for bytes), got {kind(self.data)}",
                    field="data")
            return
        check_json_value(self.data, "data")


def _time_value(value: datetime | str) -> datetime:
    return parse_time(value) if isinstance(value, str) else value


def _str_or_none(value: ExtensionValue | None) -> str | None:
    return value if isinstance(value, str) else None


def _coerce_extension(name: str, value: Any) -> Any:
    """Typed platform extensions may arrive as canonical strings (binary mode)."""
    if name == "squallhops" and isinstance(value, str):
        if not _INTEGER.fullmatch(value):
            raise InvalidInput(f"squallhops {value!r} is not an Integer", field=name)
        return int(value)
    return value


def _check_extension(name: str, value: object) -> None:
    if name in RESERVED:
        raise InvalidInput(
            f"extension '{name}' collides with the reserved attribute name '{name}'", field=name)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid extension attribute name {name!r}: CloudEvents attribute names must "
            "consist of lower-case letters a-z and digits 0-9 only", field=str(name))
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise InvalidInput(f"extension '{name}' = {value} is outside the Integer range "
                               f"[{INT_MIN}, {INT_MAX}]", field=name)
    elif isinstance(value, str):
        check_chars(name, value)
    else:
        raise InvalidInput(
            f"extension '{name}' has unsupported value type {kind(value)}: extension values "
            "must be strings, integers or booleans", field=name)
    if name in PLATFORM_EXTENSIONS:
        _check_platform_extension(name, value)


def _check_platform_extension(name: str, value: object) -> None:
    if name == "squallhops":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput(f"squallhops must be a non-negative Integer, got {value!r}",
                               field=name)
        return
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"extension '{name}' must be a non-empty string", field=name)
    if name == "traceparent":
        check_traceparent(name, value)


def with_traceparent(event: CloudEvent, traceparent: str) -> CloudEvent:
    """``event`` carrying ``traceparent`` (W3C trace context of the span that published it)."""
    return msgspec.structs.replace(
        event, extensions={**event.extensions, "traceparent": traceparent}
    )
