"""End to end: serve the bank with `squall up`; commands over HTTP go to the aggregate,
queries to the projection; racing withdrawals conflict, an old event version is upcast, the
bus reacts to appended events, and a rebuild gives the same read model."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import AUTH, SQUALL, client_env, start_squall, wait_for

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("bank")
    shutil.copy(HERE / "app.py", workdir / "app.py")
    proc, url = start_squall(workdir)
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def command(url: str, account: str, verb: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{url}/accounts/{account}/{verb}", json=body, timeout=30)


def balance_is(url: str, account: str, balance: int) -> dict[str, Any] | None:
    response = httpx.get(f"{url}/accounts/{account}")
    if response.status_code != 200 or response.json()["balance"] != balance:
        return None
    body: dict[str, Any] = response.json()
    return body


def test_commands_fold_into_the_read_model(url: str) -> None:
    assert command(url, "a1", "open", owner="ada").status_code == 200
    for amount in (100, 50):
        assert command(url, "a1", "deposit", amount=amount).status_code == 200
    done = command(url, "a1", "withdraw", amount=30)
    assert done.json() == {"id": "a1", "version": 4, "balance": 120}
    row = wait_for(lambda: balance_is(url, "a1", 120))
    assert row == {"id": "a1", "owner": "ada", "balance": 120, "movements": 3}


def test_bad_commands_are_refused_and_change_nothing(url: str) -> None:
    command(url, "a2", "open", owner="bob")
    cases = [
        (("a2", "deposit"), {"amount": -5}, 400, "amount"),
        (("a2", "deposit"), {"amount": "5"}, 400, "amount"),
        (("a2", "withdraw"), {"amount": 10}, 409, "amount"),  # more than the balance
        (("a2", "open"), {"owner": "bob"}, 409, "id"),  # already open
        (("nobody", "deposit"), {"amount": 1}, 404, "id"),
        (("a2", "explode"), {}, 404, "command"),
        (("bad name!", "open"), {"owner": "x"}, 400, "stream"),
    ]
    for (account, verb), body, status, field in cases:
        response = command(url, account, verb, **body)
        assert response.status_code == status, (account, verb, response.text)
        assert response.json()["error"]["field"] == field
    page = httpx.get(f"{url}/api/v1/es/streams/account-a2/events", headers=AUTH).json()
    assert [e["type"] for e in page["events"]] == ["Opened"]


def test_racing_withdrawals_cannot_both_spend_the_balance(url: str) -> None:
    command(url, "a3", "open", owner="cy")
    command(url, "a3", "deposit", amount=100)
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: command(url, "a3", "withdraw", amount=80),
                                  range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, [r.text for r in responses]
    assert set(statuses) == {200, 409}
    wait_for(lambda: balance_is(url, "a3", 20))


def test_an_old_event_version_is_upcast_and_snapshots_keep_the_fold(url: str) -> None:
    command(url, "a4", "open", owner="dee")
    old = {"events": [{"type": "Deposited", "data": {"amount": 7}, "schema_version": 1}]}
    response = httpx.post(f"{url}/api/v1/es/streams/account-a4/events", json=old, headers=AUTH)
    assert response.status_code == 201, response.text
    for _ in range(24):  # past a snapshot at version 20
        assert command(url, "a4", "deposit", amount=1).status_code == 200
    done = command(url, "a4", "withdraw", amount=31)
    assert done.json() == {"id": "a4", "version": 27, "balance": 0}


def test_the_bus_reacts_to_appended_events(url: str) -> None:
    command(url, "a5", "open", owner="eve")
    command(url, "a5", "deposit", amount=5000)
    command(url, "a5", "withdraw", amount=2500)

    def alerted() -> list[dict[str, Any]] | None:
        items = httpx.get(f"{url}/api/v1/tables/alerts/items", headers=AUTH).json()["items"]
        found = [i for i in items if i["account"] == "account-a5"]
        return found or None

    assert wait_for(alerted)[0]["amount"] == 2500


def test_a_rebuild_gives_the_same_read_model(url: str) -> None:
    def everything() -> list[dict[str, Any]]:
        items = httpx.get(f"{url}/api/v1/tables/balances/items", params={"limit": 100},
                          headers=AUTH).json()["items"]
        return sorted(items, key=lambda i: i["id"])

    wait_for(lambda: True if httpx.get(f"{url}/api/v1/projections/balances",
                                       headers=AUTH).json()["lag"] == 0 else None)
    before = [{k: v for k, v in i.items() if k != "_version"} for i in everything()]
    done = subprocess.run([SQUALL, "projections", "rebuild", "balances", "--json", "--url", url],
                          capture_output=True, text=True, timeout=60, env=client_env())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["generation"] == 2
    after = [{k: v for k, v in i.items() if k != "_version"} for i in everything()]
    assert after == before and len(after) >= 5
