"""Event store: appends per second (single and batched), stream read throughput and
projection catch-up, beside the ``eventsourcing`` library on SQLite doing the same work.

Squall, in process (``Platform.events_store``, the path the admin API takes; each append
is one durable unit, group-committed): ``-n`` appends of one event, one at a time and then
from ``--writers`` concurrent writers on their own streams, each expecting its stream's
version; ``-n`` events in appends of ``--batch`` events; a stream of ``--stream-len``
events read ``--reads`` times, decoded; and the catch-up of a projection rebuilt from
position 0 over every event appended so far, whose function reads and writes one read-model
item per event through ``ctx.tables`` (the batch's writes and checkpoint in one unit), timed
from the start of a platform serving that app on the data dir the appends wrote (the appends
themselves run without it, as eventsourcing's do).

eventsourcing (``eventsourcing`` 9, ``eventsourcing.sqlite``, WAL mode and, like Squall,
``synchronous=NORMAL``), in the same run: an aggregate saved after each event (one
transaction each), then with ``--batch`` events a save; ``app.events.get`` of a stream of
``--stream-len`` events; and the library's ``Projection`` API over its notification log: each
event's read-model upsert and tracking record in one transaction of a ``SQLiteTrackingRecorder``
(its subscriptions are not available on SQLite, so the log is paged with
``select_notifications``, which is what a subscription does).

Ratios are Squall's rate over eventsourcing's (above 1: Squall is faster).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import emit, emit_machine, log, ratio, squall_available, write_file

WRITER_APP = """\
import squall

app = squall.App("bench-es")
"""

APP = """\
import squall

app = squall.App("bench-es")

@app.projection("per_customer", from_streams=["order-"], partition_key="customer",
                batch_size=100, concurrency=1, timeout_s=300)
def per_customer(event, table, ctx):
    customer = event["data"]["customer"]
    row = table.get({"customer": customer}) or {"customer": customer, "n": 0}
    row.pop("_version", None)
    row["n"] += 1
    table.put(row)
