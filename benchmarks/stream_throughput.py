"""Stream records appended and consumed per second, and the consumers' lag while they run.

Squall, in process: ``--producers`` tasks put ``-n`` records in total onto a stream of
``--shards`` shards, ``--batch`` records a put (each put one durable unit of work) and
partition keys spread over 1,000 devices; a stream trigger with ``batch_size=--consumer-batch``
and a no-op handler consumes them from ``trim_horizon`` while they arrive. Reported: records/s
appended (first put to last acknowledged put), records/s consumed (first put to every shard's
checkpoint at its head), the largest lag seen (records behind, summed over shards, and the age of
the oldest unprocessed record, sampled every 100 ms), and the same puts one record at a time.

Floor, in the same run: the same rows inserted straight into a SQLite table in WAL mode with
``synchronous=NORMAL``, one transaction per batch, from one thread: what the disk and SQLite
allow with no platform around them. ``stream_append_ratio_vs_floor`` is Squall over the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import emit, emit_machine, log, ratio, squall_available, write_file

APP = """\
import squall

app = squall.App("bench-streams")
app.stream_resource("bench", shards={shards}, retention_s=86400)


@app.stream("bench", batch_size={consumer_batch}, starting_position="trim_horizon")
def sink(event, ctx):
    return None
"""

DATA = json.dumps({"device": "d-000", "temperature": 21.5, "humidity": 40}).encode()


def _records(n: int, offset: int = 0) -> list[tuple[bytes, str]]:
    return [(DATA, f"device-{(offset + i) % 1000}") for i in range(n)]


async def _lag(platform: Any) -> tuple[int, float]:
    described = await platform.streams.describe("bench")
    behind = sum(c["behind"] for c in described["consumers"])
    ages = [c["oldest_unprocessed_age_s"] or 0.0 for c in described["consumers"]]
    return behind, max(ages, default=0.0)


async def run_squall(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    from squall.engine.platform import Platform, PlatformConfig

    app = write_file(
        tmp / "stream_app.py",
        APP.format(shards=args.shards, consumer_batch=args.consumer_batch),
    )
    platform = await Platform.start(PlatformConfig(app=str(app), data_dir=tmp / "data"))
    out: dict[str, float] = {}
    try:
        log("squall: warm-up")
        await platform.streams.put("bench", _records(args.batch))
        await _caught_up(platform, 60)

        per_producer = args.n // args.producers
        total = per_producer * args.producers
        max_behind, max_age = 0, 0.0
        producing = True

        async def produce(index: int) -> None:
            for start in range(0, per_producer, args.batch):
                size = min(args.batch, per_producer - start)
                await platform.streams.put("bench", _records(size, index * per_producer + start))

        async def sample() -> None:
            nonlocal max_behind, max_age
            while producing or (await _lag(platform))[0]:
                behind, age = await _lag(platform)
                max_behind, max_age = max(max_behind, behind), max(max_age, age)
                await asyncio.sleep(0.1)

        log(f"squall: {total} records, {args.producers} producers, puts of {args.batch}")
        sampler = asyncio.create_task(sample())
        t0 = time.perf_counter()
        await asyncio.gather(*(produce(i) for i in range(args.producers)))
        appended_s = time.perf_counter() - t0
        producing = False
        await _caught_up(platform, 600)
        consumed_s = time.perf_counter() - t0
        await sampler
        out["appended"] = total / appended_s
        out["consumed"] = total / consumed_s
        emit("stream_append_throughput", out["appended"], "records/s", n=total,
             batch=args.batch, producers=args.producers, shards=args.shards)
        emit("stream_consume_throughput", out["consumed"], "records/s", n=total,
             consumer_batch=args.consumer_batch, shards=args.shards,
             note="first put to every checkpoint at its shard's head")
        emit("stream_consumer_lag_max", max_behind, "records", shards=args.shards)
        emit("stream_consumer_oldest_unprocessed_max", max_age * 1000, "ms")

        single = max(200, total // 20)
        log(f"squall: {single} puts of one record, {args.producers} producers")
        t0 = time.perf_counter()

        async def one_by_one(index: int) -> None:
            for i in range(single // args.producers):
                await platform.streams.put("bench", _records(1, index + i))

        await asyncio.gather(*(one_by_one(i) for i in range(args.producers)))
        out["single"] = single // args.producers * args.producers / (time.perf_counter() - t0)
        emit("stream_append_throughput", out["single"], "records/s", batch=1,
             producers=args.producers, shards=args.shards)
        await _caught_up(platform, 600)
    finally:
        await platform.stop()
    return out


async def _caught_up(platform: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (await _lag(platform))[0]:
        if time.monotonic() > deadline:
            raise TimeoutError("the consumers did not catch up")
        await asyncio.sleep(0.01)


def run_floor(args: argparse.Namespace, tmp: Path) -> float:
    conn = sqlite3.connect(tmp / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE records (stream TEXT, shard INTEGER, seq INTEGER, partition_key TEXT,"
        " data BLOB, arrival_time REAL, PRIMARY KEY (stream, shard, seq))"
    )
    heads = [0] * args.shards
    t0 = time.perf_counter()
    for start in range(0, args.n, args.batch):
        rows = []
        for data, key in _records(min(args.batch, args.n - start), start):
            shard = hash(key) % args.shards
            heads[shard] += 1
            rows.append(("bench", shard, heads[shard], key, data, time.time()))
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    rate = args.n / (time.perf_counter() - t0)
    conn.close()
    emit("stream_append_floor_sqlite", rate, "records/s", n=args.n, batch=args.batch)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="about 10 s instead of a minute")
    parser.add_argument("-n", type=int, default=None, help="records (100000; quick 10000)")
    parser.add_argument("--batch", type=int, default=100, help="records per put")
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--consumer-batch", type=int, default=100)
    args = parser.parse_args()
    if args.n is None:
        args.n = 10_000 if args.quick else 100_000
    emit_machine("stream_throughput")
    with tempfile.TemporaryDirectory(prefix="squall-bench-streams-") as tmp_name:
        tmp = Path(tmp_name)
        floor = run_floor(args, tmp)
        if not squall_available():
            log("squall.engine.platform does not import; skipping Squall")
            return
        squall = asyncio.run(run_squall(args, tmp))
    emit("stream_append_ratio_vs_floor", ratio(squall["appended"], floor), "x",
         note="Squall's durable puts over bare SQLite inserts of the same batches")


if __name__ == "__main__":
    main()
