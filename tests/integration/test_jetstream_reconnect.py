"""The connection to NATS outlives its server: a first connect waits for a broker that
starts late, and a broker killed and restarted is reconnected to, its queues intact.

Runs its own ``nats-server`` (file storage in tmp_path) so it may kill it.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats_service import fresh_prefix, unavailable

from squall.storage.nats import ConnectOptions, JetStreamConfig, JetStreamQueue, QueueSpec
from squall.storage.protocols import Delivery


class Server:
    def __init__(self, store: Path) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            unavailable(FileNotFoundError("nats-server is not on PATH"))
        self.binary = str(binary)
        self.store = store
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "jetstream")
    yield s
    s.kill()


def delivery(n: int) -> Delivery:
    now = time.time()
    return Delivery(
        id=f"r{n}",
        queue="fn:r",
        payload=b"{}",
        invocation_id=f"i{n}",
        enqueued_at=now,
        available_at=now,
    )


async def test_queue_waits_for_a_late_broker_and_survives_its_restart(server: Server) -> None:
    config = JetStreamConfig(
        connect=ConnectOptions(url=server.url, attempts=10, backoff_s=0.2, reconnect_wait_s=1),
        prefix=fresh_prefix(),
    )
    opening = asyncio.create_task(JetStreamQueue.open(config))
    await asyncio.sleep(0.5)
    assert not opening.done()  # still trying: nothing listens yet
    server.start()
    q = await asyncio.wait_for(opening, 30)
    try:
        await q.declare(QueueSpec(name="fn:r", visibility_s=30))
        assert await q.publish(delivery(1))

        server.kill()
        server.start()  # same store: the stream and the delivery come back
        deadline = time.monotonic() + 20
        while True:
            try:
                assert await q.publish(delivery(2))
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        leased = []
        while len(leased) < 2 and time.monotonic() < deadline:
            leased += await q.lease("fn:r", 2, 30, wait_s=0.5)
        assert [d.id for d in leased] == ["r1", "r2"]
    finally:
        await q.delete_streams()
        await q.close()
