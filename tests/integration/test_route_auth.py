"""Function routes behind api_key and JWT auth, rate limits (429 + Retry-After), and secrets."""

from __future__ import annotations

import hashlib
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from support import AUTH, SQUALL, client_env, start_squall

JWT_SECRET = "j" * 48

APP = """\
import hashlib
import squall

app = squall.App(
    "guarded",
    jwt=squall.JwtConfig(issuer="https://id.example", audience="shop", secret_env="T_JWT_SECRET"),
)

@app.http("GET /private", auth="api_key", scopes=["read"])
def private(request, ctx):
    return {"private": True}

@app.http("GET /me", auth="jwt")
def me(request, ctx):
    return {"sub": request.claims["sub"]}

@app.http("GET /orders", auth="jwt", scopes=["orders:read"])
def orders(request, ctx):
    return {"orders": []}

@app.function(secrets=["API_TOKEN"])
def uses_secret(event, ctx):
    return {"sha256": hashlib.sha256(ctx.secrets["API_TOKEN"].encode()).hexdigest()}
"""

LIMITED_APP = """\
import squall

app = squall.App("limited", key_rate_limit=squall.RateLimit(rate=0.2, burst=3))

@app.http("GET /limited", rate_limit=squall.RateLimit(rate=0.2, burst=2))
def limited(request, ctx):
    return {"ok": True}
"""


def serve(workdir: Path, app: str) -> Iterator[str]:
    (workdir / "app.py").write_text(app)
    proc, url = start_squall(workdir, env={"T_JWT_SECRET": JWT_SECRET})
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0, (workdir / "up.err").read_text()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("guarded")


@pytest.fixture(scope="module")
def url(workdir: Path) -> Iterator[str]:
    yield from serve(workdir, APP)


