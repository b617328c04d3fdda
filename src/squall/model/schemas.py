"""Registered event schemas: a JSON Schema per event type and version, and how events name one.

An event names a schema with its ``dataschema`` attribute, in either of two forms:

    squall:schemas/order.placed/2                       the platform's own URI
    http://host:8787/api/v1/schemas/order.placed/2      the URL the admin API serves it at

Types in a schema's name are restricted to URI-unreserved characters, so both forms carry them
unescaped and a name reads the same in a path, a URI and a message.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

from squall.errors import InvalidInput

URI_PREFIX: Final = "squall:schemas/"
API_PATH: Final = "/api/v1/schemas/"
TYPE_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,255}")
VERSION_RE: Final = re.compile(r"[1-9][0-9]{0,8}")
_URI_RE: Final = re.compile(r"squall:schemas/([^/]+)/([^/]+)")
_URL_RE: Final = re.compile(r"https?://[^/?#]+/api/v1/schemas/([^/?#]+)/([^/?#]+)")


class SchemaRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One registered version of an event type's schema."""

    type: str
    version: int
    schema: dict[str, Any]
    created_at: float

    @property
    def uri(self) -> str:
        return schema_uri(self.type, self.version)

    def public(self) -> dict[str, Any]:
        return {**msgspec.structs.asdict(self), "uri": self.uri}


def schema_uri(event_type: str, version: int) -> str:
    return f"{URI_PREFIX}{event_type}/{version}"


def check_type(event_type: str) -> str:
    if not isinstance(event_type, str) or not TYPE_RE.fullmatch(event_type):
        raise InvalidInput(
            f"event type {event_type!r} cannot have a schema: 1-256 letters, digits, '.', '_',"
            " '~' or '-', starting with a letter or digit",
            field="type",
        )
    return event_type


def check_version(raw: str | int) -> int:
    text = str(raw)
    if not VERSION_RE.fullmatch(text):
        raise InvalidInput(
            f"schema version {text!r} is not a positive integer (1, 2, 3, …)", field="version"
        )
    return int(text)


def parse_dataschema(dataschema: str) -> tuple[str, int] | None:
    """The (type, version) a ``dataschema`` names in one of the platform's forms, else None.

    A URI in a platform form with a malformed type or version is an error, not a foreign URI:
    the publisher meant one of ours.
    """
    match = _URI_RE.fullmatch(dataschema) or _URL_RE.fullmatch(dataschema)
    if match is None:
        return None
    event_type, version = match.groups()
    try:
        return check_type(event_type), check_version(version)
    except InvalidInput as exc:
        message = f"dataschema {dataschema!r}: {exc.message}"
        raise InvalidInput(message, field="dataschema") from None
