"""End to end: train the fraud model, serve the app with `squall up`, post payments over HTTP,
and check their scores, which ones were flagged, and the cold and warm invocation records."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import SQUALL, client_env, start_squall, wait_for

HERE = Path(__file__).parent
FINE = {"amount": 24.5, "hour": 14, "country": "GB", "card_country": "GB", "velocity": 1}
FRAUD = {"amount": 4800.0, "hour": 3, "country": "NG", "card_country": "GB", "velocity": 9}
PAYMENTS = 6


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("fraud")
    for name in ("app.py", "train.py", "fraud_features.py"):
        shutil.copy(HERE / name, workdir / name)
    trained = subprocess.run(
        [sys.executable, "train.py", "--samples", "2000"],
        cwd=workdir, capture_output=True, text=True, timeout=60, check=False,
    )
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout)
    assert summary["auc"] > 0.75 and Path(summary["out"]) == workdir / "model.joblib"
    proc, url = start_squall(workdir)
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def squall(url: str, *args: str, as_json: bool = True) -> Any:
    done = subprocess.run(
        [SQUALL, *args, "--url", url, *(["--json"] if as_json else [])],
        capture_output=True, text=True, timeout=30, check=False, env=client_env(),
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if as_json else done.stdout


def scored(http: httpx.Client, payment_id: str) -> dict[str, Any] | None:
    response = http.get(f"/payments/{payment_id}")
    return response.json() if response.status_code == 200 else None


@pytest.fixture(scope="module")
def results(url: str) -> dict[str, dict[str, Any]]:
    """Posts one fraudulent payment among fine ones, one at a time, and waits for each score."""
    found: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=url, timeout=60) as http:
        for n in range(PAYMENTS):
            payment = {"id": f"pay-{n}", **(FRAUD if n == 2 else FINE)}
            posted = http.post("/payments", json=payment)
            assert posted.status_code == 202, posted.text
            assert posted.json() == {"id": payment["id"], "status": "received"}
            found[payment["id"]] = wait_for(lambda p=payment: scored(http, p["id"]), timeout=60)
    return found


def test_the_fraudulent_payment_is_flagged_and_held_and_the_fine_ones_are_not(
    url: str, results: dict[str, dict[str, Any]]
) -> None:
    fraud = results.pop("pay-2")
    assert fraud["score"] > 0.95 and fraud["flagged"] is True
    assert fraud["payment"]["amount"] == FRAUD["amount"]
    assert all(r["score"] < 0.05 and r["flagged"] is False for r in results.values())
    with httpx.Client(base_url=url, timeout=30) as http:
        held = wait_for(lambda: (body := scored(http, "pay-2")) and body["held"] and body)
        assert held["held"] is True
        assert all(scored(http, pid)["held"] is False for pid in results)  # type: ignore[index]
    item = squall(url, "tables", "get", "held", "pay-2")
    assert (item["status"], item["score"]) == ("held", fraud["score"])
    runs = squall(url, "invocations", "hold-payment")["invocations"]
    assert [r["status"] for r in runs] == ["succeeded"]


def test_the_model_loads_once_a_cold_start_then_warm_invocations(
    url: str, results: dict[str, dict[str, Any]]
) -> None:
    runs = squall(url, "invocations", "score-payment", "--limit", "100")["invocations"]
    assert len(runs) == PAYMENTS and all(r["status"] == "succeeded" for r in runs)
    cold = [r for r in runs if r["cold"]]
    warm = [r for r in runs if r["cold"] is False]
    assert len(cold) == 1 and len(warm) == PAYMENTS - 1
    assert cold[0]["init_ms"] > 0
    assert cold[0]["created_at"] == min(r["created_at"] for r in runs)
    table = squall(url, "invocations", "score-payment", as_json=False)
    assert f"{cold[0]['init_ms']:.1f} ms" in table  # the init column of the cold start


def test_a_bad_payment_is_refused_naming_the_field_and_publishes_nothing(url: str) -> None:
    cases = [
        ({**FINE, "id": "bad-1", "amount": -3}, "amount"),
        ({**FINE, "id": "bad-2", "hour": 24}, "hour"),
        ({**FINE, "id": "bad-3", "card_country": "Britain"}, "card_country"),
        ({**FINE, "amount": 3}, "id"),
        ([1, 2], "payment"),
    ]
    with httpx.Client(base_url=url, timeout=30) as http:
        for body, field in cases:
            response = http.post("/payments", json=body)
            assert response.status_code == 400, response.text
            assert response.json()["error"]["field"] == field
        assert http.post("/payments", content=b"{not json").json()["error"]["field"] == "payment"
        for n in (1, 2, 3):
            assert http.get(f"/payments/bad-{n}").status_code == 404
