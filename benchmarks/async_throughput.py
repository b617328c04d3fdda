"""Durable async no-op invocations: end-to-end throughput and enqueue->start latency.

Squall: submit N ``invoke_async("noop")`` calls from this process (batches of ``--batch`` under
``asyncio.gather``), then ``wait_idle()``; throughput is N over the time from the first submit to
``wait_idle`` returning. Every record is then read back with ``get_invocation`` (outside the
timed window) to check it succeeded and to take the handler's start time
(``time.monotonic_ns()``, its return value) minus its submit time: that is the enqueue->start
latency *under the burst*. A second, light phase submits one invocation every ``--pace-ms`` and
measures enqueue->start when the queue is nearly empty.

Peers, in the same run, on the local Redis (db 15, flushed before each peer):

* Celery: one worker subprocess; the producer calls ``noop.delay(sent_ns)`` ``--celery-n``
  times (default min(N, 10000)); the task
  increments a Redis counter (and records its start time minus ``sent_ns``) and the producer
  polls the counter until it reaches N. No result backend (a result write per task would cost
  Celery throughput for nothing). ``task_acks_late=True`` so a message is acknowledged after it ran,
  like Squall and Dramatiq (at-least-once); ``worker_prefetch_multiplier`` raised so workers are
  never starved; gossip, mingle and heartbeat off.
* Dramatiq: one ``dramatiq`` subprocess with the default middleware; ``noop.send(sent_ns)`` N
  times; the same counter.

Pools and prefetch are options (``--celery-pool`` etc.); the defaults are the fastest
configurations measured on the 2-core machine this was written on (see benchmarks/README.md).
The peers' lines carry Redis's persistence settings: unless AOF with ``appendfsync always`` is on,
their queues are not durable per message, while Squall's are.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import emit, emit_machine, log, percentile, ratio, squall_available, write_file
from _peers import Result, add_peer_arguments, run_celery, run_dramatiq

SQUALL_APP_SOURCE = """\
import time

import squall

app = squall.App("bench-async")


@app.function(concurrency={concurrency}, keep_alive_s=3600, timeout_s=60)
def noop(event, ctx):
    return time.monotonic_ns()
