"""Table puts and gets per second from inside functions, and change-to-trigger latency.

Squall, in process: ``--workers`` concurrent invocations of a function that does ``-n`` /
workers ``ctx.tables["bench"].put`` calls (distinct keys, a 100-byte item), then the same with
``get``. Each call crosses the sandbox pipe, is checked against the function's permissions and
answered by the platform; the puts an invocation makes are held and committed, durably, in
the unit of its success (group-committed with the other workers').
Then ``--changes`` puts, one at a time, each stamping the time into the item; an ``on_change``
trigger reports ``now - stamp`` for every change it gets: its p50 and p99.

Floor, in the same run: the same rows written straight into a SQLite table in WAL mode with
``synchronous=NORMAL``, one transaction a row, and read back by key, from one thread.
``table_put_ratio_vs_floor`` and ``table_get_ratio_vs_floor`` are the floor's rate over
Squall's (bigger: Squall is slower; 1 is the floor).
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

from _common import emit, emit_machine, log, percentile, ratio, squall_available, write_file

APP = """\
import time
import squall

app = squall.App("bench-tables")
app.table("bench", partition_key="id")
app.table("feed", partition_key="id", stream="new")


@app.function(permissions=["table:bench"], concurrency=64, timeout_s=300)
def writer(event, ctx):
    table = ctx.tables["bench"]
    for i in range(event["start"], event["start"] + event["count"]):
        table.put({"id": f"k{i}", "payload": event["payload"]})
    return event["count"]


@app.function(permissions=["table.read:bench"], concurrency=64, timeout_s=300)
def reader(event, ctx):
    table = ctx.tables["bench"]
    for i in range(event["start"], event["start"] + event["count"]):
        table.get({"id": f"k{i}"})
    return event["count"]


@app.function(permissions=["table:feed"])
def stamp(event, ctx):
    ctx.tables["feed"].put({"id": event["id"], "t": time.time()})


@app.on_change("feed", batch_size=1)
def watch(event, ctx):
    return [time.time() - r["new"]["t"] for r in event["records"]]
"""

PAYLOAD = "x" * 100


async def run_squall(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    from squall.engine.platform import Platform, PlatformConfig

    app = write_file(tmp / "tables_app.py", APP)
    platform = await Platform.start(
        PlatformConfig(app=str(app), data_dir=tmp / "data", sync_wait_s=30.0)
    )
    out: dict[str, float] = {}
    try:
        per = args.n // args.workers
        total = per * args.workers

        async def run(function: str, offset: int) -> float:
            t0 = time.perf_counter()
            records = await asyncio.gather(*(
                platform.invoke(function, json.dumps(
                    {"start": offset + w * per, "count": per, "payload": PAYLOAD}
                ).encode())
                for w in range(args.workers)
            ))
            elapsed = time.perf_counter() - t0
            for record in records:
                if record.error is not None:
                    raise RuntimeError(f"{function} failed: {record.error}")
            return elapsed

        log("squall: warm-up")
        await run("writer", 10 * total)
        await run("reader", 10 * total)
        log(f"squall: {total} puts from {args.workers} invocations")
        out["put"] = total / await run("writer", 0)
        emit("table_put_throughput", out["put"], "puts/s", n=total, workers=args.workers,
             note="ctx.tables put from inside functions, committed with each invocation")
        log(f"squall: {total} gets from {args.workers} invocations")
        out["get"] = total / await run("reader", 0)
        emit("table_get_throughput", out["get"], "gets/s", n=total, workers=args.workers)

        log(f"squall: {args.changes} changes, one at a time")
        for i in range(args.changes):
            await platform.invoke("stamp", json.dumps({"id": f"c{i}"}).encode())
            await asyncio.sleep(0.005)
        await platform.wait_idle(60)
        runs = await platform.list_invocations(function="watch", limit=10 * args.changes)
        latencies = [
            lag * 1000
            for r in runs if r.result is not None
            for lag in json.loads(r.result)
        ]
        emit("table_change_to_trigger_p50", percentile(latencies, 50), "ms",
             changes=len(latencies))
        emit("table_change_to_trigger_p99", percentile(latencies, 99), "ms",
             changes=len(latencies))
    finally:
        await platform.stop()
    return out


def run_floor(args: argparse.Namespace, tmp: Path) -> tuple[float, float]:
    conn = sqlite3.connect(tmp / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE items (id TEXT PRIMARY KEY, version INTEGER, item BLOB)")
    item = json.dumps({"payload": PAYLOAD}).encode()
    t0 = time.perf_counter()
    for i in range(args.n):
        conn.execute("BEGIN")
        conn.execute("INSERT OR REPLACE INTO items VALUES (?, 1, ?)", (f"k{i}", item))
        conn.execute("COMMIT")
    puts = args.n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(args.n):
        conn.execute("SELECT version, item FROM items WHERE id = ?", (f"k{i}",)).fetchone()
    gets = args.n / (time.perf_counter() - t0)
    conn.close()
    emit("table_put_floor_sqlite", puts, "puts/s", n=args.n, note="one transaction a row")
    emit("table_get_floor_sqlite", gets, "gets/s", n=args.n)
    return puts, gets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a few seconds")
    parser.add_argument("-n", type=int, default=None, help="puts and gets (20000; quick 4000)")
    parser.add_argument("--workers", type=int, default=8, help="concurrent invocations")
    parser.add_argument("--changes", type=int, default=None, help="changes timed (300; quick 50)")
    args = parser.parse_args()
    if args.n is None:
        args.n = 4_000 if args.quick else 20_000
    if args.changes is None:
        args.changes = 50 if args.quick else 300
    emit_machine("tables")
    with tempfile.TemporaryDirectory(prefix="squall-bench-tables-") as tmp_name:
        tmp = Path(tmp_name)
        floor_put, floor_get = run_floor(args, tmp)
        if not squall_available():
            log("squall.engine.platform does not import; skipping Squall")
            return
        squall: dict[str, Any] = asyncio.run(run_squall(args, tmp))
    emit("table_put_ratio_vs_floor", ratio(floor_put, squall["put"]), "x",
         note="bare SQLite puts/s over Squall's from inside functions (1 is the floor)")
    emit("table_get_ratio_vs_floor", ratio(floor_get, squall["get"]), "x",
         note="bare SQLite gets/s over Squall's from inside functions (1 is the floor)")


if __name__ == "__main__":
    main()
