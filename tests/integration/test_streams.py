"""Streams and stream triggers on a real platform: puts, per-shard order, checkpoints across
a restart, retries and bisection to the on-failure function, record age, permissions."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from typing import Any

import msgspec
import pytest

from squall.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from squall.model.streams import MAX_RECORD_BYTES, shard_for

APP = """
import time
import squall

app = squall.App("streams")
app.stream_resource("telemetry", shards=4, retention_s=3600)


@app.stream("telemetry", batch_size=10, starting_position="trim_horizon")
def ingest(event, ctx):
    time.sleep(0.05)
    return [[r["shard"], r["sequence"], r["partition_key"], r["data"]] for r in event["records"]]


@app.function(permissions=["put:telemetry"])
def producer(event, ctx):
    one = ctx.put_record("telemetry", {"n": 0}, event["key"])
    many = ctx.put_records("telemetry", [{"data": {"n": i}, "partition_key": event["key"]}
                                         for i in (1, 2)])
    return [one, *many]


@app.function()
def intruder(event, ctx):
    try:
        ctx.put_record("telemetry", {}, "k")
    except squall.AccessDenied as exc:
        return exc.details
    return None
"""


def _results(records: list[Any]) -> list[Any]:
    return [msgspec.json.decode(r.result) for r in records if r.result is not None]


async def _processed(p: Any, function: str) -> list[Any]:
    runs = await p.list_invocations(function=function, limit=1000)
    return sorted((r for r in runs if r.status == "succeeded"), key=lambda r: r.start or 0)


async def test_each_shard_is_consumed_in_sequence_order_and_shards_in_parallel(
    platform: Any, eventually: Any
) -> None:
    p = await platform(APP)
    keys = [f"device-{i}" for i in range(8)]
    counts = dict.fromkeys(keys, 0)

    async def produce(key: str) -> None:
        for _ in range(25):
            n = counts[key]
            counts[key] += 1
            [put] = await p.streams.put("telemetry", [(msgspec.json.encode({"n": n}), key)])
            assert put.shard == shard_for(key, 4)

    await asyncio.gather(*(produce(key) for key in keys))

    async def all_done() -> list[Any] | None:
        runs = await _processed(p, "ingest")
        seen = sum(len(batch) for batch in _results(runs))
        return runs if seen >= 200 else None

    runs = await eventually(all_done, timeout=60)
    by_shard: dict[int, list[int]] = {}
    by_key: dict[str, list[int]] = {}
    spans: dict[int, list[tuple[float, float]]] = {}
    for run in runs:
        batch = msgspec.json.decode(run.result)
        shards = {shard for shard, _, _, _ in batch}
        assert len(shards) == 1  # a batch holds one shard's records
        (shard,) = shards
        spans.setdefault(shard, []).append((run.start or 0, run.end or 0))
        for _, seq, key, data in batch:
            by_shard.setdefault(shard, []).append(seq)
            by_key.setdefault(key, []).append(data["n"])
    for shard, seqs in by_shard.items():
        assert seqs == list(range(1, len(seqs) + 1)), shard
    for key, ns in by_key.items():
        assert ns == list(range(25)), key
    for shard_spans in spans.values():  # one batch in flight per shard
        for (_, end), (start, _) in itertools.pairwise(shard_spans):
            assert start >= end
    assert sorted(spans) == [0, 1, 2, 3]
    busy = [(shard, start, end) for shard, list_ in spans.items() for start, end in list_]
    overlapping = any(
        a[0] != b[0] and a[1] < b[2] and b[1] < a[2] for a in busy for b in busy
    )
    assert overlapping, "shards were not consumed in parallel"
    described = await p.streams.describe("telemetry")
    assert sum(s["records"] for s in described["shard_details"]) == 200
    assert all(c["behind"] == 0 for c in described["consumers"])
    assert len(described["consumers"]) == 4


async def test_functions_put_records_with_permission_only(platform: Any) -> None:
    p = await platform(APP)
    record = await p.invoke("producer", b'{"key": "k-1"}')
    assert record.error is None
    puts = msgspec.json.decode(record.result or b"")
    shard = shard_for("k-1", 4)
    assert [put["shard"] for put in puts] == [shard] * 3
    assert [put["sequence"] for put in puts] == [None] * 3  # numbered when it commits
    denied = await p.invoke("intruder", b"{}")
    assert msgspec.json.decode(denied.result or b"") == {
        "function": "intruder",
        "action": "put",
        "resource": "telemetry",
    }
    read = await p.streams.read("telemetry", shard, 1, 10)
    got = [(r.sequence, msgspec.json.decode(r.data)) for r in read]
    assert got == [(2, {"n": 1}), (3, {"n": 2})]


async def test_bad_puts_are_refused_naming_the_field_and_change_nothing(platform: Any) -> None:
    p = await platform(APP)
    with pytest.raises(NotFound) as missing:
        await p.streams.put("nope", [(b"1", "k")])
    assert missing.value.field == "stream"
    with pytest.raises(InvalidInput) as empty:
        await p.streams.put("telemetry", [(b"1", "")])
    assert empty.value.field == "partition_key"
    with pytest.raises(InvalidInput) as long_key:
        await p.streams.put("telemetry", [(b"1", "k"), (b"1", "x" * 257)])
    assert long_key.value.field == "records[1].partition_key"
    big = b'"' + b"x" * MAX_RECORD_BYTES + b'"'
    with pytest.raises(PayloadTooLarge) as too_big:
        await p.streams.put("telemetry", [(big, "k")])
    # On the cluster the limit is the NATS server's message size, less the envelope.
    assert p.streams.max_record_bytes <= MAX_RECORD_BYTES
    limit = p.streams.max_record_bytes
    assert too_big.value.details == {"size": len(big) + 1, "limit": limit}
    with pytest.raises(NotFound) as shard:
        await p.streams.read("telemetry", 4, 0, 10)
    assert shard.value.field == "shard"
    described = await p.streams.describe("telemetry")
    assert all(s["records"] == 0 and s["head"] == 0 for s in described["shard_details"])


RESUME_APP = """
import squall

