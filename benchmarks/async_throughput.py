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
import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import emit, emit_machine, log, percentile, ratio, squall_available, write_file

REDIS_URL = "redis://127.0.0.1:6379/15"
DONE_KEY = "bench:done"
LAT_KEY = "bench:lat"

TASK_BODY = """
_redis = None


def _record(sent_ns):
    started = time.monotonic_ns()
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(URL)
    pipe = _redis.pipeline(transaction=False)
    pipe.incr("bench:done")
    if sent_ns:
        pipe.rpush("bench:lat", started - sent_ns)
    pipe.execute()
"""

CELERY_SOURCE = (
    """\
import os
import time

import redis
from celery import Celery

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
app = Celery("bench_celery_tasks", broker=URL)
app.conf.update(
    task_ignore_result=True,
    task_acks_late=os.environ.get("BENCH_CELERY_ACKS_LATE", "1") == "1",
    worker_prefetch_multiplier=int(os.environ.get("BENCH_CELERY_PREFETCH", "64")),
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
"""
    + TASK_BODY
    + """

@app.task(name="noop")
def noop(sent_ns=0):
    _record(sent_ns)
"""
)

DRAMATIQ_SOURCE = (
    """\
import os
import time

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
broker = RedisBroker(url=URL)
dramatiq.set_broker(broker)
"""
    + TASK_BODY
    + """

@dramatiq.actor(queue_name="bench")
def noop(sent_ns=0):
    _record(sent_ns)
"""
)

SQUALL_APP_SOURCE = """\
import time

import squall

app = squall.App("bench-async")


@app.function(concurrency={concurrency}, keep_alive_s=3600, timeout_s=60)
def noop(event, ctx):
    return time.monotonic_ns()
"""


@dataclass
class Result:
    name: str
    n: int
    elapsed_s: float = 0.0
    submit_s: float = 0.0
    burst_latencies_ns: list[int] = field(default_factory=list)
    light_latencies_ns: list[int] = field(default_factory=list)
    failed: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.n / self.elapsed_s if self.elapsed_s else 0.0

    def report(self) -> None:
        extra: dict[str, Any] = {"n": self.n, **self.config}
        if self.failed:
            extra["not_succeeded"] = self.failed
        emit(f"{self.name}_async_throughput", self.throughput, "invocations/s", **extra)
        emit(
            f"{self.name}_async_submit_rate",
            self.n / self.submit_s if self.submit_s else 0.0,
            "invocations/s",
            **extra,
        )
        light = self.light_latencies_ns
        if light:
            emit(
                f"{self.name}_async_enqueue_to_start_p50",
                percentile(light, 50) / 1e6,
                "ms",
                load="light",
                samples=len(light),
                **self.config,
            )
            emit(
                f"{self.name}_async_enqueue_to_start_p99",
                percentile(light, 99) / 1e6,
                "ms",
                load="light",
                samples=len(light),
                **self.config,
            )
        burst = self.burst_latencies_ns
        if burst:
            emit(
                f"{self.name}_async_enqueue_to_start_p50_under_burst",
                percentile(burst, 50) / 1e6,
                "ms",
                load="burst",
                samples=len(burst),
                **extra,
            )


# --- peers -----------------------------------------------------------------------------


def _redis() -> Any:
    import redis

    return redis.Redis.from_url(REDIS_URL)


@contextlib.contextmanager
def worker(cmd: list[str], cwd: Path, env: dict[str, str], log_path: Path) -> Iterator[None]:
    """Run a worker subprocess in its own process group; stop that group afterwards."""
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def redis_persistence(r: Any) -> dict[str, str]:
    """How durable the peers' broker is on this machine (AOF fsync policy, RDB schedule)."""
    try:
        aof = r.config_get("appendonly").get("appendonly", "?")
        fsync = r.config_get("appendfsync").get("appendfsync", "?")
        save = r.config_get("save").get("save", "?")
    except Exception:  # CONFIG may be disabled
        return {}
    return {"redis_aof": f"{aof}/{fsync}" if aof == "yes" else "no", "redis_rdb_save": save}


def wait_counter(r: Any, target: int, timeout_s: float, log_path: Path) -> float:
    """Poll the done counter until it reaches ``target``; return the time it did."""
    deadline = time.perf_counter() + timeout_s
    while True:
        done = int(r.get(DONE_KEY) or 0)
        now = time.perf_counter()
        if done >= target:
            return now
        if now > deadline:
            tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
            raise TimeoutError(f"only {done}/{target} tasks done; worker log tail:\n{tail}")
        time.sleep(0.002)


