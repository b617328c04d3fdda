"""The CloudEvents HTTP protocol binding 1.0: structured, batched and binary modes.

Hand-written rather than built on the ``cloudevents`` SDK, because the SDK is lax
exactly where ingest must be strict: it invents an ``id`` (and ``time``) for a
received event that has none, and it picks binary mode whenever a
``ce-specversion`` header is present, ignoring a structured Content-Type. The
binding is small; owning it also keeps our own validation (field-precise
``InvalidInput`` errors) and msgspec decoding on the hot path.

Spec rules applied here (http-protocol-binding.md, v1.0.2):

* §3: the mode is chosen by Content-Type alone: a value prefixed with
  ``application/cloudevents-batch`` is batched, one prefixed with
  ``application/cloudevents`` is structured, anything else is binary.
* §3.2.3: in structured mode ``ce-`` headers MAY be present, but all attributes
  MUST be in the payload; the event is read from the body and the headers are
  ignored (they never fill in a missing attribute).
* §3.1.1: in binary mode Content-Type is ``datacontenttype``; a
  ``ce-datacontenttype`` header MUST NOT be present.
* §3.1.3.2: header values are first unescaped as RFC 7230 quoted strings, then
  percent-decoded once; invalid UTF-8 MUST be rejected. Encoding percent-encodes
  space, ``"``, ``%`` and everything outside U+0021..U+007E.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec

from squall.errors import InvalidInput
from squall.model.cloudevent import SPECVERSION, CloudEvent
from squall.model.cloudevent_syntax import canonical_string, is_json_content_type

STRUCTURED: Final = "application/cloudevents+json"
BATCH: Final = "application/cloudevents-batch+json"
_HEX: Final = frozenset(string.hexdigits)
_UNSAFE = re.compile(r"[^\x21\x23\x24\x26-\x7e]+")  # all but printable ASCII minus `"` and `%`
_BYTE_OFFSET = re.compile(r"\(byte (\d+)\)")


def parse_request(headers: Mapping[str, str], body: bytes) -> list[CloudEvent]:
    """The events carried by an HTTP request (header names lower-cased)."""
    content_type = headers.get("content-type")
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media.startswith("application/cloudevents-batch"):
        _require_format(content_type or "", media, BATCH)
        doc = decode_json(body, what="batch")
        if not isinstance(doc, list):
            raise InvalidInput(f"a {BATCH} body must be a JSON array, got {_json_kind(doc)}")
        events = []
        for index, item in enumerate(doc):
            try:
                events.append(CloudEvent.from_json_dict(item))
            except InvalidInput as exc:
                raise _at_index(index, exc) from None
        return events
    if media.startswith("application/cloudevents"):
        _require_format(content_type or "", media, STRUCTURED)
        return [CloudEvent.from_json_dict(decode_json(body, what="event"))]
    return [_parse_binary(headers, content_type, body)]


def to_structured(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    return {"content-type": f"{STRUCTURED}; charset=utf-8"}, event.to_json()


def to_batch(events: Sequence[CloudEvent]) -> tuple[dict[str, str], bytes]:
    body = msgspec.json.encode([event.to_json_dict() for event in events])
    return {"content-type": f"{BATCH}; charset=utf-8"}, body


def to_binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """Attributes in ``ce-`` headers, data as the body, datacontenttype as Content-Type.

    An event with data but no ``datacontenttype`` gets ``application/json``: the
    spec says the implied JSON type SHOULD be made explicit when changing binding.
    """
    headers: dict[str, str] = {}
    for name, value in event.attributes().items():
        if name != "datacontenttype":
            headers["ce-" + name] = encode_header_value(canonical_string(value))
    content_type = event.datacontenttype
    body = b""
    if event.has_data:
        content_type = content_type or "application/json"
        if is_json_content_type(content_type):
            body = msgspec.json.encode(event.data)
        elif isinstance(event.data, str):
            body = event.data.encode("utf-8")
        else:
            raise InvalidInput(f"datacontenttype {content_type!r} is not JSON, so data must "
                               "be a string", field="data")
    elif event.data_base64 is not None:
        body = event.data_base64
    if content_type is not None:
        headers["content-type"] = content_type
    return headers, body


# -- binary mode ----------------------------------------------------------------------


def _parse_binary(headers: Mapping[str, str], content_type: str | None, body: bytes) -> CloudEvent:
    if "ce-specversion" not in headers:
        shown = "missing" if content_type is None else repr(content_type)
        raise InvalidInput(
            f"not a CloudEvent: Content-Type is {shown}, not {STRUCTURED} (structured mode) or "
            f"{BATCH} (batched mode), and the ce-specversion header (binary mode) is missing",
            field="specversion")
    if "ce-datacontenttype" in headers:
        raise InvalidInput(
            "binary mode carries datacontenttype in the Content-Type header; a "
            "ce-datacontenttype header must not be present", field="datacontenttype")
    attrs: dict[str, Any] = {}
    for name, raw in headers.items():
        if name.startswith("ce-"):
            attrs[name[3:]] = decode_header_value(raw, name[3:])
    if attrs["specversion"] != SPECVERSION:  # first: other versions name attributes differently
        raise InvalidInput(f"unsupported specversion {attrs['specversion']!r}: only '1.0' is "
                           "supported", field="specversion")
    for name in ("id", "source", "type"):  # never invented for a received event
        if name not in attrs:
            raise InvalidInput(f"missing required attribute '{name}' (no ce-{name} header)",
                               field=name)
    data: Any = msgspec.UNSET
    data_base64 = None
    if content_type is not None:
        attrs["datacontenttype"] = content_type.strip()
        if body and is_json_content_type(content_type):
            data = decode_json(body, what="data", field="data")
        elif body:
            data_base64 = bytes(body)
    elif body:
        data_base64 = bytes(body)  # no declared media type: opaque bytes
    return CloudEvent.from_attributes(attrs, data=data, data_base64=data_base64)


def decode_header_value(raw: str, attribute: str) -> str:
    """Quoted-string unescaping, then one round of strict percent-decoding."""
    value = raw.strip(" \t")
    if '"' in value:
        value = _unquote(value, attribute)
    if "%" not in value:
        if not value.isascii():
            raise _header_error(attribute, "contains non-ASCII characters; percent-encode them")
        return value
    out = bytearray()
    i = 0
    while i < len(value):
        char = value[i]
        if char == "%":
            pair = value[i + 1 : i + 3]
            if len(pair) != 2 or not _HEX.issuperset(pair):
                raise _header_error(attribute, f"has an invalid percent-escape at index {i}")
            out.append(int(pair, 16))
            i += 3
            continue
        if not char.isascii():
            raise _header_error(attribute, "contains non-ASCII characters; percent-encode them")
        out += char.encode("ascii")
        i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _header_error(
            attribute, f"percent-decodes to invalid UTF-8 at byte {exc.start}") from None


def encode_header_value(value: str) -> str:
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8")), value)


def _unquote(value: str, attribute: str) -> str:
    out: list[str] = []
    quoted = False
    chars = iter(value)
    for char in chars:
        if char == '"':
            quoted = not quoted
        elif quoted and char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                break
            out.append(escaped)
        else:
            out.append(char)
    if quoted:
        raise _header_error(attribute, "has an unterminated quoted string")
    return "".join(out)


def _header_error(attribute: str, problem: str) -> InvalidInput:
    return InvalidInput(f"header ce-{attribute} {problem}", field=attribute)


# -- JSON -----------------------------------------------------------------------------


def decode_json(body: bytes, *, what: str, field: str | None = None) -> Any:
    """Decode JSON; a malformed document is reported with its line and column."""
    if not body.strip():
        raise InvalidInput(f"the {what} body is empty; expected JSON", field=field)
    try:
        return msgspec.json.decode(body)
    except UnicodeDecodeError:  # msgspec raises this for bad UTF-8 inside a string,
        offset, reason = _first_invalid_utf8(body), "invalid UTF-8"  # offset relative to it
    except msgspec.DecodeError as exc:
        m = _BYTE_OFFSET.search(str(exc))
        if m is not None:
            offset = min(int(m[1]), len(body))
            reason = str(exc)[: m.start()].strip().removeprefix("JSON is malformed: ")
        elif "UTF-8" in str(exc):  # newer msgspec reports bad UTF-8 without an offset
            offset, reason = _first_invalid_utf8(body), "invalid UTF-8"
        else:
            raise InvalidInput(f"malformed JSON in the {what}: {exc}", field=field) from None
    line = body.count(b"\n", 0, offset) + 1
    column = len(body[body.rfind(b"\n", 0, offset) + 1 : offset].decode("utf-8", "replace")) + 1
    raise InvalidInput(
        f"malformed JSON in the {what} at line {line}, column {column}: {reason}",
        field=field, line=line, column=column)


def _first_invalid_utf8(body: bytes) -> int:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return 0


def _require_format(content_type: str, media: str, expected: str) -> None:
    if media != expected:
        raise InvalidInput(
            f"unsupported event format {media!r}: only {expected} is supported",
            field="content-type")
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8", "utf8"):
            raise InvalidInput(f"unsupported charset {value.strip()!r}: JSON must be UTF-8",
                               field="content-type")


def _at_index(index: int, exc: InvalidInput) -> InvalidInput:
    field = f"[{index}]" if exc.field is None else f"[{index}].{exc.field}"
    return InvalidInput(f"event [{index}]: {exc.message}", field=field, **exc.details)


def _json_kind(value: Any) -> str:
    return "an object" if isinstance(value, dict) else "a scalar"