"""


def report(result: Result) -> None:
    extra: dict[str, Any] = {"n": result.n, **result.config}
    if result.failed:
        extra["not_succeeded"] = result.failed
    name = result.name
    emit(f"{name}_async_throughput", result.throughput, "invocations/s", **extra)
    emit(
        f"{name}_async_submit_rate",
        result.n / result.submit_s if result.submit_s else 0.0,
        "invocations/s",
        **extra,
    )
    light = result.light_latencies_ns
    if light:
        for p in (50, 99):
            emit(
                f"{name}_async_enqueue_to_start_p{p}",
                percentile(light, p) / 1e6,
                "ms",
                load="light",
                samples=len(light),
                **result.config,
            )
    burst = result.burst_latencies_ns
    if burst:
        emit(
            f"{name}_async_enqueue_to_start_p50_under_burst",
            percentile(burst, 50) / 1e6,
            "ms",
            load="burst",
            samples=len(burst),
            **extra,
        )


# --- squall ----------------------------------------------------------------------------


async def run_squall(args: argparse.Namespace, tmp: Path) -> Result:
    from squall.engine.platform import Platform, PlatformConfig

    app_path = write_file(
        tmp / "async_app.py", SQUALL_APP_SOURCE.format(concurrency=args.squall_concurrency)
    )
    config = PlatformConfig(app=str(app_path), data_dir=tmp / "squall-data")
    platform = await Platform.start(config)
    result = Result(name="squall", n=args.n, config={"concurrency": args.squall_concurrency})
    clock = time.monotonic_ns
    try:
        log("squall: warm-up")
        await asyncio.gather(*(platform.invoke_async("noop", b"{}") for _ in range(200)))
        await platform.wait_idle(timeout=90)

        async def submit() -> tuple[str, int]:
            sent = clock()
            rec = await platform.invoke_async("noop", b"{}")
            return rec.id, sent

        async def latencies(submitted: list[tuple[str, int]]) -> tuple[list[int], int]:
            out: list[int] = []
            failed = 0
            for inv_id, sent in submitted:
                rec = await platform.get_invocation(inv_id)
                if rec.status != "succeeded" or rec.result is None:
                    failed += 1
                    continue
                out.append(int(json.loads(rec.result)) - sent)
            return out, failed

        gc.collect()
        log(f"squall: light phase, {args.light_n} invocations {args.pace_ms:.0f} ms apart")
        light: list[tuple[str, int]] = []
        for _ in range(args.light_n):
            light.append(await submit())
            await asyncio.sleep(args.pace_ms / 1e3)
        await platform.wait_idle(timeout=60)
        result.light_latencies_ns, failed = await latencies(light)
        result.failed += failed

        log(f"squall: burst of {args.n} (batches of {args.batch})")
        burst: list[tuple[str, int]] = []
        t0 = time.perf_counter()
        for start in range(0, args.n, args.batch):
            size = min(args.batch, args.n - start)
            burst.extend(await asyncio.gather(*(submit() for _ in range(size))))
        result.submit_s = time.perf_counter() - t0
        await platform.wait_idle(timeout=600)
        result.elapsed_s = time.perf_counter() - t0
        log(f"squall: {result.throughput:.0f}/s; reading back {len(burst)} records")
        result.burst_latencies_ns, failed = await latencies(burst)
        result.failed += failed
    finally:
        await platform.stop()
    return result


# --- main ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="about 15 s instead of 1-2 min")
    parser.add_argument("-n", type=int, default=None, help="invocations per burst (20000)")
    parser.add_argument(
        "--celery-n",
        type=int,
        default=None,
        help="Celery's burst (default: min(n, 10000); its rate is flat, and 20000 takes a minute)",
    )
    parser.add_argument("--batch", type=int, default=500, help="Squall submits per gather")
    parser.add_argument("--light-n", type=int, default=None, help="light-phase messages (200)")
    parser.add_argument("--pace-ms", type=float, default=5.0, help="light-phase spacing")
    parser.add_argument("--squall-concurrency", type=int, default=2)
    add_peer_arguments(parser)
    parser.add_argument(
        "--only", choices=["squall", "celery", "dramatiq"], action="append", help="run only these"
    )
    args = parser.parse_args()
    if args.n is None:
        args.n = 2000 if args.quick else 20000
    if args.celery_n is None:
        args.celery_n = min(args.n, 10000)
    if args.light_n is None:
        args.light_n = 50 if args.quick else 200
    only = set(args.only or ["squall", "celery", "dramatiq"])

    emit_machine("async_throughput")
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="squall-bench-async-") as tmp_name:
        tmp = Path(tmp_name)
        sys.path.insert(0, tmp_name)
        if "squall" in only:
            if squall_available():
                results["squall"] = asyncio.run(run_squall(args, tmp))
                report(results["squall"])
            else:
                log("squall.engine.platform does not import yet; skipping Squall")
        pace_s = args.pace_ms / 1e3
        if "dramatiq" in only:
            results["dramatiq"] = run_dramatiq(args, tmp, args.n, args.light_n, pace_s)
            report(results["dramatiq"])
        if "celery" in only:
            results["celery"] = run_celery(args, tmp, args.celery_n, args.light_n, pace_s)
            report(results["celery"])

    squall = results.get("squall")
    if squall is not None:
        for peer, goal in (("dramatiq", ">=2"), ("celery", ">=3")):
            if peer in results:
                emit(
                    f"async_throughput_ratio_squall_vs_{peer}",
                    ratio(squall.throughput, results[peer].throughput),
                    "x",
                    goal=goal,
                )
                emit(
                    f"async_enqueue_to_start_p50_ratio_{peer}_vs_squall",
                    ratio(
                        percentile(results[peer].light_latencies_ns, 50),
                        percentile(squall.light_latencies_ns, 50),
                    ),
                    "x",
                    load="light",
                )


if __name__ == "__main__":
    main()