app = squall.App("resume")
app.stream_resource("orders", shards=2)


@app.stream("orders", batch_size=5)
def consume(event, ctx):
    return [r["data"]["n"] for r in event["records"]]
"""


async def test_a_restart_resumes_after_the_last_checkpoint(
    platform: Any, eventually: Any, tmp_path: Any
) -> None:
    p = await platform(RESUME_APP)
    await p.streams.put("orders", [(msgspec.json.encode({"n": n}), f"k{n % 3}") for n in range(10)])

    async def consumed() -> list[int] | None:
        got = sorted(n for batch in _results(await _processed(p, "consume")) for n in batch)
        return got if len(got) >= 10 else None

    assert await eventually(consumed, timeout=30) == list(range(10))
    await p.stop()
    p = await platform(RESUME_APP)  # same data dir: the store and the checkpoints are kept
    await p.streams.put(
        "orders", [(msgspec.json.encode({"n": n}), f"k{n % 3}") for n in range(10, 15)]
    )

    async def all_consumed() -> list[int] | None:
        got = sorted(n for batch in _results(await _processed(p, "consume")) for n in batch)
        return got if len(got) >= 15 else None

    # Every record once: nothing before the checkpoint is delivered again.
    assert await eventually(all_consumed, timeout=30) == list(range(15))
    described = await p.streams.describe("orders")
    assert [c["behind"] for c in described["consumers"]] == [0, 0]
    heads = [s["head"] for s in described["shard_details"]]
    assert sum(heads) == 15


LATEST_APP = """
import squall

app = squall.App("latest")
app.stream_resource("s", shards=1)


@app.stream("s")
def tail(event, ctx):
    return [r["data"] for r in event["records"]]
"""


async def test_latest_starts_after_what_was_there_when_the_trigger_began(
    platform: Any, eventually: Any, make_app: Any, tmp_path: Any
) -> None:
    only_stream = make_app(tmp_path, LATEST_APP.split("@app.stream")[0], name="before.py")
    p = await platform(only_stream)
    await p.streams.put("s", [(b'"old"', "k")])
    await p.stop()
    p = await platform(LATEST_APP)
    await p.streams.put("s", [(b'"new"', "k")])

    async def got() -> list[Any] | None:
        results = _results(await _processed(p, "tail"))
        return results or None

    assert await eventually(got, timeout=20) == [["new"]]


BISECT_APP = """
import squall

app = squall.App("bisect")
app.stream_resource("events", shards=1)


@app.stream("events", batch_size=16, batch_window_s=1, starting_position="trim_horizon",
            max_retries=1, bisect_on_error=True, on_failure="dead-end")
def picky(event, ctx):
    values = [r["data"] for r in event["records"]]
    if "poison" in values:
        raise ValueError("poison in the batch")
    return values


@app.function()
def dead_end(event, ctx):
    return event
