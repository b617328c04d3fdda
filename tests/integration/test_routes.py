"""Function routes over real HTTP: requests in, responses out, faults as JSON errors."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import start_squall, wait_for

ADMIN_KEY = "sq_routes_test_admin_key_0123456789"

APP = """
import time

import squall

app = squall.App("routes", debug={debug})


@app.http("GET /hello")
def hello(request, ctx):
    return {{"hello": request.query.get("name", "world")}}


@app.http("POST /orders/{{order_id}}")
@app.http("PUT /orders/{{order_id}}/items/{{item}}")
def order(request, ctx):
    return {{
        "method": request.method,
        "path": request.path,
        "params": request.path_params,
        "query": request.query_list,
        "custom": request.headers.get("X-Custom"),
        "cookies": request.cookies,
        "json": request.json() if request.body else None,
        "request_id": request.request_id,
        "route": request.route,
        "client": request.client,
        "ctx_request": ctx.invocation_id,
    }}


@app.http("POST /bytes")
def echo_bytes(request, ctx):
    return squall.Response(request.body, headers={{"Content-Type": "application/octet-stream"}})


@app.http("GET /made")
def made(request, ctx):
    response = squall.Response("created!", status=201, headers={{"X-Thing": "yes"}})
    response.set_cookie("session", "abc123", httponly=True, max_age=60)
    return response


@app.http("GET /slow", timeout_s=0.5)
def slow(request, ctx):
    time.sleep(1.5)
    return {{"late": True}}


@app.http("GET /boom")
def boom(request, ctx):
    raise ValueError("kaboom")


@app.http("GET /inject")
def inject(request, ctx):
    return squall.Response("x", headers={{"X-Evil": "a\\r\\nSet-Cookie: stolen=1"}})


@app.http("GET /files/{{name}}")
def files(request, ctx):
    return {{"name": request.path_params["name"]}}


@app.http("POST /later")
def later(request, ctx):
    ctx.logger.warning("later got %s", request.body.decode())
    return {{"got": request.json()}}
