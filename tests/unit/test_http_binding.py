"""The CloudEvents HTTP protocol binding: structured, batched and binary modes."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from squall.errors import InvalidInput
from squall.events import parse_request, to_batch, to_binary, to_structured
from squall.events.http_binding import decode_header_value, encode_header_value
from squall.model.cloudevent import INT_MAX, INT_MIN, PLATFORM_EXTENSIONS, RESERVED, CloudEvent
from squall.model.cloudevent_syntax import canonical_string

STRUCTURED = {"content-type": "application/cloudevents+json; charset=utf-8"}
BATCH = {"content-type": "application/cloudevents-batch+json"}
BINARY = {"ce-specversion": "1.0", "ce-id": "A-1", "ce-source": "/orders", "ce-type": "t"}


def doc(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"specversion": "1.0", "id": "A-1", "source": "/orders", "type": "t"}
    base.update(overrides)
    return base


body = msgspec.json.encode


def rejects(headers: dict[str, str], payload: bytes, field: str | None,
            *fragments: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        parse_request(headers, payload)
    assert info.value.field == field, info.value.message
    for fragment in fragments:
        assert fragment in info.value.message, info.value.message
    return info.value


# -- structured mode -----------------------------------------------------------------------


def test_structured_event() -> None:
    [e] = parse_request(STRUCTURED, body(doc(data={"a": 1}, comexampleothervalue=5)))
    assert (e.id, e.source, e.type, e.data) == ("A-1", "/orders", "t", {"a": 1})
    assert e.extensions == {"comexampleothervalue": 5}


def test_structured_content_type_is_case_insensitive_and_charset_optional() -> None:
    for value in ("Application/CloudEvents+JSON", "application/cloudevents+json;charset=UTF-8",
                  'application/cloudevents+json; charset="utf-8"'):
        assert parse_request({"content-type": value}, body(doc()))[0].id == "A-1"


def test_structured_rejects_a_charset_other_than_utf8() -> None:
    rejects({"content-type": "application/cloudevents+json; charset=latin-1"}, body(doc()),
            "content-type", "UTF-8")


def test_structured_ignores_ce_headers() -> None:
    # §3.2.3: headers MAY repeat attributes, but the payload MUST carry them all.
    headers = {**STRUCTURED, "ce-id": "from-header", "ce-specversion": "1.0", "ce-extra": "x"}
    [e] = parse_request(headers, body(doc()))
    assert e.id == "A-1" and e.extensions == {}


def test_structured_ce_headers_never_fill_a_missing_attribute() -> None:
    payload = doc()
    del payload["id"]
    rejects({**STRUCTURED, "ce-id": "from-header"}, body(payload), "id", "missing")


def test_structured_wins_over_ce_specversion_header() -> None:
    # The SDK picks binary mode when ce-specversion is present; the spec says Content-Type.
    [e] = parse_request({**STRUCTURED, **BINARY, "ce-id": "other"}, body(doc(data=[1])))
    assert e.id == "A-1" and e.data == [1]


def test_structured_missing_id_is_an_error_not_invented() -> None:
    payload = doc()
    del payload["id"]
    rejects(STRUCTURED, body(payload), "id", "missing required attribute 'id'")


def test_structured_validation_errors_name_the_attribute() -> None:
    rejects(STRUCTURED, body(doc(time="2018-13-01T00:00:00Z")), "time", "2018-13-01")
    rejects(STRUCTURED, body(doc(specversion="0.3")), "specversion", "only '1.0'")
    rejects(STRUCTURED, body(doc(BadName="x")), "BadName", "lower-case")


def test_structured_body_must_be_an_object() -> None:
    rejects(STRUCTURED, b"[]", None, "must be an object, got an array")


def test_unsupported_structured_format() -> None:
    rejects({"content-type": "application/cloudevents+avro"}, b"x", "content-type",
            "unsupported event format")


def test_malformed_json_names_line_and_column() -> None:
    error = rejects(STRUCTURED, b'{\n  "id": "a",\n  "type": ,\n}', None,
                    "malformed JSON", "line 3, column 11")
    assert (error.details["line"], error.details["column"]) == (3, 11)


def test_empty_or_invalid_utf8_body() -> None:
    rejects(STRUCTURED, b"", None, "empty")
    rejects(STRUCTURED, b'{\n "id": "ab\xff"}', None, "line 2, column 11: invalid UTF-8")


# -- batched mode --------------------------------------------------------------------------


def test_batch_of_events() -> None:
    events = parse_request(BATCH, body([doc(id="1"), doc(id="2", data_base64="AA==")]))
    assert [e.id for e in events] == ["1", "2"]
    assert events[1].data_base64 == b"\x00"
    assert parse_request(BATCH, b"[]") == []  # the batch MAY be empty


def test_batch_error_names_the_index() -> None:
    items = [doc(id=str(i)) for i in range(5)]
    items[3]["time"] = "noon"
    rejects(BATCH, body(items), "[3].time", "event [3]", "'noon'")


def test_batch_element_must_be_an_object() -> None:
    rejects(BATCH, body([doc(), "x"]), "[1]", "must be an object")


def test_batch_body_must_be_an_array() -> None:
    rejects(BATCH, body(doc()), None, "JSON array")


def test_unsupported_batch_format() -> None:
    rejects({"content-type": "application/cloudevents-batch+xml"}, b"", "content-type")


def test_to_batch_round_trip() -> None:
    events = [CloudEvent.create("t", {"i": i}, source="/s") for i in range(3)]
    headers, payload = to_batch(events)
    assert headers["content-type"].startswith("application/cloudevents-batch+json")
    assert parse_request(headers, payload) == events


# -- binary mode ---------------------------------------------------------------------------


def test_binary_json_data() -> None:
    headers = {**BINARY, "ce-time": "2018-04-05T03:56:24Z", "content-type":
               "application/json; charset=utf-8", "ce-comexampleothervalue": "5"}
    [e] = parse_request(headers, b'{"appinfoA": "abc"}')
    assert e.data == {"appinfoA": "abc"}
    assert e.datacontenttype == "application/json; charset=utf-8"
    assert e.time == datetime(2018, 4, 5, 3, 56, 24, tzinfo=UTC)
    assert e.extensions == {"comexampleothervalue": "5"}  # headers carry canonical strings


def test_binary_non_json_data_goes_to_data_base64() -> None:
    [e] = parse_request({**BINARY, "content-type": "application/xml"}, b'<much wow="xml"/>')
    assert e.data_base64 == b'<much wow="xml"/>' and not e.has_data


def test_binary_without_content_type_keeps_opaque_bytes() -> None:
    [e] = parse_request(BINARY, b"\x00\x01")
    assert e.data_base64 == b"\x00\x01" and e.datacontenttype is None


def test_binary_empty_body_has_no_data() -> None:
    [e] = parse_request({**BINARY, "content-type": "application/json"}, b"")
    assert not e.has_data and e.data_base64 is None
    assert e.datacontenttype == "application/json"


def test_binary_json_null_body_is_a_null_payload() -> None:
    [e] = parse_request({**BINARY, "content-type": "application/json"}, b"null")
    assert e.has_data and e.data is None


def test_binary_malformed_json_data() -> None:
    rejects({**BINARY, "content-type": "application/vnd.x+json"}, b"{\n oops}", "data",
            "line 2, column 2")


@pytest.mark.parametrize("name", ["id", "source", "type"])
def test_binary_missing_required_attribute(name: str) -> None:
    headers = dict(BINARY)
    del headers[f"ce-{name}"]
    rejects(headers, b"", name, f"missing required attribute '{name}'")


def test_binary_bad_specversion() -> None:
    rejects({**BINARY, "ce-specversion": "0.3"}, b"", "specversion", "only '1.0'")


def test_binary_rejects_ce_datacontenttype() -> None:
    rejects({**BINARY, "ce-datacontenttype": "application/json"}, b"", "datacontenttype",
            "must not be present")


def test_binary_bad_time() -> None:
    rejects({**BINARY, "ce-time": "2018-04-05"}, b"", "time", "RFC 3339")


@pytest.mark.parametrize(("header", "field"), [("ce-data", "data"), ("ce-foo_bar", "foo_bar"),
                                               ("ce-", "")])
def test_binary_invalid_extension_headers(header: str, field: str) -> None:
    rejects({**BINARY, header: "x"}, b"", field)


def test_binary_squallhops_header_becomes_an_integer() -> None:
    [e] = parse_request({**BINARY, "ce-squallhops": "3"}, b"")
    assert e.hops == 3 and e.extensions["squallhops"] == 3
    rejects({**BINARY, "ce-squallhops": "three"}, b"", "squallhops", "Integer")


def test_binary_bad_content_type() -> None:
    rejects({**BINARY, "content-type": "json"}, b"1", "datacontenttype", "RFC 2046")


@pytest.mark.parametrize("headers", [{}, {"content-type": "application/json"},
                                     {"ce-id": "1", "ce-type": "t", "ce-source": "/s"}])
def test_not_a_cloudevent_names_what_is_missing(headers: dict[str, str]) -> None:
    rejects(headers, b"{}", "specversion", "application/cloudevents+json",
            "application/cloudevents-batch+json", "ce-specversion header")


# -- header value encoding (§3.1.3.2) ---------------------------------------------------


def test_percent_encoding_matches_the_spec_example() -> None:
    assert encode_header_value("Euro \u20ac \U0001f600") == "Euro%20%E2%82%AC%20%F0%9F%98%80"
    assert encode_header_value('say "100%"') == "say%20%22100%25%22"
    assert encode_header_value("/a/b?c=d&e") == "/a/b?c=d&e"


@pytest.mark.parametrize(("raw", "decoded"), [
    ("Euro%20%E2%82%AC%20%F0%9F%98%80", "Euro \u20ac \U0001f600"),
    ("lower%e2%82%ac", "lower\u20ac"),
    ("%41%42", "AB"),  # unnecessarily encoded: accepted
    ('"quoted value"', "quoted value"),
    ('"with \\"escapes\\" and \\\\"', 'with "escapes" and \\'),
    ('"%20"', " "),  # unquote first, then percent-decode
    ("  padded\t", "padded"),
])
def test_header_value_decoding(raw: str, decoded: str) -> None:
    assert decode_header_value(raw, "subject") == decoded


@pytest.mark.parametrize(("raw", "problem"), [
    ("%C0%A0", "invalid UTF-8"),  # overlong space: MUST be rejected
    ("%ED%A0%80", "invalid UTF-8"),  # encoded surrogate
    ("%E2%82", "invalid UTF-8"),
    ("100%", "percent-escape"),
    ("%zz", "percent-escape"),
    ("caf\u00e9", "non-ASCII"),
    ('"open', "unterminated"),
])
def test_header_value_rejections(raw: str, problem: str) -> None:
    rejects({**BINARY, "ce-subject": raw}, b"", "subject", "ce-subject", problem)


def test_decoded_header_is_validated() -> None:
    rejects({**BINARY, "ce-subject": "a%0Ab"}, b"", "subject", "U+000A")


# -- rendering -----------------------------------------------------------------------------


def test_to_binary_headers_and_body() -> None:
    e = CloudEvent.create("t", {"a": 1}, source="/s", id="x", subject="a b",
                          time="2018-04-05T17:31:00Z", extensions={"flag": True, "n": -3})
    headers, payload = to_binary(e)
    assert headers == {"ce-specversion": "1.0", "ce-id": "x", "ce-source": "/s", "ce-type": "t",
                       "ce-time": "2018-04-05T17:31:00Z", "ce-subject": "a%20b",
                       "ce-flag": "true", "ce-n": "-3", "content-type": "application/json"}
    assert payload == b'{"a":1}'


def test_to_binary_string_data_with_non_json_type() -> None:
    e = CloudEvent.create("t", "<x/>", source="/s", datacontenttype="application/xml")
    headers, payload = to_binary(e)
    assert headers["content-type"] == "application/xml" and payload == b"<x/>"


def test_to_binary_without_data() -> None:
    headers, payload = to_binary(CloudEvent.create("t", source="/s"))
    assert "content-type" not in headers and payload == b""


def test_to_structured() -> None:
    e = CloudEvent.create("t", b"\x01", source="/s", datacontenttype="application/octet-stream")
    headers, payload = to_structured(e)
    assert headers == STRUCTURED
    assert msgspec.json.decode(payload)["data_base64"] == "AQ=="
    assert parse_request(headers, payload) == [e]


def test_binary_round_trip() -> None:
    e = CloudEvent.create("t", [1, "two"], source="urn:x", datacontenttype="application/json",
                          subject="naïve \"subject\" 100%", hops=2, traceparent=
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    assert parse_request(*to_binary(e)) == [e]


# -- property: random valid events survive render -> parse -----------------------------------

_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc", "Cn")), min_size=1, max_size=20)
_URI_CHARS = string.ascii_letters + string.digits + "-._~/!$&'()*+,;=@"
_JSON_TYPES = ["application/json", "application/json; charset=utf-8", "text/json",
               "application/vnd.squall.order+json"]
_OTHER_TYPES = ["application/octet-stream", "text/plain; charset=utf-8", "image/png"]
_json_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=10)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | _json_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_json_text, inner, max_size=4),
    max_leaves=10,
)
_ext_name = st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True).filter(
    lambda n: n not in RESERVED and n not in PLATFORM_EXTENSIONS)
_ext_value = _TEXT | st.integers(INT_MIN, INT_MAX) | st.booleans()
_hex = st.text("0123456789abcdef", min_size=1, max_size=1)


@st.composite
def events(draw: st.DrawFn) -> CloudEvent:
    content_type = draw(st.sampled_from([None, *_JSON_TYPES, *_OTHER_TYPES]))
    data: Any = msgspec.UNSET
    data_base64 = None
    # Bytes declared as JSON are legal, but binary mode hands them back decoded: not drawn.
    if content_type in _OTHER_TYPES or (content_type is None and draw(st.booleans())):
        data_base64 = draw(st.none() | st.binary(max_size=16))
    else:
        data = draw(st.just(msgspec.UNSET) | _json)
    extensions = draw(st.dictionaries(_ext_name, _ext_value, max_size=4))
    if draw(st.booleans()):
        extensions["squallhops"] = draw(st.integers(0, INT_MAX))
        extensions["partitionkey"] = draw(_TEXT)
        extensions["sequence"] = draw(_TEXT)
        trace, parent = draw(_hex) * 32, draw(_hex) * 16
        if set(trace) != {"0"} and set(parent) != {"0"}:
            extensions["traceparent"] = f"00-{trace}-{parent}-01"
    offset = timezone(timedelta(minutes=draw(st.integers(-23 * 60, 23 * 60))))
    return CloudEvent(
        id=draw(_TEXT),
        source=draw(st.sampled_from(["https://example.com/", "/", "urn:squall:", ""]))
        + draw(st.text(_URI_CHARS, min_size=1, max_size=20)),
        type=draw(_TEXT),
        time=draw(st.none() | st.datetimes(datetime(1900, 1, 1), timezones=st.just(offset))),
        subject=draw(st.none() | _TEXT),
        datacontenttype=content_type,
        dataschema=draw(st.none() | st.just("https://example.com/schemas/order.json")),
        data=data,
        data_base64=data_base64,
        extensions=extensions,
    ).validate()


def after_binary(e: CloudEvent) -> CloudEvent:
    """What binary mode can carry: header extensions are canonical strings (except the
    typed platform ones), implied application/json becomes explicit, and an empty body
    cannot say "empty bytes" apart from "no data"."""
    ext = {name: value if name == "squallhops" else canonical_string(value)
           for name, value in e.extensions.items()}
    content_type = e.datacontenttype
    if e.has_data and content_type is None:
        content_type = "application/json"
    return msgspec.structs.replace(e, extensions=ext, datacontenttype=content_type,
                                   data_base64=e.data_base64 or None)


PROPERTY = settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(events())
def test_property_structured_round_trip(e: CloudEvent) -> None:
    assert parse_request(*to_structured(e)) == [e]


@PROPERTY
@given(events())
def test_property_binary_round_trip(e: CloudEvent) -> None:
    headers, payload = to_binary(e)
    assert all(value.isascii() and value == value.strip() for value in headers.values())
    assert parse_request(headers, payload) == [after_binary(e)]


@settings(PROPERTY, max_examples=100)
@given(st.lists(events(), max_size=5))
def test_property_batch_round_trip(batch: list[CloudEvent]) -> None:
    assert parse_request(*to_batch(batch)) == batch
