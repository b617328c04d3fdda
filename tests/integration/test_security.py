"""Admin API security over real HTTP: keys, 401 vs 403, request ids, body limits, CORS."""

from __future__ import annotations

import json
import signal
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import ADMIN_KEY, AUTH, SQUALL, client_env, start_squall, wait_for

MAX_SYNC = 1024

APP = """\
import squall

app = squall.App("sec", cors=squall.CorsConfig(allow_origins=("https://shop.example",)))

@app.function()
def hello(event, ctx):
    return {"hello": (event or {}).get("name", "world")}

@app.http("GET /open")
def open_route(request, ctx):
    return {"open": True}
"""


def stop(proc: subprocess.Popen[bytes], workdir: Path) -> None:
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0, (workdir / "up.err").read_text()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("security")
    (path / "app.py").write_text(APP)
    return path


@pytest.fixture(scope="module")
def url(workdir: Path) -> Iterator[str]:
    proc, url = start_squall(workdir, "--max-sync-payload", str(MAX_SYNC))
    yield url
    stop(proc, workdir)
    assert "Traceback" not in (workdir / "up.err").read_text()


@pytest.fixture
def http(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_key(http: httpx.Client, *scopes: str, name: str = "t") -> dict[str, Any]:
    response = http.post("/api/v1/keys", json={"name": name, "scopes": list(scopes)}, headers=AUTH)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


# bootstrap


def admin_key_lines(workdir: Path) -> list[str]:
    return [line for line in (workdir / "up.out").read_text().splitlines() if "admin key" in line]


def test_a_generated_admin_key_is_printed_on_the_first_start_only(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    proc, url = start_squall(tmp_path, env={"SQUALL_ADMIN_KEY": ""})
    try:
        # The URL lines come first; the rest of the banner may still be on its way.
        [line] = wait_for(lambda: admin_key_lines(tmp_path) or None)
        key = line.split()[2]
        assert key.startswith("sq_")
        assert httpx.get(f"{url}/api/v1/functions", headers=bearer(key)).status_code == 200
        # The last admin key cannot be revoked: that would lock everyone out.
        [admin] = httpx.get(f"{url}/api/v1/keys", headers=bearer(key)).json()["keys"]
        refused = httpx.delete(f"{url}/api/v1/keys/{admin['id']}", headers=bearer(key))
        assert refused.status_code == 409
    finally:
        stop(proc, tmp_path)
    proc, url = start_squall(tmp_path, env={"SQUALL_ADMIN_KEY": ""})
    try:
        wait_for(lambda: "press Ctrl-C" in (tmp_path / "up.out").read_text() or None)
        assert admin_key_lines(tmp_path) == []
        assert key not in (tmp_path / "up.out").read_text()
        assert httpx.get(f"{url}/api/v1/functions", headers=bearer(key)).status_code == 200
    finally:
        stop(proc, tmp_path)


def test_squall_admin_key_becomes_the_admin_key_and_is_not_printed(
    http: httpx.Client, workdir: Path
) -> None:
    assert http.get("/api/v1/functions", headers=AUTH).status_code == 200
    assert admin_key_lines(workdir) == []
    assert ADMIN_KEY not in (workdir / "up.out").read_text() + (workdir / "up.err").read_text()


# 401 and 403


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("sq_unknown-key-000000000000000"), {"Authorization": f"Basic {ADMIN_KEY}"}],
    ids=["missing", "unknown", "wrong-scheme"],
)
def test_no_valid_key_is_401_with_a_bearer_challenge(
    http: httpx.Client, headers: dict[str, str]
) -> None:
    response = http.get("/api/v1/functions", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert error_of(response)["type"] == "Unauthorized"


def test_probes_and_the_openapi_document_need_no_key(http: httpx.Client) -> None:
    assert http.get("/healthz").status_code == 200
    assert http.get("/readyz").status_code == 200
    assert http.get("/api/v1/openapi.json").status_code == 200


def test_an_unknown_api_path_is_401_before_404(http: httpx.Client) -> None:
    assert http.get("/api/v1/nothing-here").status_code == 401
    assert http.get("/api/v1/nothing-here", headers=AUTH).status_code == 404


INVOKE = ("POST", "/api/v1/functions/hello/invoke", {})
CASES = {
    "list functions": ("GET", "/api/v1/functions", None, "read"),
    "list invocations": ("GET", "/api/v1/invocations", None, "read"),
    "invoke": ("POST", "/api/v1/functions/hello/invoke", {}, "invoke"),
    "update config": ("PATCH", "/api/v1/functions/hello", {"description": "x"}, "admin"),
    "redrive": ("POST", "/api/v1/dead-letters/redrive", {"ids": []}, "admin"),
    "purge": ("POST", "/api/v1/dead-letters/purge", {"ids": []}, "admin"),
    "list keys": ("GET", "/api/v1/keys", None, "admin"),
    "list secrets": ("GET", "/api/v1/secrets", None, "admin"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("scope", ["read", "invoke", "publish", "admin"])
def test_each_action_needs_its_scope(http: httpx.Client, case: str, scope: str) -> None:
    method, path, body, needed = CASES[case]
    key = new_key(http, scope)["key"]
    response = http.request(method, path, json=body, headers=bearer(key))
    if scope in (needed, "admin"):
        assert response.status_code < 300, response.text
    else:
        assert response.status_code == 403, response.text
        error = error_of(response)
        assert error["type"] == "Forbidden"
        assert f"lacks the {needed} scope" in error["message"]


# keys


def test_keys_are_shown_once_listed_without_secrets_and_revocable(http: httpx.Client) -> None:
    created = new_key(http, "invoke", "read", name="ci")
    key = created["key"]
    assert created["scopes"] == ["invoke", "read"]
    assert created["prefix"] == key[:10]
    listing = http.get("/api/v1/keys", headers=AUTH)
    assert key not in listing.text
    [row] = [k for k in listing.json()["keys"] if k["id"] == created["id"]]
    assert set(row) == {
        "id",
        "name",
        "prefix",
        "scopes",
        "created_at",
        "revoked_at",
        "last_used_at",
    }
    assert http.get("/api/v1/functions", headers=bearer(key)).status_code == 200
    revoked = http.delete(f"/api/v1/keys/{created['id']}", headers=AUTH)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    after = http.get("/api/v1/functions", headers=bearer(key))
    assert after.status_code == 401
    assert http.get("/api/v1/functions", headers={"X-Api-Key": key}).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scopes": ["root"]}, "scopes"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": "read"}, "scopes"),
        ({"scopes": ["read"]}, "name"),
        ({"name": "", "scopes": ["read"]}, "name"),
        ({"name": "x", "scopes": ["read"], "key": "mine"}, "key"),
    ],
)
def test_bad_key_requests_are_400_naming_the_field(
    http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    before = len(http.get("/api/v1/keys", headers=AUTH).json()["keys"])
    response = http.post("/api/v1/keys", json=body, headers=AUTH)
    assert response.status_code == 400
    assert error_of(response)["field"] == field
    assert len(http.get("/api/v1/keys", headers=AUTH).json()["keys"]) == before


def test_revoking_an_unknown_key_is_404(http: httpx.Client) -> None:
    assert http.delete("/api/v1/keys/key_nope", headers=AUTH).status_code == 404


def squall(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SQUALL, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=client_env(SQUALL_URL=url, **env),
    )


def test_keys_from_the_cli(url: str) -> None:
    created = squall(url, "keys", "create", "--name", "cli", "--scope", "invoke,read")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("sq_") and "not shown again" in created.stderr
    listed = json.loads(squall(url, "keys", "ls", "--json").stdout)["keys"]
    [row] = [k for k in listed if k["prefix"] == key[:10]]
    assert row["name"] == "cli" and row["scopes"] == ["invoke", "read"]
    assert key not in squall(url, "keys", "ls").stdout
    as_new_key = squall(url, "invoke", "hello", SQUALL_API_KEY=key)
    assert as_new_key.returncode == 0, as_new_key.stderr
    forbidden = squall(url, "keys", "ls", SQUALL_API_KEY=key)
    assert forbidden.returncode == 1
    assert forbidden.stderr.startswith("error: Forbidden: ")
    assert squall(url, "keys", "revoke", row["id"]).returncode == 0
    refused = squall(url, "invoke", "hello", SQUALL_API_KEY=key)
    assert refused.returncode == 1
    assert "Unauthorized" in refused.stderr and "squall login" in refused.stderr


def test_cli_rejects_unknown_scopes_before_calling(url: str) -> None:
    done = squall(url, "keys", "create", "--name", "x", "--scope", "read,root")
    assert done.returncode == 2
    assert "'root'" in done.stderr


def test_login_saves_a_private_config_the_cli_then_uses(url: str, tmp_path: Path) -> None:
    config = tmp_path / "conf" / "config.json"
    bad = squall(
        "http://unused",
        "login",
        "--url",
        url,
        "--key",
        "sq_wrong-key-00000000000",
        SQUALL_CONFIG=str(config),
        SQUALL_API_KEY="",
    )
    assert bad.returncode == 1 and not config.exists()
    done = squall(
        "http://unused",
        "login",
        "--url",
        url,
        "--key",
        ADMIN_KEY,
        SQUALL_CONFIG=str(config),
        SQUALL_API_KEY="",
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text()) == {"url": url, "key": ADMIN_KEY}
    env = client_env(SQUALL_CONFIG=str(config))
    del env["SQUALL_API_KEY"]
    listed = subprocess.run([SQUALL, "ls", "--json"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0, listed.stderr
    # --key beats the config file.
    flagged = subprocess.run(
        [SQUALL, "ls", "--key", "sq_wrong-key-00000000000"], capture_output=True, text=True, env=env
    )
    assert flagged.returncode == 1 and "Unauthorized" in flagged.stderr


# request ids


def test_a_good_request_id_is_echoed_everywhere(http: httpx.Client) -> None:
    rid = "trace-abc_123.XYZ"
    for response in (
        http.get("/healthz", headers={"X-Request-Id": rid}),
        http.get("/api/v1/functions", headers={"X-Request-Id": rid}),  # a 401
        http.get("/open", headers={"X-Request-Id": rid}),
    ):
        assert response.headers["x-request-id"] == rid
    invoked = http.post(
        "/api/v1/functions/hello/invoke", content=b"{}", headers={**AUTH, "X-Request-Id": rid}
    )
    record = http.get(
        f"/api/v1/invocations/{invoked.headers['x-squall-invocation-id']}", headers=AUTH
    ).json()
    assert record["request_id"] == rid


@pytest.mark.parametrize(
    "value", [None, "has space", "x" * 201, "tab\there", b"caf\xc3\xa9"], ids=repr
)
def test_a_missing_or_bad_request_id_is_replaced(http: httpx.Client, value: Any) -> None:
    headers = {} if value is None else {"X-Request-Id": value}
    response = http.get("/healthz", headers=headers)
    generated = response.headers["x-request-id"]
    assert len(generated) == 32 and int(generated, 16) >= 0
    assert response.headers.get_list("x-request-id") == [generated]


# body limit


def raw_request(url: str, head: str, body: bytes) -> bytes:
    """Send ``head`` and part of a body, never the rest; return whatever the server answers."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b"}}" in chunks[-1]:
                break
        return b"".join(chunks)


def test_an_oversized_content_length_is_413_before_the_body_is_read(url: str) -> None:
    head = (
        "POST /api/v1/functions/hello/invoke HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {ADMIN_KEY}\r\nContent-Length: 1000000000\r\n"
    )
    answer = raw_request(url, head, b'{"name": "')  # ~1 GB promised, 10 bytes sent
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b'"PayloadTooLarge"' in answer
    assert b"1000000000" in answer


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(url: str) -> None:
    head = (
        "POST /api/v1/functions/hello/invoke HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {ADMIN_KEY}\r\nTransfer-Encoding: chunked\r\n"
    )
    chunk = b"x" * (MAX_SYNC + 100)
    answer = raw_request(url, head, f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b'"PayloadTooLarge"' in answer


# CORS


def test_cors_preflight_from_an_allowed_origin(http: httpx.Client) -> None:
    preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    for path in ("/open", "/api/v1/functions/hello/invoke"):
        response = http.options(path, headers=preflight)
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == "https://shop.example"
        assert "POST" in response.headers["access-control-allow-methods"]
    simple = http.get("/open", headers={"Origin": "https://shop.example"})
    assert simple.headers["access-control-allow-origin"] == "https://shop.example"
    assert "x-request-id" in simple.headers["access-control-expose-headers"]


def test_cors_refuses_other_origins(http: httpx.Client) -> None:
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    response = http.options("/open", headers=preflight)
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    simple = http.get("/open", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers
