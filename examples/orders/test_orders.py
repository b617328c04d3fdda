"""End to end: serve the orders pipeline with `squall up`, place orders over HTTP, follow
them to shipment and SMS, and check the stock through the CLI."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import SQUALL, client_env, start_squall, wait_for

HERE = Path(__file__).parent
CARD = {"card": "4242424242424242"}
CUSTOMER = {"email": "ada@example.com", "phone": "+44 20 7946 0000"}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("orders")
    shutil.copy(HERE / "app.py", workdir / "app.py")
    proc, url = start_squall(workdir)
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def order(order_id: str, qty: int, **fields: Any) -> dict[str, Any]:
    return {"id": order_id, "items": [{"sku": "tea", "qty": qty}], "customer": CUSTOMER,
            "payment": CARD, **fields}


def stock(url: str) -> int:
    done = subprocess.run(
        [SQUALL, "tables", "get", "stock", "tea", "--json", "--url", url],
        capture_output=True, text=True, timeout=30, check=False, env=client_env(),
    )
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout)["quantity"])


def shipped(url: str, order_id: str) -> dict[str, Any] | None:
    response = httpx.get(f"{url}/orders/{order_id}")
    if response.status_code != 200:
        return None
    body: dict[str, Any] = response.json()
    return body if body["order"]["status"] == "shipped" and len(body["sent"]) == 2 else None


def test_an_order_flows_to_shipment_email_and_sms(url: str) -> None:
    assert httpx.put(f"{url}/stock/tea", json={"quantity": 10}).status_code == 200
    placed = httpx.post(f"{url}/orders", json=order("o-1", 3))
    assert placed.status_code == 202 and placed.json() == {"id": "o-1", "status": "validated"}
    body = wait_for(lambda: shipped(url, "o-1"))
    assert body["order"]["tracking"].startswith("TRK-")
    email, sms = sorted(body["sent"], key=lambda message: message["channel"])
    assert email == {"id": "email-o-1", "channel": "email", "to": CUSTOMER["email"],
                     "text": "Thank you for order o-1.", "_version": 1}
    assert sms["to"] == CUSTOMER["phone"] and body["order"]["tracking"] in sms["text"]
    assert stock(url) == 7


def test_each_order_is_deducted_from_stock_exactly_once(url: str) -> None:
    httpx.put(f"{url}/stock/tea", json={"quantity": 100})
    ids = [f"many-{n}" for n in range(12)]
    for order_id in ids:
        assert httpx.post(f"{url}/orders", json=order(order_id, 2)).status_code == 202
    for order_id in ids:
        wait_for(lambda order_id=order_id: shipped(url, order_id))
    assert stock(url) == 100 - 2 * len(ids)


def test_bad_orders_are_refused_naming_the_field_and_change_nothing(url: str) -> None:
    httpx.put(f"{url}/stock/tea", json={"quantity": 5})
    cases = [
        (order("x-1", 1, payment={"card": "4000000000000002"}), 402, "payment.card"),
        (order("x-2", 6), 409, "items[0].qty"),
        ({"id": "x-3", "items": []}, 400, "items"),
        ({"items": [{"sku": "tea", "qty": 1}]}, 400, "id"),
        ({"id": "x-4", "items": [{"sku": "tea", "qty": "two"}]}, 400, "items[0]"),
    ]
    for body, status, field in cases:
        response = httpx.post(f"{url}/orders", json=body)
        assert response.status_code == status, response.text
        assert response.json()["error"]["field"] == field
    assert httpx.get(f"{url}/orders/x-1").status_code == 404
    assert stock(url) == 5
