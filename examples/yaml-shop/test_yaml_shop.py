"""End to end: serve the shop declared in squall.yaml with `squall up` and follow an order
from its HTTP route through the event rule and the queue to the outbox."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import AUTH, start_squall, wait_for

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("yaml-shop")
    for name in ("squall.yaml", "handlers.py"):
        shutil.copy(HERE / name, workdir / name)
    proc, url = start_squall(workdir, app="squall.yaml")
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def confirmed(url: str, order_id: str) -> dict[str, Any] | None:
    response = httpx.get(f"{url}/orders/{order_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body if body["confirmed"] else None


def test_an_order_is_recorded_announced_queued_and_confirmed(url: str) -> None:
    placed = httpx.post(f"{url}/orders", json={"id": "o-1", "total": 42, "email": "a@b.c"})
    assert placed.status_code == 202 and placed.json() == {"id": "o-1"}
    order = wait_for(lambda: confirmed(url, "o-1"))
    assert (order["id"], order["total"], order["email"]) == ("o-1", 42, "a@b.c")
    logs = httpx.get(f"{url}/api/v1/logs", params={"function": "send-email"}, headers=AUTH)
    assert [row["message"] for row in logs.json()["logs"]] == ["confirmation of o-1 sent to a@b.c"]


def test_the_handlers_own_checks_answer_over_http(url: str) -> None:
    refused = httpx.post(f"{url}/orders", json={"id": "o-2", "total": -1})
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "total"
    assert httpx.get(f"{url}/orders/nope").status_code == 404


def test_the_platform_serves_what_the_manifest_declares(url: str) -> None:
    functions = httpx.get(f"{url}/api/v1/functions", headers=AUTH)
    assert functions.status_code == 200, functions.text
    names = {f["name"] for f in functions.json()["functions"]}
    assert names == {"place-order", "get-order", "confirm-order", "send-email", "count-orders"}
    schedules = httpx.get(f"{url}/api/v1/schedules", headers=AUTH).json()["schedules"]
    assert [(s["name"], s["expression"]) for s in schedules] == [
        ("count-orders", "rate(1 minute)")]