"""


async def test_retry_then_bisect_isolates_the_bad_record_for_on_failure(
    platform: Any, eventually: Any
) -> None:
    p = await platform(BISECT_APP)
    values = [f"v{i}" for i in range(16)]
    values[11] = "poison"
    await p.streams.put("events", [(msgspec.json.encode(v), "k") for v in values])

    async def failed() -> Any:
        runs = await p.list_invocations(function="dead-end")
        done = [r for r in runs if r.status == "succeeded"]
        return done or None

    [report] = await eventually(failed, timeout=30)
    envelope = msgspec.json.decode(report.result or b"")
    info = envelope["streamBatchInfo"]
    assert envelope["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert envelope["requestContext"]["functionName"] == "picky"
    assert envelope["requestContext"]["approximateInvokeCount"] == 2  # first try + 1 retry
    assert envelope["error"]["type"] == "FunctionError"
    assert "poison in the batch" in envelope["error"]["message"]
    assert (info["stream"], info["shard"]) == ("events", 0)
    assert (info["startSequence"], info["endSequence"], info["batchSize"]) == (12, 12, 1)

    async def caught_up() -> bool:
        described = await p.streams.describe("events")
        return described["consumers"][0]["checkpoint"] == 16

    await eventually(caught_up, timeout=30)
    runs = await _processed(p, "picky")
    processed = sorted(v for batch in _results(runs) for v in batch)
    assert processed == sorted(v for v in values if v != "poison")
    failures = [r for r in await p.list_invocations(function="picky") if r.status == "failed"]
    # 16 (2 tries), the bad half of 8, of 4, of 2 (2 tries each), then the record alone (2).
    assert len(failures) == 10


AGE_APP = """
import squall

app = squall.App("age")
app.stream_resource("events", shards=1)


@app.stream("events", starting_position="trim_horizon", max_record_age_s=1,
            on_failure="report")
def always_fails(event, ctx):
    raise RuntimeError("down")


@app.function()
def report(event, ctx):
    return event
"""


async def test_records_older_than_max_record_age_go_to_on_failure(
    platform: Any, eventually: Any
) -> None:
    p = await platform(AGE_APP, retry_base_s=0.2)
    started = time.time()
    await p.streams.put("events", [(b"1", "a"), (b"2", "b")])

    async def reported() -> Any:
        done = [r for r in await p.list_invocations(function="report") if r.status == "succeeded"]
        return done or None

    [report] = await eventually(reported, timeout=30)
    assert time.time() - started >= 1.0  # not before the records were a second old
    envelope = msgspec.json.decode(report.result or b"")
    assert envelope["requestContext"]["condition"] == "RecordAgeExceeded"
    assert envelope["error"]["type"] == "FunctionError"
    assert envelope["streamBatchInfo"]["startSequence"] == 1
    assert envelope["streamBatchInfo"]["endSequence"] == 2
    described = await p.streams.describe("events")
    assert described["consumers"][0]["checkpoint"] == 2
    assert described["consumers"][0]["behind"] == 0


@pytest.mark.skipif(
    os.environ.get("SQUALL_TEST_BACKEND") == "cluster",
    reason="on the cluster retention is JetStream's max_age, in real time (trim cannot be"
    " run ahead): test_brokered_streams.py waits for a short max_age instead",
)
async def test_retention_trims_old_records_and_lag_counts_what_is_left(platform: Any) -> None:
    p = await platform(APP.replace('starting_position="trim_horizon"', 'starting_position="latest"')
                       .replace("time.sleep(0.05)", "raise RuntimeError('stalled')"))
    await p.streams.put("telemetry", [(b"1", "k")])
    shard = shard_for("k", 4)
    await p.streams.trim(now=time.time() + 3601)
    assert await p.streams.read("telemetry", shard, 0, 10) == []
    [put] = await p.streams.put("telemetry", [(b"2", "k")])
    assert put.sequence == 2
    described = await p.streams.describe("telemetry")
    detail = described["shard_details"][shard]
    assert (detail["records"], detail["first_sequence"], detail["last_sequence"]) == (1, 2, 2)
    [lag] = [c for c in described["consumers"] if c["shard"] == shard]
    assert (lag["checkpoint"], lag["behind"]) == (0, 1)  # the trimmed record is lost to it
    assert 0 <= lag["oldest_unprocessed_age_s"] < 60


async def test_at_timestamp_starts_at_the_first_record_that_arrived_then(
    platform: Any, eventually: Any, make_app: Any, tmp_path: Any
) -> None:
    only_stream = make_app(tmp_path, LATEST_APP.split("@app.stream")[0], name="before.py")
    p = await platform(only_stream)
    await p.streams.put("s", [(b'"before"', "k")])
    await asyncio.sleep(0.05)
    since = time.time()
    await p.streams.put("s", [(b'"at"', "k")])
    await p.streams.put("s", [(b'"after"', "k")])
    await p.stop()
    source = LATEST_APP.replace(
        '@app.stream("s")',
        f'@app.stream("s", starting_position="at_timestamp", starting_timestamp={since!r})',
    )
    p = await platform(source)

    async def got() -> list[Any] | None:
        values = [v for batch in _results(await _processed(p, "tail")) for v in batch]
        return values if len(values) >= 2 else None

    assert await eventually(got, timeout=20) == ["at", "after"]


WINDOW_APP = """
import squall

