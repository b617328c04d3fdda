"""What the cluster's two services do on their own, measured beside it in benchmarks/cluster.py.

* PostgreSQL: transactions of one 100-byte ``INSERT`` and ``COMMIT`` (the server's default
  ``synchronous_commit``), one after another on one connection (latency and rate), and from
  ``connections`` connections at once (rate), in a schema of their own, dropped afterwards.
* NATS JetStream: 100-byte publishes to a file-storage stream of their own, awaited one at a
  time (ack latency), and ``in_flight`` at once (rate); the stream is deleted afterwards.

An async invoke through a gateway node costs at least one of each (the record and its outbox
row in one transaction, then the publish), one after the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from dataclasses import dataclass

from _common import percentile

BODY = b"x" * 100


@dataclass
class Floor:
    commit_p50_ms: float
    commit_rate: float  # one connection
    commit_rate_parallel: float  # ``connections`` at once
    publish_ack_p50_ms: float
    publish_rate: float  # ``in_flight`` at once


def postgres(url: str, n: int, connections: int) -> tuple[float, float, float]:
    """(p50 ms, commits/s on one connection, commits/s on ``connections``)."""
    import psycopg

    schema = f"bench_floor_{secrets.token_hex(5)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}".encode())
        admin.execute(f"CREATE TABLE {schema}.t (id BIGINT PRIMARY KEY, body BYTEA)".encode())
    insert = f"INSERT INTO {schema}.t VALUES (%s, %s)".encode()
    try:
        with psycopg.connect(url) as conn:
            times: list[float] = []
            t0 = time.perf_counter()
            for i in range(n):
                began = time.perf_counter()
                conn.execute(insert, (i, BODY))
                conn.commit()
                times.append(time.perf_counter() - began)
            sequential = n / (time.perf_counter() - t0)

        def writer(first: int, count: int) -> None:
            with psycopg.connect(url) as conn:
                for i in range(first, first + count):
                    conn.execute(insert, (i, BODY))
                    conn.commit()

        each = n // connections
        threads = [
            threading.Thread(target=writer, args=(n + k * each, each)) for k in range(connections)
        ]
        t0 = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        parallel = each * connections / (time.perf_counter() - t0)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())
    return percentile(times, 50) * 1e3, sequential, parallel


async def jetstream(url: str, n: int, in_flight: int) -> tuple[float, float]:
    """(publish ack p50 ms, publishes/s with ``in_flight`` awaited together)."""
    import nats
    from nats.js.api import StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    tag = secrets.token_hex(5)
    stream, subject = f"BENCHFLOOR{tag.upper()}", f"benchfloor{tag}.work"
    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
    js = nc.jetstream()
    try:
        await js.add_stream(StreamConfig(name=stream, subjects=[subject], storage=StorageType.FILE))
        times: list[float] = []
        for _ in range(min(n, 1000)):
            began = time.perf_counter()
            await js.publish(subject, BODY)
            times.append(time.perf_counter() - began)
        t0 = time.perf_counter()
        for start in range(0, n, in_flight):
            size = min(in_flight, n - start)
            await asyncio.gather(*(js.publish(subject, BODY) for _ in range(size)))
        rate = n / (time.perf_counter() - t0)
    finally:
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(stream)
        await nc.close()
    return percentile(times, 50) * 1e3, rate


def measure(postgres_url: str, nats_url: str, n: int, connections: int = 4) -> Floor:
    commit_p50, commit_rate, commit_parallel = postgres(postgres_url, n, connections)
    ack_p50, publish_rate = asyncio.run(jetstream(nats_url, n * 5, 256))
    return Floor(commit_p50, commit_rate, commit_parallel, ack_p50, publish_rate)
