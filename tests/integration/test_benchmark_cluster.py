"""Smoke test of benchmarks/cluster.py: a tiny --quick run on the local PostgreSQL and NATS
prints the lines the docs quote, every invocation succeeds, and the run's schema and streams
are gone afterwards."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from backends import require_postgres
from nats_service import NATS_URL, unavailable

from squall.storage.nats.cleanup import fixed_streams

pytestmark = pytest.mark.timeout(300)

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "cluster.py"
TINY = ["--quick", "-n", "40", "--light-n", "5", "--warmup", "10"]


def run(*args: str) -> list[dict[str, Any]]:
    env = {
        **os.environ,
        "SQUALL_TEST_POSTGRES": require_postgres(),
        "SQUALL_TEST_NATS_URL": NATS_URL,
    }
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *TINY, *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    for line in lines:
        assert {"metric", "value", "unit"} <= line.keys(), line
    return lines


def by_metric(lines: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        out.setdefault(line["metric"], []).append(line)
    return out


def assert_cleaned_up(lines: list[dict[str, Any]]) -> None:
    """No schema and no stream of the run is left."""
    runs = {(line["schema"], line["prefix"]) for line in lines if "schema" in line}
    assert runs
    with psycopg.connect(require_postgres()) as conn:
        left = conn.execute(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ANY(%s)",
            ([schema for schema, _ in runs],),
        ).fetchall()
    assert left == []

    async def streams_left() -> list[str]:
        import nats
        from nats.js.errors import NotFoundError

        try:
            nc = await nats.connect(NATS_URL, connect_timeout=5, max_reconnect_attempts=0)
        except Exception as exc:
            unavailable(exc)
            raise
        found = []
        try:
            js = nc.jetstream()
            for _, prefix in runs:
                for name in fixed_streams(prefix):  # work, delay, KV buckets, object store
                    try:
                        await js.stream_info(name)
                    except NotFoundError:
                        continue
                    found.append(name)
        finally:
            await nc.close()
        return found

    assert asyncio.run(streams_left()) == []


def test_quick_run_measures_all_three_systems_and_cleans_up() -> None:
    lines = run()
    metrics = by_metric(lines)
    assert metrics["machine_cpus"][0]["script"] == "cluster"
    for system in ("embedded", "distributed_1inv", "distributed_2inv"):
        (throughput,) = metrics[f"{system}_async_throughput"]
        assert throughput["value"] > 0
        assert "not_succeeded" not in throughput, throughput
        assert throughput["via"] == "platform"
        (p50,) = metrics[f"{system}_async_enqueue_to_start_p50"]
        assert p50["samples"] == 5 and p50["value"] > 0
        (burst,) = metrics[f"{system}_async_enqueue_to_start_p50_under_burst"]
        assert burst["samples"] == 40
        (cpu,) = metrics[f"{system}_cpu_per_invocation"]
        assert cpu["bench"] > 0
    assert metrics["distributed_2inv_async_throughput"][0]["invokers"] == 2
    # Other processes' CPU is read in clock ticks (10 ms): over 40 no-op invocations the
    # invokers' share may not reach one tick, so only its presence is certain here.
    assert metrics["distributed_2inv_cpu_per_invocation"][0]["invoker"] >= 0
    (scaling,) = metrics["cluster_async_throughput_ratio_2_invokers_vs_1"]
    assert scaling["value"] > 0
    assert {
        line["invokers"]
        for line in metrics["cluster_async_throughput_ratio_distributed_vs_embedded"]
    } == {1, 2}
    assert_cleaned_up(lines)


def test_quick_run_over_http_through_a_gateway_node() -> None:
    lines = run("--via", "http", "--only", "distributed_1inv")
    metrics = by_metric(lines)
    (throughput,) = metrics["distributed_1inv_async_throughput"]
    assert throughput["via"] == "http" and throughput["nodes"] == 3
    assert throughput["value"] > 0 and "not_succeeded" not in throughput
    (cpu,) = metrics["distributed_1inv_cpu_per_invocation"]
    assert cpu["gateway"] >= 0 and cpu["gateway"] + cpu["invoker"] > 0  # in ticks, as above
    assert "embedded_async_throughput" not in metrics
    assert_cleaned_up(lines)
