"""The admin API over real HTTP: `squall up` in a subprocess, httpx against it."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import AUTH, start_squall, wait_for

MAX_SYNC = 4096
MAX_ASYNC = 2048

APP = """\
import time
import squall

app = squall.App("t")

@app.function()
def hello(event, ctx):
    print("hi from stdout")
    ctx.logger.warning("careful")
    return {"hello": (event or {}).get("name", "world")}

@app.function(retries=0)
def boom(event, ctx):
    raise ValueError("nope")

@app.function()
def page(event, ctx):
    headers = {"Content-Type": "text/html", "X-Page": "1"}
    return squall.Response("<b>hi</b>", status=201, headers=headers)

@app.function(timeout_s=1)
def slow(event, ctx):
    time.sleep(10)
"""



def stop_squall(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("gateway")
    (workdir / "app.py").write_text(APP)
    proc, url = start_squall(
        workdir, "--max-sync-payload", str(MAX_SYNC), "--max-async-payload", str(MAX_ASYNC)
    )
    yield url
    assert stop_squall(proc) == 0, (workdir / "up.err").read_text()
    assert "Traceback" not in (workdir / "up.err").read_text()


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30, headers=AUTH) as client:
        yield client


def invoke(http: httpx.Client, name: str, body: bytes = b"", **headers: str) -> httpx.Response:
    return http.post(f"/api/v1/functions/{name}/invoke", content=body, headers=headers)


def finished(http: httpx.Client, invocation_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        record: dict[str, Any] = http.get(f"/api/v1/invocations/{invocation_id}").json()
        return record if record["status"] in ("succeeded", "failed", "dead_lettered") else None

    return wait_for(probe)


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert "Traceback" not in response.text or error["type"] == "FunctionError"
    return error


# health


def test_health_and_readiness(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


# sync invoke


def test_sync_invoke_returns_the_result(http: httpx.Client) -> None:
    response = invoke(http, "hello", b'{"name": "squall"}')
    assert response.status_code == 200
    assert response.json() == {"hello": "squall"}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-squall-cold"] in ("true", "false")
    record = http.get(f"/api/v1/invocations/{response.headers['x-squall-invocation-id']}").json()
    assert record["status"] == "succeeded"
    assert record["result"] == {"hello": "squall"}


def test_empty_body_is_null(http: httpx.Client) -> None:
    assert invoke(http, "hello").json() == {"hello": "world"}


def test_second_call_is_warm(http: httpx.Client) -> None:
    invoke(http, "hello")
    assert invoke(http, "hello").headers["x-squall-cold"] == "false"


def test_handler_response_sets_status_headers_and_content_type(http: httpx.Client) -> None:
    response = invoke(http, "page")
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-page"] == "1"
    assert response.text == "<b>hi</b>"
    assert "x-squall-function-error" not in response.headers


def test_function_error_is_502_with_the_error(http: httpx.Client) -> None:
    response = invoke(http, "boom")
    assert response.status_code == 502
    assert response.headers["x-squall-function-error"] == "FunctionError"
    error = error_of(response)
    assert error["type"] == "FunctionError"
    assert "nope" in error["message"]
    assert error["invocation_id"] == response.headers["x-squall-invocation-id"]
    record = http.get(f"/api/v1/invocations/{error['invocation_id']}").json()
    assert record["status"] == "failed"


def test_timeout_is_504(http: httpx.Client) -> None:
    response = invoke(http, "slow")
    assert response.status_code == 504
    assert error_of(response)["type"] == "Timeout"


def test_unknown_function_is_404_naming_it(http: httpx.Client) -> None:
    response = invoke(http, "ghost")
    assert response.status_code == 404
    error = error_of(response)
    assert error["type"] == "NotFound"
    assert "'ghost'" in error["message"]
    assert "x-squall-invocation-id" not in response.headers


def test_malformed_payload_is_400_with_the_position(http: httpx.Client) -> None:
    response = invoke(http, "hello", b'{"name":\n  }')
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "InvalidInput"
    assert (error["line"], error["column"]) == (2, 3)
    assert "line 2 column 3" in error["message"]


@pytest.mark.parametrize(
    ("headers", "limit"),
    [({}, MAX_SYNC), ({"X-Squall-Invocation-Type": "Event"}, MAX_ASYNC)],
)
def test_oversized_payload_is_413_with_both_sizes(
    http: httpx.Client, headers: dict[str, str], limit: int
) -> None:
    body = b'"' + b"x" * limit + b'"'
    response = invoke(http, "hello", body, **headers)
    assert response.status_code == 413
    error = error_of(response)
    assert error["type"] == "PayloadTooLarge"
    assert (error["size"], error["limit"]) == (len(body), limit)
    assert str(len(body)) in error["message"]
    assert str(limit) in error["message"]


# async invoke


@pytest.mark.parametrize(
    "headers",
    [
        {"Prefer": "respond-async"},
        {"Prefer": "wait=5, respond-async"},
        {"X-Squall-Invocation-Type": "event"},
    ],
)
def test_async_invoke_is_202_with_a_status_url(http: httpx.Client, headers: dict[str, str]) -> None:
    response = invoke(http, "hello", b'{"name": "later"}', **headers)
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["status"] == "queued"
    assert accepted["status_url"] == f"/api/v1/invocations/{accepted['invocation_id']}"
    assert response.headers["location"] == accepted["status_url"]
    record = finished(http, accepted["invocation_id"])
    assert record["status"] == "succeeded"
    assert record["result"] == {"hello": "later"}
    assert record["trigger"] == "async"


def test_bad_invocation_type_is_400(http: httpx.Client) -> None:
    response = invoke(http, "hello", b"", **{"X-Squall-Invocation-Type": "Later"})
    assert response.status_code == 400
    assert error_of(response)["field"] == "X-Squall-Invocation-Type"


def test_idempotency_key_runs_once(http: httpx.Client) -> None:
    key = f"k-{time.monotonic_ns()}"
    first = invoke(http, "hello", b'{"name": "a"}', **{"Idempotency-Key": key})
    again = invoke(http, "hello", b'{"name": "b"}', **{"Idempotency-Key": key})
    assert first.status_code == again.status_code == 200
    assert again.headers["x-squall-invocation-id"] == first.headers["x-squall-invocation-id"]
    assert again.json() == {"hello": "a"}


def test_async_idempotency_key_queues_once(http: httpx.Client) -> None:
    headers = {"Prefer": "respond-async", "Idempotency-Key": f"ak-{time.monotonic_ns()}"}
    first = invoke(http, "hello", b"{}", **headers).json()
    again = invoke(http, "hello", b"{}", **headers).json()
    assert again["invocation_id"] == first["invocation_id"]


# functions


def test_list_and_get_functions(http: httpx.Client) -> None:
    functions = {fn["name"]: fn for fn in http.get("/api/v1/functions").json()["functions"]}
    assert set(functions) == {"hello", "boom", "page", "slow"}
    assert functions["boom"]["retries"] == 0
    assert set(functions["hello"]["stats"]) >= {"warm", "busy", "starting"}
    one = http.get("/api/v1/functions/slow").json()
    assert one["timeout_s"] == 1
    assert http.get("/api/v1/functions/ghost").status_code == 404


def test_patch_function(http: httpx.Client) -> None:
    response = http.patch("/api/v1/functions/page", json={"memory_mb": 256})
    assert response.status_code == 200
    assert response.json()["memory_mb"] == 256
    assert http.get("/api/v1/functions/page").json()["memory_mb"] == 256


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"memory_mb": 1}', "memory_mb"),
        (b'{"name": "x"}', "name"),
        (b'{"memory_mb": ', "body"),
        (b"[1]", "body"),
    ],
)
def test_patch_function_rejects_bad_changes(http: httpx.Client, body: bytes, field: str) -> None:
    response = http.patch("/api/v1/functions/slow", content=body)
    assert response.status_code == 400
    assert error_of(response)["field"] == field
    assert http.get("/api/v1/functions/slow").json()["memory_mb"] == 128


# invocations and logs


def test_list_invocations_pages_with_a_cursor(http: httpx.Client) -> None:
    ids = [invoke(http, "hello").headers["x-squall-invocation-id"] for _ in range(3)]
    page = http.get("/api/v1/invocations", params={"function": "hello", "limit": 2}).json()
    assert [inv["id"] for inv in page["invocations"]] == ids[::-1][:2]
    assert page["next"] == ids[1]
    assert all("result" not in inv and "logs" not in inv for inv in page["invocations"])
    older = http.get(
        "/api/v1/invocations", params={"function": "hello", "limit": 1, "before": page["next"]}
    ).json()
    assert [inv["id"] for inv in older["invocations"]] == [ids[0]]


def test_list_invocations_filters_by_status(http: httpx.Client) -> None:
    invoke(http, "boom")
    page = http.get("/api/v1/invocations", params={"status": "failed", "limit": 1000}).json()
    assert page["invocations"]
    assert {inv["status"] for inv in page["invocations"]} == {"failed"}
    assert page["next"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "ten"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "100000"}, "limit"),
        ({"status": "sleeping"}, "status"),
    ],
)
def test_list_invocations_rejects_bad_query(
    http: httpx.Client, params: dict[str, str], field: str
) -> None:
    response = http.get("/api/v1/invocations", params=params)
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "InvalidInput"
    assert error["field"] == field


def test_invocation_logs(http: httpx.Client) -> None:
    invocation_id = invoke(http, "hello").headers["x-squall-invocation-id"]
    logs = http.get(f"/api/v1/invocations/{invocation_id}/logs").json()["logs"]
    messages = [row["message"] for row in logs]
    assert "hi from stdout" in messages
    assert "careful" in messages
    assert {row["invocation_id"] for row in logs} == {invocation_id}
    assert http.get("/api/v1/invocations/nope/logs").status_code == 404


def test_unknown_invocation_is_404(http: httpx.Client) -> None:
    response = http.get("/api/v1/invocations/0000")
    assert response.status_code == 404
    assert error_of(response)["type"] == "NotFound"


def test_logs_filter_and_follow_cursor(http: httpx.Client) -> None:
    start = http.get("/api/v1/logs", params={"limit": 5000}).json()["next"]
    invocation_id = invoke(http, "hello").headers["x-squall-invocation-id"]
    page = http.get("/api/v1/logs", params={"after": start, "function": "hello"}).json()
    assert {row["invocation_id"] for row in page["logs"]} == {invocation_id}
    assert page["next"] == max(row["seq"] for row in page["logs"])
    # Nothing new after the cursor: an empty page that keeps the cursor.
    assert http.get("/api/v1/logs", params={"after": page["next"]}).json() == {
        "logs": [],
        "next": page["next"],
    }
    warnings = http.get("/api/v1/logs", params={"after": start, "level": "warning"}).json()["logs"]
    assert [row["message"] for row in warnings] == ["careful"]
    grepped = http.get("/api/v1/logs", params={"after": start, "grep": "stdout"}).json()
    assert [row["message"] for row in grepped["logs"]] == ["hi from stdout"]
    assert grepped["next"] == page["next"]


@pytest.mark.parametrize(("param", "value"), [("after", "x"), ("since", "yesterday")])
def test_logs_reject_bad_query(http: httpx.Client, param: str, value: str) -> None:
    response = http.get("/api/v1/logs", params={param: value})
    assert response.status_code == 400
    assert error_of(response)["field"] == param


def test_logs_cursor_past_the_largest_is_out_of_range(http: httpx.Client) -> None:
    assert http.get("/api/v1/logs", params={"after": str(2**63 - 1)}).status_code == 200
    response = http.get("/api/v1/logs", params={"after": "3990348376641754890240"})
    assert response.status_code == 400
    assert "out of range" in error_of(response)["message"]


# dead letters


def dead_letters(http: httpx.Client) -> list[dict[str, Any]]:
    letters: list[dict[str, Any]] = http.get(
        "/api/v1/dead-letters", params={"function": "boom"}
    ).json()["dead_letters"]
    return letters


def test_dead_letters_list_redrive_purge(http: httpx.Client) -> None:
    http.post("/api/v1/dead-letters/purge", json={"function": "boom"})
    response = invoke(http, "boom", b'{"n": 1}', Prefer="respond-async")
    invocation_id = response.json()["invocation_id"]
    assert finished(http, invocation_id)["status"] == "dead_lettered"
    [letter] = dead_letters(http)
    assert letter["invocation_id"] == invocation_id
    assert letter["payload"] == {"n": 1}
    assert letter["error"]["type"] == "FunctionError"

    redriven = http.post("/api/v1/dead-letters/redrive", json={"ids": [letter["id"]]}).json()
    assert redriven == {"redriven": [invocation_id]}
    wait_for(lambda: dead_letters(http) or None)
    assert finished(http, invocation_id)["status"] == "dead_lettered"

    purged = http.post("/api/v1/dead-letters/purge", json={"function": "boom"}).json()
    assert purged == {"purged": 1}
    assert dead_letters(http) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [({"ids": "abc"}, "ids"), ({"function": 3}, "function"), ({"everything": True}, "everything")],
)
def test_dead_letter_actions_validate_the_body(
    http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    for action in ("redrive", "purge"):
        response = http.post(f"/api/v1/dead-letters/{action}", json=body)
        assert response.status_code == 400
        assert error_of(response)["field"] == field


# routing


def test_unknown_route_and_method_are_json(http: httpx.Client) -> None:
    missing = http.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert error_of(missing) == {
        "type": "NotFound",
        "message": "no route for GET /api/v1/nothing-here",
    }
    wrong = http.delete("/api/v1/functions/hello")
    assert wrong.status_code == 405
    assert error_of(wrong)["type"] == "MethodNotAllowed"


# in-process: the app factory on a platform we control


async def test_readyz_is_503_once_the_platform_stops(tmp_path: Path) -> None:
    from squall.engine.platform import Platform, PlatformConfig
    from squall.gateway import create_app

    (tmp_path / "app.py").write_text(APP)
    platform = await Platform.start(
        PlatformConfig(app=str(tmp_path / "app.py"), data_dir=tmp_path / "data")
    )
    transport = httpx.ASGITransport(app=create_app(platform))
    # A fresh data dir: the platform generated its admin key on this first start.
    auth = {"Authorization": f"Bearer {platform.bootstrap_key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway", headers=auth
    ) as client:
        try:
            assert (await client.get("/readyz")).status_code == 200
            response = await client.post("/api/v1/functions/hello/invoke", content=b"{}")
            assert response.json() == {"hello": "world"}
        finally:
            await platform.stop()
        stopped = await client.get("/readyz")
        assert stopped.status_code == 503
        assert stopped.json() == {"status": "unavailable"}
        assert (await client.get("/healthz")).status_code == 200
