"""What the benchmarks that run Squall on PostgreSQL + NATS JetStream share: the servers'
options, and removing a run's schema and subject prefix afterwards."""

from __future__ import annotations

import argparse
import asyncio
import os

from _common import log


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SQUALL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"),
        help="the PostgreSQL server (a fresh schema is made in it per run, dropped afterwards)",
    )
    parser.add_argument(
        "--nats",
        default=os.environ.get("SQUALL_TEST_NATS_URL", "nats://127.0.0.1:4222"),
        help="the NATS JetStream server (a fresh prefix per run, deleted afterwards)",
    )


async def remove_run(store: str, nats_url: str, prefix: str) -> None:
    """Drop the run's schema (CASCADE) and everything of its prefix on JetStream."""
    import nats

    from squall.storage.nats.cleanup import delete_prefix
    from squall.storage.postgres.store import drop_schema

    try:
        await asyncio.to_thread(drop_schema, store)
    except Exception as exc:  # say so, and still delete the streams
        log(f"dropping the schema of {store} failed: {exc}")
    try:
        nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=0)
    except Exception as exc:
        log(f"deleting the streams of prefix {prefix} failed: {exc}")
        return
    try:
        await delete_prefix(nc, prefix)
    finally:
        await nc.close()