def run_peer(
    name: str,
    send: Callable[[int], object],
    cmd: list[str],
    tmp: Path,
    env: dict[str, str],
    n: int,
    light_n: int,
    pace_s: float,
    config: dict[str, Any],
) -> Result:
    r = _redis()
    r.flushdb()
    config = {**config, **redis_persistence(r)}
    log_path = tmp / f"{name}-worker.log"
    result = Result(name=name, n=n, config=config)
    with worker(cmd, tmp, env, log_path):
        log(f"{name}: waiting for the worker ({' '.join(cmd[2:])})")
        for _ in range(200):
            send(0)
        wait_counter(r, 200, 90, log_path)
        r.delete(DONE_KEY, LAT_KEY)
        gc.collect()

        log(f"{name}: light phase, {light_n} messages {pace_s * 1e3:.0f} ms apart")
        for _ in range(light_n):
            send(time.monotonic_ns())
            time.sleep(pace_s)
        wait_counter(r, light_n, 60, log_path)
        result.light_latencies_ns = [int(x) for x in r.lrange(LAT_KEY, 0, -1)]
        r.delete(DONE_KEY, LAT_KEY)

        log(f"{name}: burst of {n}")
        t0 = time.perf_counter()
        for _ in range(n):
            send(time.monotonic_ns())
        result.submit_s = time.perf_counter() - t0
        t_end = wait_counter(r, n, 600, log_path)
        result.elapsed_s = t_end - t0
        result.burst_latencies_ns = [int(x) for x in r.lrange(LAT_KEY, 0, -1)]
    r.flushdb()
    log(f"{name}: {result.throughput:.0f}/s")
    return result


def peer_env(tmp: Path, extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp), env.get("PYTHONPATH", "")]))
    env["BENCH_REDIS_URL"] = REDIS_URL
    env.update(extra)
    return env


def run_celery(args: argparse.Namespace, tmp: Path) -> Result:
    write_file(tmp / "bench_celery_tasks.py", CELERY_SOURCE)
    settings = {
        "BENCH_CELERY_PREFETCH": str(args.celery_prefetch),
        "BENCH_CELERY_ACKS_LATE": "1" if args.celery_acks_late else "0",
    }
    env = peer_env(tmp, settings)
    os.environ.update(settings)
    import bench_celery_tasks

    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "bench_celery_tasks",
        "worker",
        f"--pool={args.celery_pool}",
        f"--concurrency={args.celery_concurrency}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel=WARNING",
    ]
    config = {
        "pool": args.celery_pool,
        "concurrency": args.celery_concurrency,
        "prefetch_multiplier": args.celery_prefetch,
        "acks_late": args.celery_acks_late,
    }
    return run_peer(
        "celery",
        bench_celery_tasks.noop.delay,
        cmd,
        tmp,
        env,
        args.celery_n,
        args.light_n,
        args.pace_ms / 1e3,
        config,
    )


def run_dramatiq(args: argparse.Namespace, tmp: Path) -> Result:
    write_file(tmp / "bench_dramatiq_tasks.py", DRAMATIQ_SOURCE)
    env = peer_env(tmp, {})
    import bench_dramatiq_tasks

    cmd = [
        sys.executable,
        "-m",
        "dramatiq",
        "bench_dramatiq_tasks",
        f"--processes={args.dramatiq_processes}",
        f"--threads={args.dramatiq_threads}",
    ]
    config = {"processes": args.dramatiq_processes, "threads": args.dramatiq_threads}
    return run_peer(
        "dramatiq",
        bench_dramatiq_tasks.noop.send,
        cmd,
        tmp,
        env,
        args.n,
        args.light_n,
        args.pace_ms / 1e3,
        config,
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
    parser.add_argument("--celery-pool", default="prefork", help="prefork, threads, solo")
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--celery-prefetch", type=int, default=64)
    parser.add_argument(
        "--celery-acks-late",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ack after the task ran (at-least-once, like Squall and Dramatiq)",
    )
    parser.add_argument("--dramatiq-processes", type=int, default=2)
    parser.add_argument("--dramatiq-threads", type=int, default=16)
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
                results["squall"].report()
            else:
                log("squall.engine.platform does not import yet; skipping Squall")
        for name, runner in (("dramatiq", run_dramatiq), ("celery", run_celery)):
            if name in only:
                results[name] = runner(args, tmp)
                results[name].report()

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
