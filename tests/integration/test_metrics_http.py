"""GET /metrics, the summary and cost endpoints, and `squall metrics` / `squall cost`, against a
real `squall up`."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import ADMIN_KEY, AUTH, NO_CONFIG, SQUALL, start_squall

APP = """\
import squall

app = squall.App("observed")

@app.function(memory_mb=256)
def hello(event, ctx):
    return {"hello": event}

@app.function(retries=0)
def boom(event, ctx):
    raise ValueError("nope")
"""

# Prices that make the figures easy to check: 1 USD a request, 1000 USD a GB-second.
PRICES = ("--price-requests", "1000000", "--price-gb-second", "1000")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("metrics")
    (path / "app.py").write_text(APP)
    return path


@pytest.fixture(scope="module")
def url(workdir: Path) -> Iterator[str]:
    proc, url = start_squall(workdir, *PRICES)
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
        for n in range(4):
            assert http.post("/api/v1/functions/hello/invoke", content=str(n)).status_code == 200
        assert http.post("/api/v1/functions/boom/invoke", content=b"null").status_code == 502
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert "Traceback" not in (workdir / "up.err").read_text()


def key_with(url: str, *scopes: str) -> str:
    body = {"name": f"scrape-{'-'.join(scopes)}", "scopes": list(scopes)}
    made = httpx.post(f"{url}/api/v1/keys", json=body, headers=AUTH)
    assert made.status_code == 201, made.text
    text: str = made.json()["key"]
    return text


def squall(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SQUALL, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "SQUALL_URL": url,
            "SQUALL_API_KEY": ADMIN_KEY,
            "SQUALL_CONFIG": NO_CONFIG,
            "PATH": str(Path(SQUALL).parent),
            "COLUMNS": "200",
        },
    )


def squall_json(url: str, *args: str) -> Any:
    done = squall(url, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_metrics_need_a_key_with_the_read_scope(url: str) -> None:
    missing = httpx.get(f"{url}/metrics")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json()["error"]["field"] == "authorization"
    bad = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer sq_nope"})
    assert bad.status_code == 401
    invoke_only = key_with(url, "invoke")
    refused = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {invoke_only}"})
    assert refused.status_code == 403
    assert "read" in refused.json()["error"]["message"]


def test_a_read_key_scrapes_prometheus_text(url: str) -> None:
    reader = key_with(url, "read")
    scraped = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {reader}"})
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
    invocations = {
        (s.labels["function"], s.labels["status"]): s.value
        for s in families["squall_invocations"].samples
        if s.name == "squall_invocations_total"
    }
    assert invocations == {("hello", "succeeded"): 4, ("boom", "failed"): 1}
    assert "squall_invocation_duration_seconds" in families
    assert "squall_warm_instances" in families


def test_summary_endpoint_and_its_bad_input(url: str) -> None:
    with httpx.Client(base_url=f"{url}/api/v1", headers=AUTH) as http:
        summary = http.get("/metrics/summary").json()
        rows = {row["function"]: row for row in summary["functions"]}
        assert rows["hello"]["invocations"] == 4 and rows["hello"]["errors"] == 0
        assert rows["boom"]["error_rate"] == 1.0
        assert summary["until"] - summary["since"] == pytest.approx(3600)
        for query, field in (
            ("since=yesterday", "since"),
            ("until=nan", "until"),
            (f"since={time.time() + 100}&until={time.time()}", "since"),
        ):
            answer = http.get(f"/metrics/summary?{query}")
            assert answer.status_code == 400, query
            assert answer.json()["error"]["field"] == field


def test_cost_endpoint_uses_the_configured_prices(url: str) -> None:
    with httpx.Client(base_url=f"{url}/api/v1", headers=AUTH) as http:
        invocations = http.get("/invocations?limit=100").json()["invocations"]
        report = http.get("/cost", params={"by": "function"}).json()
        assert report["prices"] == {"request_usd_per_million": 1000000, "gb_second_usd": 1000}
        rows = {row["function"]: row for row in report["rows"]}
        hello_ms = sum(i["billed_ms"] for i in invocations if i["function"] == "hello")
        assert rows["hello"]["billed_ms"] == hello_ms
        assert rows["hello"]["gb_seconds"] == pytest.approx(256 / 1024 * hello_ms / 1000)
        assert rows["hello"]["total_usd"] == pytest.approx(4 + 1000 * 0.25 * hello_ms / 1000)
        assert report["total"]["requests"] == 5
        wrong = http.get("/cost", params={"by": "week"})
        assert wrong.status_code == 400
        assert wrong.json()["error"]["field"] == "by"


def test_squall_metrics_prints_a_table_and_json(url: str) -> None:
    done = squall(url, "metrics", "--since", "10m")
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[1]
    for column in ("function", "invocations", "errors", "error rate", "throttles", "p50", "p99"):
        assert column in header
    [hello] = [line for line in done.stdout.splitlines() if line.strip().startswith("hello")]
    assert hello.split()[1:4] == ["4", "0", "0.0%"]
    [boom] = [line for line in done.stdout.splitlines() if line.strip().startswith("boom")]
    assert boom.split()[1:4] == ["1", "1", "100.0%"]
    summary = squall_json(url, "metrics")
    assert {row["function"] for row in summary["functions"]} == {"hello", "boom"}


def test_squall_cost_by_function_and_day(url: str) -> None:
    by_function = squall_json(url, "cost")
    assert by_function["by"] == "function"
    assert by_function["total"]["requests"] == 5
    by_day = squall_json(url, "cost", "--by", "day", "--since", "7d")
    [today] = by_day["rows"]
    assert today["day"] == time.strftime("%Y-%m-%d", time.gmtime())
    assert today["total_usd"] == pytest.approx(by_function["total"]["total_usd"])
    table = squall(url, "cost", "--by", "function")
    assert table.returncode == 0, table.stderr
    lines = [line.split() for line in table.stdout.splitlines() if line.strip()]
    assert lines[0][-2:] == ["total", "USD"]
    [footer] = [line for line in lines if line[0] == "total"]
    assert footer[1] == "5"  # requests
    # 5 requests at 1 USD each, plus the compute at 1000 USD a GB-second
    assert footer[-1] == f"${by_function['total']['total_usd']:,.2f}"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("metrics", "--since", "soon"), "--since"),
        (("cost", "--since", "1 week"), "--since"),
        (("cost", "--by", "week"), "--by"),
    ],
)
def test_bad_options_exit_2_naming_the_option(url: str, args: tuple[str, ...], option: str) -> None:
    done = squall(url, *args)
    assert done.returncode == 2
    assert option in done.stderr


def test_help_describes_the_commands(url: str) -> None:
    for command in ("metrics", "cost"):
        done = squall(url, command, "--help")
        assert done.returncode == 0
        assert "--since" in done.stdout and "--json" in done.stdout
    assert "--by" in squall(url, "cost", "--help").stdout
