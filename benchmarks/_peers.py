"""Peers for the throughput benchmarks: Celery and Dramatiq on the local Redis.

Each peer's worker runs as a subprocess in its own process group; its no-op task records its
start time minus the producer's ``sent_ns`` into a Redis list and increments a Redis counter in
one pipelined round trip, and the producer (this process) polls the counter until every task
ran. Redis db 15 is flushed before and after each peer. The scripts' ``--celery-*`` and
``--dramatiq-*`` options come from :func:`add_peer_arguments`; the defaults are the fastest
configurations measured on the 2-core dev machine (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import log, write_file

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


@dataclass
class Result:
    """One system's run: a burst of ``n`` messages and a light phase, paced."""

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


def add_peer_arguments(parser: argparse.ArgumentParser) -> None:
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


def run_celery(args: argparse.Namespace, tmp: Path, n: int, light_n: int, pace_s: float) -> Result:
    """Celery with the ``--celery-*`` options: ``n`` tasks in the burst."""
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
        n,
        light_n,
        pace_s,
        config,
    )


def run_dramatiq(
    args: argparse.Namespace, tmp: Path, n: int, light_n: int, pace_s: float
) -> Result:
    """Dramatiq with the ``--dramatiq-*`` options: ``n`` messages in the burst."""
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
        n,
        light_n,
        pace_s,
        config,
    )
