"""CloudEvent: construction, the JSON format, and one test per validation rule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from squall.errors import InvalidInput
from squall.model.cloudevent import CloudEvent
from squall.model.cloudevent_syntax import canonical_string, format_time, parse_time

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def minimal(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"specversion": "1.0", "id": "A-1", "source": "/orders", "type": "t"}
    doc.update(overrides)
    return doc


def event(**fields: Any) -> CloudEvent:
    base: dict[str, Any] = {"id": "A-1", "source": "/orders", "type": "t"}
    base.update(fields)
    return CloudEvent(**base)


def rejects(doc: Any, field: str | None, *fragments: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        CloudEvent.from_json_dict(doc)
    assert info.value.field == field, info.value.message
    for fragment in fragments:
        assert fragment in info.value.message
    return info.value


# -- construction ------------------------------------------------------------------------


def test_create_fills_id_and_time() -> None:
    before = datetime.now(UTC)
    e = CloudEvent.create("order.placed", {"n": 1}, source="/orders", subject="o-1")
    assert uuid.UUID(e.id).version == 4
    assert e.time is not None and before <= e.time <= datetime.now(UTC)
    assert e.time.utcoffset() == timedelta(0)
    assert (e.specversion, e.type, e.source, e.subject, e.data) == (
        "1.0", "order.placed", "/orders", "o-1", {"n": 1})
    assert CloudEvent.create("t", source="/s").id != CloudEvent.create("t", source="/s").id


def test_create_puts_bytes_in_data_base64() -> None:
    e = CloudEvent.create("t", b"\x00\xff", source="/s", datacontenttype="image/png")
    assert e.data_base64 == b"\x00\xff" and not e.has_data


def test_create_without_data_has_no_data() -> None:
    e = CloudEvent.create("t", source="/s")
    assert not e.has_data and e.data_base64 is None
    assert "data" not in e.to_json_dict()


def test_create_validates() -> None:
    with pytest.raises(InvalidInput) as info:
        CloudEvent.create("", source="/s")
    assert info.value.field == "type"


def test_create_accepts_an_rfc3339_string_time() -> None:
    e = CloudEvent.create("t", source="/s", time="2018-04-05T17:31:00+02:00")
    assert e.time == datetime(2018, 4, 5, 15, 31, tzinfo=UTC)


def test_platform_extension_helpers() -> None:
    e = CloudEvent.create("t", source="/s", traceparent=TRACEPARENT, hops=3,
                          partitionkey="customer-7", sequence="0042")
    assert (e.traceparent, e.hops, e.partitionkey, e.sequence) == (
        TRACEPARENT, 3, "customer-7", "0042")
    assert e.extensions["squallhops"] == 3
    bare = CloudEvent.create("t", source="/s")
    assert (bare.traceparent, bare.hops, bare.partitionkey, bare.sequence) == (None, 0, None, None)
    assert bare.with_hops(4).hops == 4
    assert e.with_extensions(partitionkey=None).partitionkey is None
    with pytest.raises(InvalidInput):
        bare.with_extensions(squallhops=-1)


def test_event_is_immutable() -> None:
    e = CloudEvent.create("t", source="/s")
    with pytest.raises(AttributeError):
        e.type = "other"  # type: ignore[misc]


def test_msgspec_encoding_round_trips_for_storage() -> None:
    e = CloudEvent.create("t", None, source="/s", extensions={"flag": True})
    assert msgspec.json.decode(msgspec.json.encode(e), type=CloudEvent) == e


# -- JSON format ---------------------------------------------------------------------------


def test_json_round_trip_with_extensions_and_data() -> None:
    doc = minimal(time="2018-04-05T17:31:00Z", subject="s", datacontenttype="application/json",
                  dataschema="https://example.com/schema", comexampleextension1="value",
                  comexampleothervalue=5, flag=False, data={"a": [1, 2.5, None]})
    e = CloudEvent.from_json_dict(doc)
    assert e.extensions == {"comexampleextension1": "value", "comexampleothervalue": 5,
                            "flag": False}
    assert e.to_json_dict() == doc


def test_json_null_attribute_is_unset_but_null_data_is_a_payload() -> None:
    e = CloudEvent.from_json_dict(minimal(subject=None, unsetextension=None, data=None))
    assert e.subject is None and e.extensions == {}
    assert e.has_data and e.data is None
    assert e.to_json_dict()["data"] is None


def test_json_data_base64_decodes_to_bytes() -> None:
    e = CloudEvent.from_json_dict(minimal(datacontenttype="application/octet-stream",
                                          data_base64="AP8="))
    assert e.data_base64 == b"\x00\xff"
    assert e.to_json_dict()["data_base64"] == "AP8="


@pytest.mark.parametrize("encoded", ["AP8", "A P8=", "\u00e9AP8="])
def test_invalid_data_base64_is_refused_naming_it(encoded: str) -> None:
    with pytest.raises(InvalidInput) as info:
        CloudEvent.from_json_dict(minimal(data_base64=encoded))
    assert info.value.field == "data_base64"


def test_non_json_content_type_keeps_string_data() -> None:
    e = CloudEvent.from_json_dict(minimal(datacontenttype="application/xml",
                                          data='<much wow="xml"/>'))
    assert e.data == '<much wow="xml"/>'


def test_squallhops_canonical_string_is_coerced_to_int() -> None:
    assert CloudEvent.from_json_dict(minimal(squallhops="7")).hops == 7


def test_time_parsing_and_rendering() -> None:
    t = parse_time("2018-04-05t17:31:00.123456789+05:30")
    assert t == datetime(2018, 4, 5, 17, 31, 0, 123456, tzinfo=timezone(timedelta(hours=5,
                                                                                  minutes=30)))
    assert format_time(parse_time("2018-04-05T17:31:00z")) == "2018-04-05T17:31:00Z"
    assert parse_time("2018-04-05T17:31:00-00:00").utcoffset() == timedelta(0)
    assert (canonical_string(True), canonical_string(-3)) == ("true", "-3")


# -- validation: one test per rule ---------------------------------------------------------


@pytest.mark.parametrize("name", ["specversion", "id", "source", "type"])
def test_missing_required_attribute(name: str) -> None:
    doc = minimal()
    del doc[name]
    rejects(doc, name, "missing required attribute", name)


@pytest.mark.parametrize("name", ["id", "source", "type"])
def test_required_attribute_null_is_missing(name: str) -> None:
    rejects(minimal(**{name: None}), name, "missing required attribute")


@pytest.mark.parametrize("name", ["id", "source", "type", "subject", "datacontenttype",
                                  "dataschema"])
def test_empty_string_attribute(name: str) -> None:
    rejects(minimal(**{name: ""}), name, "non-empty")


def test_non_string_attribute() -> None:
    rejects(minimal(id=5), "id", "must be a string", "a number")


@pytest.mark.parametrize("version", ["0.3", "1.1", "1", 1.0])
def test_bad_specversion(version: Any) -> None:
    rejects(minimal(specversion=version), "specversion", "only '1.0'")


def test_bad_specversion_reported_before_other_attributes() -> None:
    rejects({"specversion": "0.3", "schemaurl": "x"}, "specversion", "unsupported specversion")


@pytest.mark.parametrize("value", [
    "yesterday", "2018-04-05", "2018-04-05T17:31:00", "2018-04-05 17:31:00Z",
    "2018-04-05T17:31Z", "2018-02-30T00:00:00Z", "2018-04-05T17:31:00+0530",
    "2018-04-05T24:00:00Z", "2018-04-05T17:31:00+24:00", "2016-12-31T23:59:60Z",
    "\uff12\uff10\uff11\uff18-04-05T17:31:00Z",
])
def test_bad_time(value: str) -> None:
    rejects(minimal(time=value), "time", repr(value))


def test_naive_datetime_time() -> None:
    with pytest.raises(InvalidInput) as info:
        event(time=datetime(2020, 1, 1)).validate()
    assert info.value.field == "time"


@pytest.mark.parametrize("source", ["has space", "a:b c", "1:2", "/p%zz", "/a#b#c", "é"])
def test_source_must_be_uri_reference(source: str) -> None:
    rejects(minimal(source=source), "source", "URI-reference")


@pytest.mark.parametrize("source", [
    "https://github.com/cloudevents", "mailto:cncf-wg-serverless@lists.cncf.io",
    "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", "/cloudevents/spec/pull/123",
    "1-555-123-4567", "//host/p?q=1#frag", "http://[::1]:8080/x",
])
def test_source_accepts_spec_examples(source: str) -> None:
    assert CloudEvent.from_json_dict(minimal(source=source)).source == source


@pytest.mark.parametrize("schema", ["/relative/schema", "https://x/s.json#/defs/a",
                                    "https://x/a b"])
def test_dataschema_must_be_absolute_uri(schema: str) -> None:
    rejects(minimal(dataschema=schema), "dataschema", "absolute URI")


@pytest.mark.parametrize("value", ["json", "application/", "application/json;", "a/b; c",
                                   "text/plain; charset=\"x"])
def test_datacontenttype_must_be_a_media_type(value: str) -> None:
    rejects(minimal(datacontenttype=value), "datacontenttype", "RFC 2046")


@pytest.mark.parametrize("name", ["Upper", "with-dash", "under_score", "ümlaut", "dot.ted"])
def test_invalid_extension_name(name: str) -> None:
    rejects(minimal(**{name: "v"}), name, "lower-case letters a-z and digits 0-9")


def test_long_extension_name_is_allowed() -> None:
    # "SHOULD NOT exceed 20 characters" is a recommendation, not a MUST.
    name = "a" * 40
    assert CloudEvent.from_json_dict(minimal(**{name: "v"})).extensions == {name: "v"}


@pytest.mark.parametrize("value", [1.5, 5.0, [1], {"a": 1}])
def test_extension_value_of_unsupported_type(value: Any) -> None:
    rejects(minimal(myext=value), "myext", "unsupported value type")


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1])
def test_extension_integer_out_of_range(value: int) -> None:
    rejects(minimal(myext=value), "myext", "Integer range")


def test_extension_value_none_in_python_is_unsupported() -> None:
    with pytest.raises(InvalidInput) as info:
        event(extensions={"myext": None}).validate()
    assert info.value.field == "myext"


@pytest.mark.parametrize("name", ["id", "source", "type", "specversion", "time", "subject",
                                  "datacontenttype", "dataschema", "data"])
def test_extension_colliding_with_reserved_name(name: str) -> None:
    with pytest.raises(InvalidInput) as info:
        event(extensions={name: "x"}).validate()
    assert info.value.field == name
    assert "reserved" in info.value.message


def test_data_and_data_base64_both_present() -> None:
    rejects(minimal(data={"a": 1}, data_base64="AA=="), "data", "mutually exclusive")
    with pytest.raises(InvalidInput, match="mutually exclusive"):
        event(data=1, data_base64=b"x").validate()


@pytest.mark.parametrize("encoded", ["not base64!", "AAA", 12])
def test_bad_data_base64(encoded: Any) -> None:
    rejects(minimal(data_base64=encoded), "data_base64")


def test_non_json_content_type_needs_string_data() -> None:
    rejects(minimal(datacontenttype="text/plain", data={"a": 1}), "data", "not JSON")


@pytest.mark.parametrize("data", [float("nan"), {"a": {1: 2}}, {"when": datetime.now(UTC)}])
def test_data_must_be_a_json_value(data: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        event(data=data).validate()
    assert info.value.field == "data"


@pytest.mark.parametrize("char", ["\x00", "\n", "\x7f", "\x85", "\ufffe", "\U0010ffff",
                                  "\ud800"])
def test_string_type_disallowed_characters(char: str) -> None:
    with pytest.raises(InvalidInput) as info:
        event(subject=f"a{char}b").validate()
    assert info.value.field == "subject"
    assert f"U+{ord(char):04X}" in info.value.message


def test_disallowed_characters_in_extension_values() -> None:
    rejects(minimal(myext="line\nbreak"), "myext", "U+000A")


@pytest.mark.parametrize("value", ["-1", "x", 1.5, True, -2])
def test_squallhops_must_be_non_negative_integer(value: Any) -> None:
    rejects(minimal(squallhops=value), "squallhops")


@pytest.mark.parametrize("value", [
    "nope", "00-" + "0" * 32 + "-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-"
    + "0" * 16 + "-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    TRACEPARENT.upper(), TRACEPARENT + "-extra",
])
def test_traceparent_must_be_w3c(value: str) -> None:
    rejects(minimal(traceparent=value), "traceparent", "W3C")


@pytest.mark.parametrize("name", ["partitionkey", "sequence"])
def test_string_platform_extensions_must_be_non_empty_strings(name: str) -> None:
    rejects(minimal(**{name: 5}), name, "non-empty string")
    rejects(minimal(**{name: ""}), name, "non-empty string")


def test_json_event_must_be_an_object() -> None:
    rejects([minimal()], None, "must be an object")
