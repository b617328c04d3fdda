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
from cluster_nodes import cluster
from support import SQUALL, client_env, start_squall, wait_for

HERE = Path(__file__).parent
CARD = {"card": "4242424242424242"}
CUSTOMER = {"email": "ada@example.com", "phone": "+44 20 7946 0000"}


@pytest.fixture(scope="module", params=["embedded", "cluster"])
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same app, unchanged: on `squall up` (SQLite), then on a cluster of `squall node`
    processes (a gateway, an invoker and a scheduler on PostgreSQL and NATS JetStream)."""
    workdir = tmp_path_factory.mktemp("orders")
    if request.param == "cluster":
        with cluster(workdir) as running:
            shutil.copy(HERE / "app.py", running.app_dir / "app.py")
            running.start_all({"gw": "gateway", "inv": "invoker", "sch": "scheduler"})
            yield running.gateway
        return
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


def workflow_run(url: str, run_id: str) -> dict[str, Any] | None:
    """The run once it has finished (`squall workflows show --json`), else None."""
    done = subprocess.run(
        [SQUALL, "workflows", "show", run_id, "--json", "--url", url],
        capture_output=True, text=True, timeout=30, check=False, env=client_env(),
    )
    if done.returncode != 0:
        return None
    run: dict[str, Any] = json.loads(done.stdout)
    return run if run["status"] not in ("pending", "running", "sleeping", "waiting") else None


def test_the_checkout_workflow_ships_and_charges_once(url: str) -> None:
    httpx.put(f"{url}/stock/tea", json={"quantity": 10})
    body = order("c-1", 4)
    started = httpx.post(f"{url}/checkout", json=body)
    assert started.status_code == 202, started.text
    assert started.json()["run_id"] == "order-c-1"
    assert httpx.post(f"{url}/checkout", json=body).status_code == 202  # the same run
    run = wait_for(lambda: workflow_run(url, "order-c-1"))
    assert run["status"] == "completed", run
    assert run["result"]["tracking"].startswith("TRK-") and run["result"]["charged"] == 4
    state = httpx.get(f"{url}/checkout/c-1").json()
    assert state["checkout"]["status"] == "shipped"
    assert state["payment"]["status"] == "charged" and state["payment"]["amount"] == 4
    assert stock(url) == 6  # deducted once, although the checkout was posted twice


def test_a_failed_shipment_refunds_and_releases_the_stock(url: str) -> None:
    httpx.put(f"{url}/stock/tea", json={"quantity": 10})
    started = httpx.post(f"{url}/checkout", json=order("c-2", 3, address={"country": "XX"}))
    assert started.status_code == 202
    run = wait_for(lambda: workflow_run(url, "order-c-2"))
    assert run["status"] == "compensated", run
    assert "does not ship to XX" in run["error"]["message"]
    state = httpx.get(f"{url}/checkout/c-2").json()
    assert state["checkout"]["status"] == "cancelled"
    assert state["payment"]["status"] == "refunded"
    assert stock(url) == 10
    history = subprocess.run(
        [SQUALL, "workflows", "history", "order-c-2", "--json", "--url", url],
        capture_output=True, text=True, timeout=30, check=True, env=client_env(),
    )
    steps = [(s["kind"], s["name"], s["status"]) for s in json.loads(history.stdout)["steps"]]
    assert steps == [
        ("step", "reserve_stock", "completed"),
        ("step", "charge_card", "completed"),
        ("step", "ship", "failed"),
        ("compensate", "refund_card", "completed"),
        ("compensate", "release_stock", "completed"),
    ]


def test_a_declined_card_releases_the_stock_only(url: str) -> None:
    httpx.put(f"{url}/stock/tea", json={"quantity": 10})
    declined = order("c-3", 2, payment={"card": "4000000000000002"})
    assert httpx.post(f"{url}/checkout", json=declined).status_code == 202
    run = wait_for(lambda: workflow_run(url, "order-c-3"))
    assert run["status"] == "compensated" and "declined" in run["error"]["message"]
    state = httpx.get(f"{url}/checkout/c-3").json()
    assert state["checkout"]["status"] == "cancelled" and state["payment"] is None
    assert stock(url) == 10
    assert httpx.post(f"{url}/checkout", json={"id": "c-4"}).status_code == 400
