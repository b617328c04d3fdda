"""End to end: a bad release behind a feature flag fails requests; the error-rate alert
fires, the remediation turns the flag off and opens an incident, the pager is called, the
requests heal, and the incident closes when the alert resolves."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import start_squall, wait_for

HERE = Path(__file__).parent
USERS = ["ann", "bob", "carl", "dora", "eve", "finn"]  # three-letter names meet the bug


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("selfheal")
    shutil.copy(HERE / "app.py", workdir / "app.py")
    proc, url = start_squall(workdir)
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def statuses(url: str) -> list[int]:
    return [httpx.get(f"{url}/recommendations/{user}").status_code for user in USERS]


def remediated(url: str) -> dict[str, Any] | None:
    statuses(url)  # keep the traffic going while the alert is evaluated
    flag: dict[str, Any] = httpx.get(f"{url}/flags/new-ranker").json()
    return flag if flag["changed_by"] == "remediate" else None


def test_the_alert_turns_the_flag_off_and_the_incident_closes(url: str) -> None:
    assert httpx.put(f"{url}/flags/new-ranker", json={"enabled": True}).status_code == 200
    assert statuses(url).count(502) == 3  # ann, bob, eve: the bad release fails them
    flag = wait_for(lambda: remediated(url), timeout=30)
    assert flag["enabled"] is False
    assert statuses(url) == [200] * len(USERS)  # healed without a deploy
    [incident] = httpx.get(f"{url}/incidents").json()
    assert incident["status"] == "open" and incident["error_rate"] > 0.2
    assert incident["action"] == "turned off feature flag 'new-ranker'"

    def closed() -> dict[str, Any] | None:
        [latest] = httpx.get(f"{url}/incidents").json()
        return latest if latest["status"] == "resolved" else None

    resolved = wait_for(closed, timeout=40)
    assert resolved["resolved"] > resolved["opened"]


def test_a_bad_flag_value_is_refused(url: str) -> None:
    response = httpx.put(f"{url}/flags/new-ranker", json={"enabled": "yes"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "enabled"
