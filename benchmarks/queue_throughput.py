"""Queue throughput: send -> durable queue -> queue trigger -> no-op function, end to end.

Squall in this process: an app with four queues, standard and FIFO, each drained by a no-op
queue trigger with batch size 1 or 10 (``--concurrency`` sandboxes each). Per case,
``--senders`` concurrent tasks send the burst of ``-n`` messages, ``--send-batch`` per call
(``QueueBook.send`` or ``send_batch``, acknowledged once committed; concurrent sends share
group commits); FIFO messages
are spread over ``--groups`` message groups. ``send_rate`` is messages over the time until the
last send was acknowledged; ``throughput`` is messages over the time from the first send until
the queue is empty again (every message processed and deleted). ``backlog_throughput`` is
``n`` messages that all become visible at one moment (written straight to the store) over the
time until the queue is empty: processing alone, without the senders. Every invocation record
is then checked to have succeeded.

``--distributed`` runs Squall on PostgreSQL and NATS JetStream instead (every role in this
process: the queues' messages on JetStream, their dedup ids and the records in PostgreSQL).

Peers, in the same run: Celery and Dramatiq on the local Redis (``_peers.py``), one no-op task
per message; ratios compare them with the batch-1 standard queue.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import emit, emit_machine, log, ratio, squall_available, write_file
from _distributed import add_server_arguments, remove_run
from _peers import Result, add_peer_arguments, run_celery, run_dramatiq

CASES = (  # queue, fifo, batch size
    ("std-b1", False, 1),
    ("std-b10", False, 10),
    ("fifo-b1", True, 1),
    ("fifo-b10", True, 10),
)
GOALS = {"std-b1": "2x Dramatiq, 3x Celery", "std-b10": ">=20000", "fifo-b10": ">=20000"}


def app_source(concurrency: int) -> str:
    lines = ["import squall", "", 'app = squall.App("bench-queues")', ""]
    for queue, fifo, batch in CASES:
        function = queue.replace("-", "_")
        lines += [
            f"app.queue_resource({queue!r}, fifo={fifo}, visibility_timeout_s=120)",
            f"@app.queue({queue!r}, batch_size={batch}, concurrency={concurrency},"
            " keep_alive_s=3600, timeout_s=60)",
            f"def {function}(messages, ctx):",
            "    return None",
            "",
        ]
    return "\n".join(lines)


async def run_platform(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    from squall.engine.platform import Platform, PlatformConfig

    app_path = write_file(tmp / "app.py", app_source(args.concurrency))
    backend: dict[str, Any] = {"backend": "embedded"}
    config = PlatformConfig(app=str(app_path), data_dir=tmp / "data")
    if args.distributed:  # all roles in this process, on a fresh schema and prefix
        tag = secrets.token_hex(5)
        sep = "&" if "?" in args.postgres else "?"
        config.store = f"{args.postgres}{sep}schema=bench_{tag}"
        config.bus = f"{args.nats}?prefix=bench{tag}"
        backend = {"backend": "postgresql+nats", "schema": f"bench_{tag}", "prefix": f"bench{tag}"}
    platform = await Platform.start(config)
    book = platform.queues
    results: dict[str, float] = {}
    try:
        for queue, fifo, batch in CASES:
            await run_case(platform, queue, fifo, 200, args)  # warm the sandboxes
            send_s, total_s = await run_case(platform, queue, fifo, args.n, args)
            await check(platform, queue)
            throughput = args.n / total_s
            results[queue] = throughput
            extra: dict[str, Any] = {
                "queue": queue, "fifo": fifo, "batch_size": batch, "n": args.n,
                "senders": args.senders, "send_batch": args.send_batch,
                "concurrency": args.concurrency, **backend,
            }
            if fifo:
                extra["groups"] = args.groups
            if queue in GOALS:
                extra["goal"] = GOALS[queue]
            drained = args.n / await drain(platform, queue, fifo, args, args.n / send_s)
            results[f"{queue}-backlog"] = drained
            emit("squall_queue_send_rate", args.n / send_s, "messages/s", **extra)
            emit("squall_queue_throughput", throughput, "messages/s", **extra)
            emit("squall_queue_backlog_throughput", drained, "messages/s", **extra)
            log(
                f"{queue}: sent {args.n / send_s:.0f}/s, processed {throughput:.0f}/s end to end,"
                f" a backlog at {drained:.0f}/s"
            )
            stats = await book.stats(queue)
            assert stats.visible + stats.in_flight + stats.delayed == 0, stats
    finally:
        await platform.stop()
        if args.distributed:
            await remove_run(config.store or "", args.nats, backend["prefix"])
    return results


async def run_case(
    platform: Any, queue: str, fifo: bool, n: int, args: argparse.Namespace
) -> tuple[float, float]:
    """Send ``n`` messages; (seconds until the last ack, seconds until the queue is empty)."""
    book = platform.queues
    body = b'{"n": 1}'
    numbers = iter(range(n))

    async def sender() -> None:
        while chunk := list(itertools.islice(numbers, args.send_batch)):
            groups = [f"g{i % args.groups}" if fifo else None for i in chunk]
            if args.send_batch == 1:
                await book.send(queue, body, group_id=groups[0])
            else:
                messages = [book.message(queue, body, None, None, g, None) for g in groups]
                await book.send_batch(queue, messages)

    t0 = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(args.senders)))
    sent = time.perf_counter() - t0
    while True:
        stats = await platform._store.queue_stats(queue)
        if stats.visible + stats.in_flight + stats.delayed == 0:
            return sent, time.perf_counter() - t0
        await asyncio.sleep(0.05)  # counting scans the queue: not too often


async def drain(
    platform: Any, queue: str, fifo: bool, args: argparse.Namespace, send_rate: float
) -> float:
    """Seconds to process ``n`` messages that all become visible at the same moment, once
    every one is written (``send_rate``, the case's, says how long writing them may take)."""
    book, store = platform.queues, platform._store
    messages = [
        book.message(queue, b'{"n": 1}', None, 0, f"g{i % args.groups}" if fifo else None, None)
        for i in range(args.n)
    ]
    visible_at = time.time() + 1.0 + args.n / send_rate
    for m in messages:
        m.available_at = visible_at
    for i in range(0, len(messages), 500):
        await store.send_messages(messages[i : i + 500], 300)
    if time.time() > visible_at:
        raise RuntimeError(f"{queue}: the backlog became visible before it was all written")
    book.signals.notify(queue)  # the trigger now sleeps until they become visible
    await asyncio.sleep(max(0.0, visible_at - time.time()))
    t0 = time.perf_counter()
    while True:
        stats = await store.queue_stats(queue)
        if stats.visible + stats.in_flight + stats.delayed == 0:
            return time.perf_counter() - t0
        await asyncio.sleep(0.05)


async def check(platform: Any, queue: str) -> None:
    """Every invocation of the queue's function succeeded."""
    function = queue.replace("-", "_")
    records = await platform.list_invocations(function=function, limit=100_000)
    failed = [r for r in records if r.status != "succeeded"]
    assert not failed, failed[0].error


def report_peer(result: Result) -> None:
    extra: dict[str, Any] = {"n": result.n, **result.config}
    emit(f"{result.name}_task_per_message_throughput", result.throughput, "messages/s", **extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="about 20 s instead of 1-2 min")
    parser.add_argument("-n", type=int, default=None, help="messages per case (20000)")
    parser.add_argument("--peer-n", type=int, default=None, help="tasks per peer (5000)")
    parser.add_argument("--senders", type=int, default=32, help="concurrent send calls")
    parser.add_argument("--send-batch", type=int, default=1, help="messages per send (1-10)")
    parser.add_argument("--groups", type=int, default=64, help="FIFO message groups")
    parser.add_argument("--concurrency", type=int, default=8, help="sandboxes per trigger")
    parser.add_argument("--light-n", type=int, default=50, help="peers' light-phase tasks")
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="run Squall on PostgreSQL + NATS JetStream (all roles in this process)",
    )
    add_server_arguments(parser)  # for --distributed
    add_peer_arguments(parser)
    parser.add_argument(
        "--only", choices=["squall", "celery", "dramatiq"], action="append", help="run only these"
    )
    args = parser.parse_args()
    args.n = args.n or (3000 if args.quick else 20000)
    args.peer_n = args.peer_n or (1000 if args.quick else 5000)
    only = set(args.only or ["squall", "celery", "dramatiq"])

    emit_machine("queue_throughput")
    squall: dict[str, float] = {}
    peers: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="squall-bench-queues-") as tmp_name:
        tmp = Path(tmp_name)
        sys.path.insert(0, tmp_name)
        if "squall" in only and not squall_available():
            log("squall.engine.platform does not import; skipping Squall")
            only.discard("squall")
        if "squall" in only:
            squall = asyncio.run(run_platform(args, tmp))
        if "dramatiq" in only:
            peers["dramatiq"] = run_dramatiq(args, tmp, args.peer_n, args.light_n, 0.005)
            report_peer(peers["dramatiq"])
        if "celery" in only:
            peers["celery"] = run_celery(args, tmp, args.peer_n, args.light_n, 0.005)
            report_peer(peers["celery"])
    for peer, result in peers.items():
        for queue, throughput in squall.items():
            if queue.endswith("-backlog"):
                continue
            value = ratio(throughput, result.throughput)
            emit(f"queue_throughput_ratio_squall_vs_{peer}", value, "x", queue=queue)


if __name__ == "__main__":
    main()
