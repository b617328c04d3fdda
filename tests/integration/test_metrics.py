"""Prometheus metrics of a real platform: counted per invocation, state read at scrape time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from squall.errors import TooManyRequests
from squall.model.cloudevent import CloudEvent

APP = """
import time
import squall

app = squall.App("metered")

app.queue_resource("jobs")
app.stream_resource("telemetry", shards=1)


@app.function(memory_mb=256)
def hello(event, ctx):
    return {"hi": event}


@app.function(retries=0)
def boom(event, ctx):
    raise ValueError("nope")


@app.function(concurrency=1)
def slow(event, ctx):
    time.sleep(event)
    return None


@app.on("order.placed", rule="orders")
def on_order(event, ctx):
    return None


@app.stream("telemetry", batch_size=1, starting_position="trim_horizon")
def on_telemetry(records, ctx):
    time.sleep(records["records"][0]["data"]["sleep"])
"""


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: bytes) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


async def test_invocations_errors_durations_and_cold_starts_are_counted(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    for n in range(3):
        record = await p.invoke("hello", str(n).encode())
        assert record.status == "succeeded"
    failed = await p.invoke("boom", b"null")
    assert failed.error is not None and failed.error["error_type"] == "ValueError"
    samples = parse(await p.observability.scrape())

    ok = {"function": "hello", "trigger": "sync", "status": "succeeded"}
    assert value(samples, "squall_invocations_total", **ok) == 3
    bad = {"function": "boom", "trigger": "sync", "status": "failed"}
    assert value(samples, "squall_invocations_total", **bad) == 1
    errors = "squall_invocation_errors_total"
    assert value(samples, errors, function="boom", error_type="ValueError") == 1
    assert value(samples, errors, function="hello", error_type="ValueError") is None
    assert value(samples, "squall_cold_starts_total", function="hello") == 1
    assert value(samples, "squall_invocation_duration_seconds_count", function="hello") == 3
    total_s = value(samples, "squall_invocation_duration_seconds_sum", function="hello")
    assert total_s is not None and 0 < total_s < 3
    inf = value(samples, "squall_invocation_duration_seconds_bucket", function="hello", le="+Inf")
    assert inf == 3
    assert value(samples, "squall_init_duration_seconds_count", function="hello") == 1
    # gauges read from the pools when scraped: one warm sandbox each, nothing running
    assert value(samples, "squall_warm_instances", function="hello") == 1
    assert value(samples, "squall_concurrent_executions", function="hello") == 0
    assert value(samples, "squall_sandboxes_started_total", function="hello") == 1


async def test_throttles_and_concurrent_executions(platform, eventually) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP, sync_wait_s=0.2)
    running = asyncio.ensure_future(p.invoke("slow", b"1.5"))

    async def busy() -> bool:
        samples = parse(await p.observability.scrape())
        return value(samples, "squall_concurrent_executions", function="slow") == 1

    await eventually(busy)
    with pytest.raises(TooManyRequests):
        await p.invoke("slow", b"0")
    samples = parse(await p.observability.scrape())
    assert value(samples, "squall_throttles_total", function="slow") == 1
    assert value(samples, "squall_throttles_total", function="hello") == 0
    await running


async def test_queue_depth_dead_letters_and_bus_events(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    await p.queues.send("jobs", b'{"n": 1}')
    await p.queues.send("jobs", b'{"n": 2}')
    await p.invoke_async("boom", b"null")
    await p.publish([CloudEvent.create("order.placed", {"id": 1}, source="shop")])
    await p.publish([CloudEvent.create("order.shipped", {"id": 1}, source="shop")])
    await p.wait_idle()
    await asyncio.sleep(0.05)  # the oldest message is a little older than now
    samples = parse(await p.observability.scrape())

    assert value(samples, "squall_queue_messages", queue="jobs", state="visible") == 2
    assert value(samples, "squall_queue_messages", queue="jobs", state="in_flight") == 0
    age = value(samples, "squall_queue_oldest_message_age_seconds", queue="jobs")
    assert age is not None and 0.05 <= age < 30
    assert value(samples, "squall_dead_letters", function="boom") == 1
    async_failed = {"function": "boom", "trigger": "async", "status": "failed"}
    assert value(samples, "squall_invocations_total", **async_failed) == 1
    assert value(samples, "squall_bus_events_total", bus="default", outcome="published") == 2
    assert value(samples, "squall_bus_events_total", bus="default", outcome="matched") == 1
    assert value(samples, "squall_bus_deliveries_total", bus="default") == 1
    assert value(samples, "squall_rule_matches_total", bus="default", rule="orders") == 1
    event_run = {"function": "on-order", "trigger": "event", "status": "succeeded"}
    assert value(samples, "squall_invocations_total", **event_run) == 1


async def test_stream_consumer_lag_per_shard(platform, eventually) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    records = [(b'{"sleep": 1.0}', "k"), (b'{"sleep": 0}', "k"), (b'{"sleep": 0}', "k")]
    await p.streams.put("telemetry", records)
    labels = {"stream": "telemetry", "shard": "0", "function": "on-telemetry"}

    async def lagging() -> Any:
        samples = parse(await p.observability.scrape())
        behind = value(samples, "squall_stream_consumer_behind_records", **labels)
        return samples if behind is not None and behind >= 2 else None

    samples = await eventually(lagging)
    age = value(samples, "squall_stream_consumer_oldest_age_seconds", **labels)
    assert age is not None and age >= 0

    async def caught_up() -> bool:
        samples = parse(await p.observability.scrape())
        return value(samples, "squall_stream_consumer_behind_records", **labels) == 0

    await eventually(caught_up)


async def test_two_platforms_in_one_process_keep_their_own_registries(  # type: ignore[no-untyped-def]
    platform, tmp_path
) -> None:
    first = await platform(APP)
    second = await platform(APP, data_dir=tmp_path / "other")
    await first.invoke("hello", b"1")
    await first.invoke("hello", b"2")
    await second.invoke("hello", b"3")
    ok = {"function": "hello", "trigger": "sync", "status": "succeeded"}
    assert value(parse(await first.observability.scrape()), "squall_invocations_total", **ok) == 2
    assert value(parse(await second.observability.scrape()), "squall_invocations_total", **ok) == 1
