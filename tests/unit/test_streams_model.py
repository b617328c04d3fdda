"""Stream declarations and their validation; the shard a partition key goes to."""

from __future__ import annotations

import hashlib

import msgspec
import pytest

import squall
from squall.engine.streams.reports import first_failed
from squall.errors import ConfigError, InvalidInput, PayloadTooLarge
from squall.model.streams import (
    MAX_RECORD_BYTES,
    StreamRecord,
    check_partition_key,
    check_record_size,
    shard_for,
)


def test_a_key_goes_to_its_md5_mod_the_shard_count() -> None:
    for key in ("a", "device-7", "ünïcode", "x" * 256):
        digest = int(hashlib.md5(key.encode()).hexdigest(), 16)
        assert shard_for(key, 4) == digest % 4
        assert shard_for(key, 1) == 0
    assert len({shard_for(f"k{i}", 8) for i in range(200)}) == 8


def test_partition_keys_and_record_sizes_are_checked_naming_the_field() -> None:
    assert check_partition_key("k") == "k"
    for bad in ("", "x" * 257, 7, None):
        with pytest.raises(InvalidInput) as exc:
            check_partition_key(bad, "records[2].partition_key")
        assert exc.value.field == "records[2].partition_key"
    check_record_size(b"x" * (MAX_RECORD_BYTES - 1), "k")
    with pytest.raises(PayloadTooLarge) as too_big:
        check_record_size(b"x" * MAX_RECORD_BYTES, "kk")
    assert too_big.value.details == {"size": MAX_RECORD_BYTES + 2, "limit": MAX_RECORD_BYTES}


def _app() -> squall.App:
    app = squall.App("t")
    app.stream_resource("telemetry", shards=4, retention_s=86400)
    return app


def test_a_stream_trigger_lands_in_the_manifest() -> None:
    app = _app()

    @app.stream("telemetry", batch_size=50, bisect_on_error=True, on_failure="sink",
                permissions=["put:telemetry"])
    def consume(event, ctx):  # type: ignore[no-untyped-def]
        return None

    @app.function()
    def sink(event, ctx):  # type: ignore[no-untyped-def]
        return None

    manifest = app.manifest()
    [trigger] = manifest.stream_triggers
    assert (trigger.function, trigger.stream, trigger.batch_size) == ("consume", "telemetry", 50)
    assert manifest.streams[0].shards == 4
    assert manifest.functions[0].allows("put", "telemetry")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_window_s": 301}, "batch_window_s"),
        ({"starting_position": "oldest"}, "starting_position"),
        ({"starting_position": "at_timestamp"}, "starting_timestamp"),
        ({"starting_timestamp": 5.0}, "starting_timestamp"),
        ({"max_retries": -2}, "max_retries"),
        ({"max_record_age_s": 0}, "max_record_age_s"),
        ({"bisect_on_error": "yes"}, "bisect_on_error"),
    ],
)
def test_bad_trigger_options_name_the_function_field_and_value(
    options: dict[str, object], field: str
) -> None:
    app = _app()

    def consume(event, ctx):  # type: ignore[no-untyped-def]
        return None

    with pytest.raises(ConfigError) as exc:
        app.stream("telemetry", **options)(consume)  # type: ignore[arg-type]
    assert exc.value.field == field
    assert exc.value.details["function"] == "consume"
    assert "consume" not in app.functions
    assert "value" in exc.value.details


def test_a_trigger_needs_a_declared_stream_and_an_existing_on_failure() -> None:
    app = _app()

    @app.stream("nope")
    def lost(event, ctx):  # type: ignore[no-untyped-def]
        return None

    with pytest.raises(ConfigError) as exc:
        app.manifest()
    assert (exc.value.field, exc.value.details["function"]) == ("stream", "lost")

    app = _app()

    @app.stream("telemetry", on_failure="ghost")
    def consumer(event, ctx):  # type: ignore[no-untyped-def]
        return None

    with pytest.raises(ConfigError) as exc:
        app.manifest()
    assert exc.value.field == "on_failure" and exc.value.details["value"] == "'ghost'"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"name": "9bad"}, "name"),
        ({"name": "s", "shards": 0}, "shards"),
        ({"name": "s", "shards": 65}, "shards"),
        ({"name": "s", "retention_s": 59}, "retention_s"),
    ],
)
def test_bad_stream_declarations_name_the_field(options: dict[str, object], field: str) -> None:
    app = squall.App("t")
    name = str(options.pop("name"))
    with pytest.raises(ConfigError) as exc:
        app.stream_resource(name, **options)  # type: ignore[arg-type]
    assert exc.value.field == field


def test_a_stream_declared_twice_is_refused() -> None:
    app = _app()
    app.stream_resource("telemetry")
    with pytest.raises(ConfigError, match="declared twice"):
        app.manifest()


def _batch(*sequences: int) -> list[StreamRecord]:
    return [
        StreamRecord(shard=0, sequence=s, partition_key="k", data=msgspec.Raw(b"1"),
                     arrival_time=0.0)
        for s in sequences
    ]


def test_partial_batch_reports_name_where_to_retry_from() -> None:
    batch = _batch(5, 6, 7, 8)
    assert first_failed(b'[1, 2]', batch) == (None, "")
    assert first_failed(b'{"batchItemFailures": []}', batch) == (None, "")
    assert first_failed(None, batch) == (None, "")
    index, reason = first_failed(
        b'{"batchItemFailures": [{"itemIdentifier": "8"}, {"itemIdentifier": 6}]}', batch
    )
    assert index == 1 and "sequence 6" in reason
    whole, why = first_failed(b'{"batchItemFailures": [{"itemIdentifier": 99}]}', batch)
    assert whole == 0 and "99" in why
    assert first_failed(b'{"batchItemFailures": [{"itemIdentifier": true}]}', batch)[0] == 0
