"""End to end: serve the orders app with `squall up`, post orders, watch them through the CLI."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import SQUALL, client_env, start_squall, wait_for

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("fifo-orders")
    shutil.copy(HERE / "app.py", workdir / "app.py")
    proc, url = start_squall(workdir)
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def squall(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SQUALL, *args, "--url", url],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=client_env(),
    )


def fulfilled(url: str) -> list[str]:
    done = squall(url, "logs", "fulfil", "--grep", "fulfilled", "--json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line)["message"] for line in done.stdout.splitlines()]


def queue(url: str, name: str) -> dict[str, int]:
    return dict(json.loads(squall(url, "queues", "show", name, "--json").stdout))


def test_orders_are_fulfilled_in_order_and_bad_ones_dead_lettered(url: str) -> None:
    orders = [{"id": n, "customer": "ada", "qty": 1} for n in range(1, 6)]
    orders += [{"id": 9, "customer": "bob", "qty": 0}, {"id": 1, "customer": "ada", "qty": 1}]
    for order in orders:  # the last one repeats the first: dropped as a duplicate
        assert httpx.post(f"{url}/orders", json=order).status_code == 202

    wait_for(lambda: len(fulfilled(url)) == 5 or None)
    assert fulfilled(url) == [f"fulfilled order {n} of ada" for n in range(1, 6)]
    wait_for(lambda: queue(url, "orders-dlq.fifo")["visible"] == 1 or None)
    assert queue(url, "orders.fifo")["visible"] == 0

    moved = squall(url, "queues", "redrive", "orders-dlq.fifo", "--json")
    assert json.loads(moved.stdout) == {"moved": {"orders.fifo": 1}, "total": 1}
    wait_for(lambda: queue(url, "orders-dlq.fifo")["visible"] == 1 or None)