app = squall.App("window")
app.stream_resource("s", shards=1)


@app.stream("s", batch_size=100, batch_window_s=1.0)
def gather(event, ctx):
    return [r["data"] for r in event["records"]]
"""


async def test_the_batch_window_gathers_records_put_apart_into_one_call(
    platform: Any, eventually: Any
) -> None:
    p = await platform(WINDOW_APP)
    for n in range(5):
        await p.streams.put("s", [(msgspec.json.encode(n), "k")])
        await asyncio.sleep(0.05)

    async def got() -> list[Any] | None:
        return _results(await _processed(p, "gather")) or None

    assert await eventually(got, timeout=20) == [[0, 1, 2, 3, 4]]


async def test_streams_made_through_the_api_persist_until_deleted(platform: Any) -> None:
    p = await platform(RESUME_APP)
    made = await p.streams.create("made", shards=3, retention_s=600)
    assert (made.shards, made.retention_s) == (3, 600)
    [put] = await p.streams.put("made", [(b'"x"', "k")])
    with pytest.raises(Conflict) as taken:
        await p.streams.create("orders")
    assert taken.value.field == "name"
    with pytest.raises(InvalidInput) as bad:
        await p.streams.create("other", shards=0)
    assert bad.value.field == "shards"
    with pytest.raises(Conflict):
        await p.streams.delete("orders")  # the app's own
    await p.stop()

    p = await platform(RESUME_APP)
    described = await p.streams.describe("made")
    assert (described["declared_by"], described["shards"]) == ("api", 3)
    assert described["shard_details"][put.shard]["last_sequence"] == 1
    [again] = await p.streams.put("made", [(b'"y"', "k")])
    assert again.sequence == 2
    await p.streams.delete("made")
    with pytest.raises(NotFound):
        await p.streams.describe("made")
    recreated = await p.streams.create("made", shards=1)
    assert recreated.shards == 1
    [fresh] = await p.streams.put("made", [(b'"z"', "k")])
    assert fresh.sequence == 1  # nothing of the deleted stream is left
    assert [r.sequence for r in await p.streams.read("made", 0, 0, 10)] == [1]


NARROW_APP = """
import time
import squall

app = squall.App("narrow")
app.stream_resource("s", shards=3)


@app.stream("s", batch_size=5, starting_position="trim_horizon", max_retries=0,
            concurrency=1)
def single(event, ctx):
    time.sleep(0.15)  # longer than the sync wait: the other shards' calls are throttled
    return [r["data"] for r in event["records"]]
"""


async def test_shards_share_a_function_of_concurrency_one_without_failures(
    platform: Any, eventually: Any
) -> None:
    p = await platform(NARROW_APP, sync_wait_s=0.1)
    await p.streams.put("s", [(msgspec.json.encode(n), f"k{n}") for n in range(60)])

    async def done() -> list[Any] | None:
        runs = await _processed(p, "single")
        values = sorted(v for batch in _results(runs) for v in batch)
        return runs if len(values) >= 60 else None

    runs = await eventually(done, timeout=30)
    assert sorted(v for batch in _results(runs) for v in batch) == list(range(60))
    for before, after in itertools.pairwise(runs):  # one sandbox: never two at once
        assert (after.start or 0) >= (before.end or 0)
    assert not [r for r in await p.list_invocations(function="single") if r.status == "failed"]


PARTIAL_APP = """
import os
import squall

app = squall.App("partial")
app.stream_resource("s", shards=1)


@app.stream("s", batch_size=10, batch_window_s=0.5, starting_position="trim_horizon",
            report_batch_item_failures=True)
def partial(event, ctx):
    marker = {marker!r}
    for record in event["records"]:
        if record["data"] == "flaky" and not os.path.exists(marker):
            open(marker, "w").close()
            return {{"batchItemFailures": [{{"itemIdentifier": str(record["sequence"])}}]}}
    return [r["data"] for r in event["records"]]
"""


async def test_a_partial_batch_response_retries_from_the_first_failed_record(
    platform: Any, eventually: Any, tmp_path: Any
) -> None:
    p = await platform(PARTIAL_APP.format(marker=str(tmp_path / "reported")))
    await p.streams.put("s", [(msgspec.json.encode(v), "k") for v in ("a", "b", "flaky", "d")])

    async def done() -> list[Any] | None:
        runs = await _processed(p, "partial")
        return runs if len(runs) >= 2 else None

    first, second = await eventually(done, timeout=20)
    assert msgspec.json.decode(first.result or b"") == {
        "batchItemFailures": [{"itemIdentifier": "3"}]
    }
    assert msgspec.json.decode(second.result or b"") == ["flaky", "d"]  # a and b were done
    described = await p.streams.describe("s")
    assert described["consumers"][0]["checkpoint"] == 4