@pytest.fixture
def http(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client


def key_with(http: httpx.Client, *scopes: str) -> str:
    response = http.post("/api/v1/keys", json={"name": "r", "scopes": list(scopes)}, headers=AUTH)
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def token(**overrides: Any) -> str:
    claims: dict[str, Any] = {
        "sub": "ada",
        "iss": "https://id.example",
        "aud": "shop",
        "exp": int(time.time()) + 60,
    }
    claims.update(overrides)
    return jwt.encode(claims, JWT_SECRET, "HS256")


def test_api_key_routes(http: httpx.Client) -> None:
    missing = http.get("/private")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert http.get("/private", headers={"X-Api-Key": "sq_nope-0000000000000"}).status_code == 401
    invoke_only = key_with(http, "invoke")
    read_only = key_with(http, "read")
    for key in (invoke_only, read_only):
        response = http.get("/private", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 403
        assert response.json()["error"]["type"] == "Forbidden"
    both = key_with(http, "invoke", "read")
    assert http.get("/private", headers={"Authorization": f"Bearer {both}"}).json() == {
        "private": True
    }
    assert http.get("/private", headers={"X-Api-Key": both}).status_code == 200


def test_jwt_routes_hand_the_claims_to_the_handler(http: httpx.Client) -> None:
    response = http.get("/me", headers={"Authorization": f"Bearer {token()}"})
    assert response.status_code == 200, response.text
    assert response.json() == {"sub": "ada"}


@pytest.mark.parametrize(
    ("claims", "raw", "reason"),
    [
        (None, None, "missing"),
        ({"exp": -30}, None, "expired"),
        ({"nbf": 600}, None, "not_yet_valid"),
        ({"iss": "https://evil.example"}, None, "issuer"),
        ({"aud": "other"}, None, "audience"),
        ({}, "bad-signature", "signature"),
        (None, "not-a-token", "malformed"),
    ],
)
def test_bad_jwts_are_401_with_the_reason(
    http: httpx.Client, claims: dict[str, Any] | None, raw: str | None, reason: str
) -> None:
    # Tokens are made when the test runs, so a long suite cannot expire the "valid" parts.
    now = int(time.time())
    headers: dict[str, str] = {}
    if claims is not None:
        made = token(**{k: now + v if k in ("exp", "nbf") else v for k, v in claims.items()})
        if raw == "bad-signature":
            made = made[:-4] + "AAAA"
        headers["Authorization"] = f"Bearer {made}"
    elif raw is not None:
        headers["Authorization"] = f"Bearer {raw}"
    response = http.get("/me", headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["type"], error["reason"]) == ("Unauthorized", reason)


def test_a_jwt_without_the_route_scope_is_403(http: httpx.Client) -> None:
    plain = http.get("/orders", headers={"Authorization": f"Bearer {token()}"})
    assert plain.status_code == 403
    scoped = token(scope="profile orders:read")
    assert http.get("/orders", headers={"Authorization": f"Bearer {scoped}"}).status_code == 200


# secrets


def test_secrets_over_the_api_never_show_their_values(http: httpx.Client, workdir: Path) -> None:
    value = "s3cr3t-value-for-the-api-test"
    first = http.put("/api/v1/secrets/API_TOKEN", json={"value": value}, headers=AUTH)
    assert first.status_code == 201
    assert value not in first.text
    again = http.put("/api/v1/secrets/OTHER", json={"value": "x"}, headers=AUTH)
    assert http.put("/api/v1/secrets/OTHER", json={"value": "y"}, headers=AUTH).status_code == 200
    assert again.status_code == 201
    listing = http.get("/api/v1/secrets", headers=AUTH)
    assert value not in listing.text
    names = [s["name"] for s in listing.json()["secrets"]]
    assert {"API_TOKEN", "OTHER"} <= set(names)
    assert set(listing.json()["secrets"][0]) == {"name", "created_at", "updated_at"}
    # Encrypted at rest; never logged.
    data = workdir / ".squall"
    stored = b"".join(p.read_bytes() for p in data.glob("squall.db*"))
    assert value.encode() not in stored
    assert stat.S_IMODE((data / "master.key").stat().st_mode) == 0o600
    assert value not in (workdir / "up.out").read_text() + (workdir / "up.err").read_text()
    assert http.delete("/api/v1/secrets/OTHER", headers=AUTH).status_code == 200
    assert http.delete("/api/v1/secrets/OTHER", headers=AUTH).status_code == 404


def test_a_function_sees_its_declared_secret(http: httpx.Client, workdir: Path) -> None:
    value = "another-value-only-the-function-sees"
    assert http.put("/api/v1/secrets/API_TOKEN", json={"value": value}, headers=AUTH).is_success
    invoked = http.post("/api/v1/functions/uses-secret/invoke", content=b"{}", headers=AUTH)
    assert invoked.status_code == 200, invoked.text
    assert invoked.json() == {"sha256": hashlib.sha256(value.encode()).hexdigest()}
    record = http.get(
        f"/api/v1/invocations/{invoked.headers['x-squall-invocation-id']}", headers=AUTH
    )
    assert value not in record.text
    assert value not in (workdir / "up.out").read_text() + (workdir / "up.err").read_text()


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("API_TOKEN", {}, "value"),
        ("API_TOKEN", {"value": 42}, "value"),
        ("API_TOKEN", {"value": "x", "extra": 1}, "extra"),
        ("1BAD", {"value": "x"}, "name"),
    ],
)
def test_bad_secret_requests_are_400(
    http: httpx.Client, name: str, body: dict[str, Any], field: str
) -> None:
    response = http.put(f"/api/v1/secrets/{name}", json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert "42" not in response.text


def squall(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SQUALL, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=client_env(SQUALL_URL=url),
    )


def test_secrets_from_the_cli(url: str, tmp_path: Path) -> None:
    piped = squall(url, "secrets", "set", "CLI_SECRET", stdin="piped-value\n")
    assert piped.returncode == 0, piped.stderr
    listed = squall(url, "secrets", "ls", "--json")
    assert "CLI_SECRET" in listed.stdout and "piped-value" not in listed.stdout
    value_file = tmp_path / "value.txt"
    value_file.write_text("from-a-file\n")
    from_file = squall(url, "secrets", "set", "FILE_SECRET", "--value-file", str(value_file))
    assert from_file.returncode == 0, from_file.stderr
    assert "FILE_SECRET" in squall(url, "secrets", "ls").stdout
    assert squall(url, "secrets", "rm", "FILE_SECRET").returncode == 0
    gone = squall(url, "secrets", "rm", "FILE_SECRET")
    assert gone.returncode == 2 and "NotFound" in gone.stderr
    empty = squall(url, "secrets", "set", "EMPTY", stdin="")
    assert empty.returncode == 2


# rate limits


@pytest.fixture(scope="module")
def limited_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(tmp_path_factory.mktemp("limited"), LIMITED_APP)


def test_per_key_rate_limit_is_429_with_retry_after(limited_url: str) -> None:
    with httpx.Client(base_url=limited_url, headers=AUTH, timeout=30) as http:
        other = http.post("/api/v1/keys", json={"name": "o", "scopes": ["read"]}).json()["key"]
        codes = [http.get("/api/v1/functions").status_code for _ in range(2)]
        limited = http.get("/api/v1/functions")
        assert codes == [200, 200]
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 5
        assert limited.json()["error"]["type"] == "TooManyRequests"
        # Another key has its own bucket.
        fresh = http.get("/api/v1/functions", headers={"Authorization": f"Bearer {other}"})
        assert fresh.status_code == 200


def test_per_route_rate_limit_is_429_with_retry_after(limited_url: str) -> None:
    with httpx.Client(base_url=limited_url, timeout=30) as http:
        assert [http.get("/limited").status_code for _ in range(2)] == [200, 200]
        limited = http.get("/limited")
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