"""


def serve(tmp_path_factory: pytest.TempPathFactory, debug: bool) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("routes")
    (workdir / "app.py").write_text(APP.format(debug=debug))
    proc, url = start_squall(workdir, env={"SQUALL_ADMIN_KEY": ADMIN_KEY})
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0, (workdir / "up.err").read_text()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(tmp_path_factory, debug=False)


@pytest.fixture(scope="module")
def debug_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(tmp_path_factory, debug=True)


@pytest.fixture
def http(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client


def test_plain_value_is_json_200(http: httpx.Client) -> None:
    response = http.get("/hello", params={"name": "Ada"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"hello": "Ada"}
    assert response.headers["x-squall-invocation-id"]


def test_request_object_carries_everything(http: httpx.Client) -> None:
    response = http.post(
        "/orders/o-42",
        params=[("a", "1"), ("a", "2"), ("b", "x y")],
        json={"total": 12.5},
        headers={"X-Custom": "yes", "X-Request-Id": "req-123", "Cookie": "theme=dark; lang=fr"},
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["method"] == "POST"
    assert data["path"] == "/orders/o-42"
    assert data["params"] == {"order_id": "o-42"}
    assert data["query"] == [["a", "1"], ["a", "2"], ["b", "x y"]]
    assert data["custom"] == "yes"
    assert data["cookies"] == {"theme": "dark", "lang": "fr"}
    assert data["json"] == {"total": 12.5}
    assert data["request_id"] == "req-123"
    assert data["route"] == "/orders/{order_id}"
    assert data["client"].startswith("127.0.0.1:")
    assert response.headers["x-request-id"] == "req-123"
    assert data["ctx_request"] == response.headers["x-squall-invocation-id"]


def test_several_routes_reach_one_function(http: httpx.Client) -> None:
    response = http.put("/orders/o-1/items/i-9")
    assert response.status_code == 200
    assert response.json()["params"] == {"order_id": "o-1", "item": "i-9"}
    assert response.json()["method"] == "PUT"


def test_a_bad_request_id_is_replaced(http: httpx.Client) -> None:
    response = http.post("/orders/o-1", headers={"X-Request-Id": "has space"})
    generated = response.headers["x-request-id"]
    assert generated != "has space"
    assert response.json()["request_id"] == generated


def test_binary_bodies_round_trip_byte_exact(http: httpx.Client) -> None:
    body = bytes(range(256)) * 513
    response = http.post("/bytes", content=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content == body


def test_response_status_headers_and_cookies(http: httpx.Client) -> None:
    response = http.get("/made")
    assert response.status_code == 201
    assert response.text == "created!"
    assert response.headers["x-thing"] == "yes"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("session=abc123")
    assert "HttpOnly" in cookie
    assert "Max-Age=60" in cookie


def test_integration_timeout_is_504_and_the_invocation_runs_on(http: httpx.Client) -> None:
    response = http.get("/slow")
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["type"] == "GatewayTimeout"
    assert "0.5 s" in error["message"]
    invocation_id = error["invocation_id"]

    def finished() -> dict[str, object] | None:
        shown = http.get(
            f"/api/v1/invocations/{invocation_id}",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        if shown.status_code != 200:
            return None
        record: dict[str, object] = shown.json()
        return record if record["status"] == "succeeded" else None

    assert wait_for(finished)["result"] == {"late": True}


def test_handler_error_is_502_without_traceback(http: httpx.Client) -> None:
    response = http.get("/boom")
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "FunctionError"
    assert error["error_type"] == "ValueError"
    assert "kaboom" in error["message"]
    assert error["invocation_id"] == response.headers["x-squall-invocation-id"]
    assert "traceback" not in error
    assert "Traceback" not in response.text


def test_debug_apps_show_the_traceback(debug_url: str) -> None:
    response = httpx.get(f"{debug_url}/boom", timeout=30)
    assert response.status_code == 502
    assert "raise ValueError" in response.json()["error"]["traceback"]


def test_header_injection_from_a_handler_is_refused(http: httpx.Client) -> None:
    response = http.get("/inject")
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "InvalidResponse"
    assert "stolen" not in response.headers.get("set-cookie", "")


def test_unknown_route_is_404_naming_method_and_path(http: httpx.Client) -> None:
    response = http.delete("/nowhere/at/all")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "no route for DELETE /nowhere/at/all"


def test_wrong_method_is_405_with_allow(http: httpx.Client) -> None:
    response = http.delete("/hello")
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "MethodNotAllowed"
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD"}


@pytest.mark.parametrize("path", ["/files/%2E%2E", "/files/%2E", "/files/a%00b"])
def test_path_traversal_and_control_characters_are_400(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "name"


def test_encoded_slashes_do_not_escape_the_route(http: httpx.Client) -> None:
    response = http.get("/files/..%2F..%2Fetc%2Fpasswd")
    assert response.status_code in (400, 404)
    assert "root:" not in response.text


def test_async_over_http_is_202_with_a_status_url(http: httpx.Client) -> None:
    response = http.post("/later", json={"n": 3}, headers={"Prefer": "respond-async"})
    assert response.status_code == 202
    body = response.json()
    assert response.headers["location"] == body["status_url"]
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}

    def done() -> dict[str, object] | None:
        record: dict[str, object] = http.get(body["status_url"], headers=auth).json()
        return record if record["status"] == "succeeded" else None

    record = wait_for(done)
    assert record["result"] == {"got": {"n": 3}}
    assert record["trigger"] == "http"
    request_id = response.headers["x-request-id"]
    assert record["request_id"] == request_id
    logs = http.get("/api/v1/logs", params={"request_id": request_id}, headers=auth).json()
    assert [row["message"] for row in logs["logs"]] == ['later got {"n":3}']
    assert {row["request_id"] for row in logs["logs"]} == {request_id}


def test_oversized_body_is_413(url: str, tmp_path: Path) -> None:
    big = b"x" * (6 * 1024 * 1024 + 1)
    response = httpx.post(f"{url}/bytes", content=big, timeout=30)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "PayloadTooLarge"


def test_admin_bodies_must_be_json(http: httpx.Client) -> None:
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    response = http.post(
        "/api/v1/functions/hello/invoke",
        content=b"name=Ada",
        headers={**auth, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert response.json()["error"] == {
        "type": "UnsupportedMediaType",
        "message": "Content-Type 'application/x-www-form-urlencoded' is not JSON:"
        " send application/json",
        "field": "content-type",
    }
    patched = http.patch(
        "/api/v1/functions/hello",
        content=b"<memory>256</memory>",
        headers={**auth, "Content-Type": "application/xml"},
    )
    assert patched.status_code == 415
    unchanged = http.get("/api/v1/functions/hello", headers=auth).json()
    assert unchanged["memory_mb"] == 128
