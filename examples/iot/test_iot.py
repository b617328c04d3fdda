"""End to end: serve the iot app with `squall up`, run the load script against it with 50
devices x 20 readings, and check every aggregate, alert and the hourly report exactly."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from support import (
    ADMIN_KEY,
    AUTH,
    SQUALL,
    client_env,
    start_squall,
    stop,
    wait_for,
    wait_until_gone,
)

HERE = Path(__file__).parent
DEVICES, READINGS = 50, 20


def load_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("iot_load", HERE / "load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LOAD = load_module()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("iot")
    shutil.copy(HERE / "app.py", workdir / "app.py")
    proc, url = start_squall(workdir)
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def squall(url: str, *args: str) -> Any:
    done = subprocess.run(
        [SQUALL, *args, "--url", url, "--json"],
        capture_output=True, text=True, timeout=30, check=False, env=client_env(),
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def run_load(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HERE / "load.py"), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.fixture(scope="module")
def loaded(url: str) -> dict[str, Any]:
    done = run_load("--url", url, "--key", ADMIN_KEY, "--devices", str(DEVICES),
                    "--readings", str(READINGS), "--workers", "8")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    summary: dict[str, Any] = lines[-1]
    assert summary["done"] and summary["readings"] == DEVICES * READINGS
    assert all("readings_per_s" in line for line in lines)

    def caught_up() -> bool | None:
        shown = squall(url, "streams", "show", "readings")
        behind = [c["behind"] for c in shown["consumers"]]
        return True if len(behind) == 4 and not any(behind) else None

    wait_for(caught_up, timeout=30)
    return summary


def alerts_once(http: httpx.Client, count: int) -> list[dict[str, Any]] | None:
    """The recorded alerts once there are at least ``count`` of them."""
    alerts: list[dict[str, Any]] = http.get("/alerts").json()["alerts"]
    return alerts if len(alerts) >= count else None


def test_each_device_aggregate_counts_every_reading_with_its_min_max_and_last(
    url: str, loaded: dict[str, Any]
) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        for n in range(DEVICES):
            values = [LOAD.celsius(n, i) for i in range(READINGS)]
            aggregate = http.get(f"/devices/{LOAD.device_id(n)}").json()
            assert (aggregate["count"], aggregate["min"], aggregate["max"]) == (
                READINGS, min(values), max(values)), aggregate
            assert aggregate["last"] == values[-1]
            assert aggregate["mean"] == pytest.approx(sum(values) / READINGS)
            assert aggregate["window"]["count"] <= READINGS
            assert aggregate["crossings"] == (2 if LOAD.is_hot(n) else 0)
        missing = http.get("/devices/nobody")
        assert missing.status_code == 404 and missing.json()["error"]["field"] == "device"


def test_a_hot_device_raises_exactly_one_alert_per_crossing(
    url: str, loaded: dict[str, Any]
) -> None:
    hot = [LOAD.device_id(n) for n in range(DEVICES) if LOAD.is_hot(n)]
    with httpx.Client(base_url=url, timeout=30) as http:
        alerts = wait_for(lambda: alerts_once(http, 2 * len(hot)), timeout=20)
        assert len(alerts) == 2 * len(hot)
        assert sorted({a["device"] for a in alerts}) == hot
        for device in hot:
            mine = http.get("/alerts", params={"device": device}).json()["alerts"]
            assert [a["celsius"] for a in mine] == [85.0, 85.0]  # the first reading of each spike
            assert mine[0]["sequence"] < mine[1]["sequence"]


def test_the_hourly_report_sums_up_the_devices(url: str, loaded: dict[str, Any]) -> None:
    hot = [n for n in range(DEVICES) if LOAD.is_hot(n)]
    with httpx.Client(base_url=url, timeout=30) as http:
        wait_for(lambda: alerts_once(http, 2 * len(hot)), timeout=20)
    report = squall(url, "invoke", "hourly-report")["result"]
    assert report["devices"] == DEVICES and report["readings"] == DEVICES * READINGS
    assert report["hottest"]["celsius"] == 87.0
    assert report["alerts"] == 2 * len(hot) and report["above"] == []
    assert httpx.get(f"{url}/reports/latest").json() == {**report, "_version": 1}


def aggregate_of(http: httpx.Client, device: str) -> dict[str, Any] | None:
    response = http.get(f"/devices/{device}")
    return response.json() if response.status_code == 200 else None


def test_a_reading_without_a_number_is_skipped_and_the_shard_moves_on(
    url: str, loaded: dict[str, Any]
) -> None:
    for data in ({"device": "dev-odd", "celsius": "n/a"}, {"device": "dev-odd", "celsius": 21}):
        squall(url, "streams", "put", "readings", "--partition-key", "dev-odd",
               "--data", json.dumps(data))
    with httpx.Client(base_url=url, timeout=30) as http:
        odd = wait_for(lambda: aggregate_of(http, "dev-odd"))
    assert (odd["count"], odd["min"], odd["last"]) == (1, 21.0, 21.0)
    done = subprocess.run(
        [SQUALL, "logs", "check-thresholds", "--level", "warning", "--json", "--url", url],
        capture_output=True, text=True, timeout=30, check=False, env=client_env(),
    )
    assert done.returncode == 0, done.stderr
    messages = [json.loads(line)["message"] for line in done.stdout.splitlines()]
    assert any("dev-odd" in m and "has no number in celsius" in m for m in messages)


def test_the_load_script_refuses_bad_numbers_with_exit_code_2() -> None:
    done = run_load("--devices", "0")
    assert done.returncode == 2 and "--devices must be positive" in done.stderr


def shard_lag(url: str) -> int:
    shown = httpx.get(f"{url}/api/v1/streams/readings", headers=AUTH, timeout=30).json()
    return sum(consumer["behind"] for consumer in shown["consumers"])


def test_a_sigkill_mid_stream_neither_loses_nor_double_counts_a_reading(tmp_path: Path) -> None:
    devices, readings = 200, 30
    shutil.copy(HERE / "app.py", tmp_path / "app.py")
    data = tmp_path / "data"
    first, url = start_squall(tmp_path, "--data-dir", str(data))
    try:
        done = run_load("--url", url, "--key", ADMIN_KEY, "--devices", str(devices),
                        "--readings", str(readings), "--workers", "4")
        assert done.returncode == 0, done.stderr
        behind = shard_lag(url)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert behind > 0, "everything was consumed before the kill: the test proves nothing"
    assert wait_until_gone(tmp_path, data, {os.getpid()}, timeout=5) == {}

    second, url = start_squall(tmp_path, "--data-dir", str(data))
    try:
        wait_for(lambda: True if shard_lag(url) == 0 else None, timeout=30)
        with httpx.Client(base_url=url, timeout=30) as http:
            for n in range(devices):
                aggregate = http.get(f"/devices/{LOAD.device_id(n)}").json()
                assert aggregate["count"] == readings, aggregate
                assert aggregate["crossings"] == (3 if LOAD.is_hot(n) else 0)
            crossings = 3 * len([n for n in range(devices) if LOAD.is_hot(n)])
            alerts = wait_for(lambda: alerts_once(http, crossings), timeout=20)
            assert len(alerts) == crossings
    finally:
        stop(second)