"""

CUSTOMERS = 50


def _event(i: int) -> dict[str, Any]:
    return {"type": "OrderPlaced", "data": {"customer": f"c{i % CUSTOMERS}", "total": i}}


async def run_squall(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    from squall.engine.platform import Platform, PlatformConfig

    writer_app = write_file(tmp / "es_writer_app.py", WRITER_APP)
    platform = await Platform.start(
        PlatformConfig(app=str(writer_app), data_dir=tmp / "data", sync_wait_s=30.0)
    )
    es = platform.events_store
    out: dict[str, float] = {}
    try:
        log(f"squall: {args.n} single appends, one at a time")
        t0 = time.perf_counter()
        for i in range(args.n):
            await es.append(f"order-s{i % 100}", [_event(i)], "any")
        out["single"] = args.n / (time.perf_counter() - t0)
        emit("es_append_single", out["single"], "appends/s", n=args.n, writers=1)

        log(f"squall: {args.n} single appends from {args.writers} writers")

        async def writer(w: int, count: int) -> None:
            for version in range(count):
                await es.append(f"order-w{w}", [_event(version)], version)

        per = args.n // args.writers
        t0 = time.perf_counter()
        await asyncio.gather(*(writer(w, per) for w in range(args.writers)))
        out["concurrent"] = per * args.writers / (time.perf_counter() - t0)
        emit("es_append_single_concurrent", out["concurrent"], "appends/s",
             n=per * args.writers, writers=args.writers,
             note="each writer on its own stream, expecting its version")

        log(f"squall: {args.n} events in appends of {args.batch}")
        t0 = time.perf_counter()
        for b in range(args.n // args.batch):
            await es.append(f"order-b{b}", [_event(i) for i in range(args.batch)],
                            "no_stream")
        out["batched"] = args.n // args.batch * args.batch / (time.perf_counter() - t0)
        emit("es_append_batched", out["batched"], "events/s", n=args.n, batch=args.batch)

        log(f"squall: a stream of {args.stream_len} events read {args.reads} times")
        for start in range(0, args.stream_len, args.batch):
            await es.append("order-long", [_event(i) for i in range(args.batch)], start)
        t0 = time.perf_counter()
        for _ in range(args.reads):
            start, events = 1, 0
            while events < args.stream_len:
                page = await es.read("order-long", start=start, limit=1000)
                events += len(page["events"])
                start = page["events"][-1]["version"] + 1
        out["read"] = args.reads * args.stream_len / (time.perf_counter() - t0)
        emit("es_read_throughput", out["read"], "events/s", stream_len=args.stream_len,
             reads=args.reads)

        head = (await es.read_all(limit=1))["head"]
    finally:
        await platform.stop()

    # The same data dir served by the app with the projection: it starts from position 0.
    log(f"squall: the projection catches up over {head} events")
    t0 = time.perf_counter()
    platform = await Platform.start(
        PlatformConfig(app=str(write_file(tmp / "es_app.py", APP)), data_dir=tmp / "data",
                       sync_wait_s=30.0)
    )
    try:
        while (await platform.projections.status("per_customer"))["lag"] > 0:
            await asyncio.sleep(0.005)
        out["catchup"] = head / (time.perf_counter() - t0)
        emit("es_projection_catchup", out["catchup"], "events/s", events=head,
             note="from a start: ctx.tables get + put per event, 100 per invocation")
    finally:
        await platform.stop()
    return out


def run_eventsourcing(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event
    from eventsourcing.persistence import Tracking
    from eventsourcing.projection import Projection
    from eventsourcing.sqlite import SQLiteConnectionPool, SQLiteDatastore, SQLiteTrackingRecorder

    create = SQLiteConnectionPool._create_connection

    def with_normal_sync(self: Any) -> Any:  # the durability Squall's store has
        connection = create(self)
        connection._sqlite_conn.execute("PRAGMA synchronous=NORMAL")
        return connection

    SQLiteConnectionPool._create_connection = with_normal_sync

    class Order(Aggregate):
        def __init__(self, customer: str) -> None:
            self.customer = customer
            self.count = 0

        @event("Placed")
        def place(self, customer: str, total: int) -> None:
            self.count += 1

    class Orders(Application):
        is_snapshotting_enabled = False

    db = tmp / "eventsourcing.db"
    app = Orders(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(db)})
    out: dict[str, float] = {}

    log(f"eventsourcing: {args.n} single appends (a save per event)")
    orders = [Order("c") for _ in range(100)]
    app.save(*orders)
    t0 = time.perf_counter()
    for i in range(args.n):
        order = orders[i % 100]
        order.place(f"c{i % CUSTOMERS}", i)
        app.save(order)
    out["single"] = args.n / (time.perf_counter() - t0)
    emit("eventsourcing_append_single", out["single"], "appends/s", n=args.n)

    log(f"eventsourcing: {args.n} events in saves of {args.batch}")
    t0 = time.perf_counter()
    for _ in range(args.n // args.batch):
        order = Order("c")
        for i in range(args.batch - 1):  # with its created event: a batch of events
            order.place(f"c{i % CUSTOMERS}", i)
        app.save(order)
    out["batched"] = args.n // args.batch * args.batch / (time.perf_counter() - t0)
    emit("eventsourcing_append_batched", out["batched"], "events/s", n=args.n,
         batch=args.batch)

    log(f"eventsourcing: a stream of {args.stream_len} events read {args.reads} times")
    long = Order("c")
    for i in range(args.stream_len - 1):
        long.place(f"c{i % CUSTOMERS}", i)
    app.save(long)
    t0 = time.perf_counter()
    for _ in range(args.reads):
        assert len(list(app.events.get(long.id))) == args.stream_len
    out["read"] = args.reads * args.stream_len / (time.perf_counter() - t0)
    emit("eventsourcing_read_throughput", out["read"], "events/s",
         stream_len=args.stream_len, reads=args.reads)

    class CountsView(SQLiteTrackingRecorder):
        def construct_create_table_statements(self) -> list[str]:
            return [*super().construct_create_table_statements(),
                    "CREATE TABLE IF NOT EXISTS per_customer (customer TEXT PRIMARY KEY,"
                    " n INTEGER NOT NULL)"]

        def count(self, customer: str, tracking: Tracking) -> None:
            with self.datastore.transaction(commit=True) as c:
                c.execute("INSERT INTO per_customer VALUES (?, 1) ON CONFLICT (customer)"
                          " DO UPDATE SET n = n + 1", (customer,))
                self._insert_tracking(c, tracking)

    class PerCustomer(Projection[CountsView]):
        def process_event(self, domain_event: Any, tracking: Tracking) -> None:
            customer = getattr(domain_event, "customer", None)
            if customer is not None:
                self.view.count(customer, tracking)
            else:
                self.view.insert_tracking(tracking)

    view = CountsView(SQLiteDatastore(str(tmp / "view.db")))
    view.create_table()
    projection = PerCustomer(view)
    recorder = app.recorder
    head = recorder.max_notification_id() or 0
    log(f"eventsourcing: projecting {head} events from position 0")
    t0 = time.perf_counter()
    position = 0
    while position < head:
        page = recorder.select_notifications(position, 100, inclusive_of_start=False)
        for notification in page:
            domain_event = app.mapper.to_domain_event(notification)
            projection.process_event(domain_event, Tracking(app.name, notification.id))
            position = notification.id
    out["catchup"] = head / (time.perf_counter() - t0)
    emit("eventsourcing_projection_catchup", out["catchup"], "events/s", events=head,
         note="Projection.process_event: upsert and tracking, one transaction an event")
    app.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a few seconds")
    parser.add_argument("-n", type=int, default=None, help="appends (5000; quick 1000)")
    parser.add_argument("--writers", type=int, default=8, help="concurrent writers")
    parser.add_argument("--batch", type=int, default=100, help="events per batched append")
    parser.add_argument("--stream-len", type=int, default=1000, help="events of the read stream")
    parser.add_argument("--reads", type=int, default=None, help="reads of it (50; quick 10)")
    args = parser.parse_args()
    if args.n is None:
        args.n = 1_000 if args.quick else 5_000
    if args.reads is None:
        args.reads = 10 if args.quick else 50
    emit_machine("event_store")
    with tempfile.TemporaryDirectory(prefix="squall-bench-es-") as tmp_name:
        tmp = Path(tmp_name)
        if not squall_available():
            log("squall.engine.platform does not import; skipping Squall")
            return
        squall = asyncio.run(run_squall(args, tmp))
        try:
            peer = run_eventsourcing(args, tmp)
        except ImportError:
            log("eventsourcing is not installed (pip install -e '.[bench]'); no peer figures")
            return
    for metric, key in (
        ("es_append_single_ratio_vs_eventsourcing", "single"),
        ("es_append_batched_ratio_vs_eventsourcing", "batched"),
        ("es_read_ratio_vs_eventsourcing", "read"),
        ("es_projection_catchup_ratio_vs_eventsourcing", "catchup"),
    ):
        emit(metric, ratio(squall[key], peer[key]), "x",
             note="Squall's rate over eventsourcing's on SQLite (above 1: Squall is faster)")


if __name__ == "__main__":
    main()
