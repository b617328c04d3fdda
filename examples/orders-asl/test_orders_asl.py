"""End to end: serve the ASL orders pipeline with `squall up`, run executions over the admin
API, and follow them through their states, tables and histories."""

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
CARD = {"card": "4242424242424242"}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("orders-asl")
    for name in ("app.py", "fulfil.asl.json"):
        shutil.copy(HERE / name, workdir / name)
    proc, url = start_squall(workdir)
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def execute(url: str, run_id: str, order: dict[str, Any]) -> dict[str, Any]:
    started = httpx.post(f"{url}/api/v1/workflows/fulfil/runs",
                         json={"input": order, "id": run_id}, headers=AUTH, timeout=10)
    assert started.status_code == 201, started.text

    def finished() -> dict[str, Any] | None:
        run: dict[str, Any] = httpx.get(f"{url}/api/v1/workflows/runs/{run_id}",
                                        headers=AUTH, timeout=10).json()
        return run if run["status"] in ("completed", "failed") else None

    return wait_for(finished, timeout=60)


def states(url: str, run_id: str) -> list[str]:
    steps = httpx.get(f"{url}/api/v1/workflows/runs/{run_id}/history", headers=AUTH,
                      timeout=10).json()["steps"]
    return [s["name"] for s in steps if s["kind"] == "state"]


def stock(url: str, sku: str) -> int:
    item = httpx.get(f"{url}/api/v1/tables/stock/items/{sku}", headers=AUTH, timeout=10)
    assert item.status_code == 200, item.text
    return int(item.json()["quantity"])


def order(order_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": order_id, "items": [{"sku": "tea", "qty": 2}, {"sku": "cup", "qty": 1},
                                      {"sku": "tea", "qty": 1}],
            "total": 31.5, "customer": {"email": "ada@example.com"}, "payment": CARD,
            **fields}


def test_an_order_is_charged_packed_and_shipped(url: str) -> None:
    for sku in ("tea", "cup"):
        assert httpx.put(f"{url}/stock/{sku}", json={"quantity": 10}).status_code == 200
    run = execute(url, "o-1", order("o-1"))
    assert run["status"] == "completed", run["error"]
    result = run["result"]
    assert result["parcels"] == ["o-1-0", "o-1-1", "o-1-2"]
    assert result["tracking"].startswith("TRK-")
    assert result["message"] == f"Order o-1 shipped as {result['tracking']}"
    assert states(url, "o-1") == ["Validate", "Reserve", "Charge", "Dispatch", "Ship",
                                  "Summary"]
    assert stock(url, "tea") == 7 and stock(url, "cup") == 9


def test_a_declined_card_gives_the_stock_back(url: str) -> None:
    httpx.put(f"{url}/stock/tea", json={"quantity": 10})
    httpx.put(f"{url}/stock/cup", json={"quantity": 10})
    run = execute(url, "o-2", order("o-2", payment={"card": "4000000000000002"}))
    assert run["status"] == "failed"
    assert run["error"]["error"] == "CardDeclined"
    assert run["error"]["cause"] == "card ending 0002 was declined"
    assert states(url, "o-2") == ["Validate", "Reserve", "Charge", "Release", "Rejected"]
    assert stock(url, "tea") == 10 and stock(url, "cup") == 10


def test_bad_orders_and_missing_stock_are_rejected_by_name(url: str) -> None:
    httpx.put(f"{url}/stock/tea", json={"quantity": 1})
    run = execute(url, "o-3", order("o-3", items=[]))
    assert (run["error"]["error"], run["error"]["cause"]) == (
        "InvalidOrder", "an order needs at least one item")
    run = execute(url, "o-4", order("o-4"))
    assert run["error"]["error"] == "OutOfStock"
    assert states(url, "o-4") == ["Validate", "Reserve", "Rejected"]
    assert stock(url, "tea") == 1
