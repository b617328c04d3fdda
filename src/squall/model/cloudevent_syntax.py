"""Value syntax for CloudEvents attributes: the rules of the spec's type system.

RFC 3339 timestamps, RFC 3986 URI / URI-reference, RFC 2046 media types, the
characters the String type allows, W3C ``traceparent``, JSON values. Every check
raises :class:`~squall.errors.InvalidInput` naming the attribute in ``field``.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from squall.errors import InvalidInput

_NONCHARACTERS = "".join(chr(p * 0x10000 + 0xFFFE) + chr(p * 0x10000 + 0xFFFF) for p in range(17))
# The String type forbids control characters, surrogates (lone ones: Python holds a
# valid pair as one code point) and Unicode noncharacters.
_BAD_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef" + _NONCHARACTERS + "]")
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?", re.S)
# RFC 2045 token, and an RFC 2046 media type with parameters.
_TOKEN = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|\"(?:[^\"\\\r\n]|\\.)*\"))*[ \t]*"
)
# RFC 3986 appendix B splits any string; each component is then checked on its own.
_URI_PARTS = re.compile(r"(?:([^:/?#]+):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?", re.S)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_PCT = r"%[0-9A-Fa-f]{2}"
_URI_COMPONENTS = (
    ("authority", re.compile(rf"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@\[\]]|{_PCT})*")),
    ("path", re.compile(rf"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|{_PCT})*")),
    ("query", re.compile(rf"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|{_PCT})*")),
    ("fragment", re.compile(rf"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|{_PCT})*")),
)


def is_json_content_type(content_type: str) -> bool:
    """``*/json`` or ``*/*+json`` once parameters are stripped (JSON format §3.1.1)."""
    media = content_type.split(";", 1)[0].strip().lower()
    subtype = media.partition("/")[2]
    return subtype == "json" or subtype.endswith("+json")


def parse_time(text: str, field: str = "time") -> datetime:
    """An RFC 3339 ``date-time``, strictly (``T`` separator, mandatory offset).
    Fractions beyond microseconds are truncated; leap seconds are refused."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise InvalidInput(
            f"{field} {text!r} is not an RFC 3339 timestamp (e.g. 2018-04-05T17:31:00Z)",
            field=field)
    year, month, day, hour, minute, second = (int(m[i]) for i in range(1, 7))
    if second == 60:
        raise InvalidInput(f"{field} {text!r}: leap seconds are not supported", field=field)
    micro = int((m[7] or "")[:6].ljust(6, "0"))
    tz = UTC
    if m[8] is not None:
        off_h, off_m = int(m[9]), int(m[10])
        if off_h > 23 or off_m > 59:
            raise InvalidInput(f"{field} {text!r} has an invalid UTC offset", field=field)
        offset = timedelta(hours=off_h, minutes=off_m)
        tz = timezone(-offset if m[8] == "-" else offset) if offset else UTC
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError as exc:
        raise InvalidInput(f"{field} {text!r} is not a valid date-time: {exc}",
                           field=field) from None


def format_time(value: datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def canonical_string(value: str | int | bool) -> str:
    """The spec's canonical string encoding of an attribute value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_KINDS = {type(None): "null", bool: "a boolean", int: "a number", float: "a number",
          str: "a string", list: "an array", tuple: "an array", dict: "an object"}


def kind(value: Any) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def check_string(name: str, value: object, *, required: bool = False) -> bool:
    """True when a string attribute is set (and valid)."""
    if value is None:
        if required:
            raise InvalidInput(f"missing required attribute '{name}'", field=name)
        return False
    if not isinstance(value, str):
        raise InvalidInput(f"attribute '{name}' must be a string, got {kind(value)}", field=name)
    if not value:
        raise InvalidInput(f"attribute '{name}' must be a non-empty string", field=name)
    check_chars(name, value)
    return True


def check_chars(name: str, value: str) -> None:
    bad = _BAD_CHAR.search(value)
    if bad is not None:
        raise InvalidInput(
            f"attribute '{name}' contains U+{ord(bad.group()):04X} at index {bad.start()}, which "
            "the CloudEvents String type disallows (control character, surrogate or "
            "noncharacter)", field=name)


def check_uri(name: str, value: str, *, absolute: bool) -> None:
    what = "an absolute URI" if absolute else "a URI-reference"
    m = _URI_PARTS.fullmatch(value)
    assert m is not None  # the appendix B expression matches every string
    scheme = m[1]
    problem = None
    if scheme is not None and not _SCHEME.fullmatch(scheme):
        problem = (f"invalid scheme {scheme!r}" if absolute
                   else "a relative reference cannot have ':' in its first path segment")
    elif absolute and scheme is None:
        problem = "it has no scheme (e.g. https://example.com/schema)"
    elif absolute and m[5] is not None:
        problem = "an absolute URI cannot have a #fragment"
    else:
        for (label, pattern), part in zip(_URI_COMPONENTS, m.groups()[1:], strict=True):
            if part is None or pattern.fullmatch(part):
                continue
            stop = pattern.match(part)
            char = part[stop.end() if stop else 0]
            problem = ("invalid percent-encoding" if char == "%"
                       else f"character {char!r} is not allowed in the {label}; percent-encode it")
            break
    if problem is not None:
        raise InvalidInput(f"{name} {value!r} is not {what} (RFC 3986): {problem}", field=name)


def check_json_value(value: Any, path: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"{path} is {value}, which JSON cannot represent", field="data")
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_json_value(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(f"{path} has a non-string key {key!r}", field="data")
            check_json_value(item, f"{path}.{key}")
    elif value is not None and not isinstance(value, str | int | float):
        raise InvalidInput(f"{path} is a {type(value).__name__}, not a JSON value", field="data")


def check_media_type(name: str, value: str) -> None:
    if not _MEDIA_TYPE.fullmatch(value):
        raise InvalidInput(
            f"{name} {value!r} is not an RFC 2046 media type (type/subtype[; name=value]...)",
            field=name)


def check_traceparent(name: str, value: str) -> None:
    m = _TRACEPARENT.fullmatch(value)
    if (m is None or m[1] == "ff" or (m[1] == "00" and m[4] is not None)
            or set(m[2]) == {"0"} or set(m[3]) == {"0"}):
        raise InvalidInput(
            f"{name} {value!r} is not a W3C trace context traceparent "
            "(version-traceid-parentid-flags, lower-case hex, non-zero ids)", field=name)
