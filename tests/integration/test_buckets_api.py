"""Buckets over the admin API and presigned URLs, against a real `squall up`: streamed puts,
ranges, metadata, listing, copies, deletes, limits, bad input and signatures."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from support import ADMIN_KEY, start_squall

APP = """\
import squall

app = squall.App("buckets")
app.bucket("uploads")
app.bucket("tiny", max_object_bytes=1000)
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("buckets")
    (path / "app.py").write_text(APP)
    return path


@pytest.fixture(scope="module")
def url(workdir: Path) -> Iterator[str]:
    proc, url = start_squall(workdir)
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert "Traceback" not in (workdir / "up.err").read_text()


@pytest.fixture
def http(url: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=30) as client:
        yield client


def put(
    http: httpx.Client, key: str, body: bytes, bucket: str = "uploads", **headers: str
) -> httpx.Response:
    return http.put(f"/buckets/{bucket}/object", params={"key": key}, content=body, headers=headers)


def test_put_get_head_with_metadata_and_etag(http: httpx.Client) -> None:
    body = os.urandom(3000)
    response = put(
        http,
        "docs/a b.bin",
        body,
        **{"content-type": "application/x-test", "x-squall-meta-owner": "ann"},
    )
    assert response.status_code == 200, response.text
    info = response.json()
    assert info["size"] == 3000 and info["etag"] == hashlib.md5(body).hexdigest()
    assert info["metadata"] == {"owner": "ann"} and response.headers["etag"] == f'"{info["etag"]}"'
    got = http.get("/buckets/uploads/object", params={"key": "docs/a b.bin"})
    assert got.status_code == 200 and got.content == body
    assert got.headers["content-type"] == "application/x-test"
    assert got.headers["x-squall-meta-owner"] == "ann"
    assert got.headers["etag"] == f'"{info["etag"]}"' and got.headers["accept-ranges"] == "bytes"
    head = http.head("/buckets/uploads/object", params={"key": "docs/a b.bin"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == "3000"


@pytest.mark.parametrize(
    ("header", "status", "part"),
    [
        ("bytes=0-9", 206, slice(0, 10)),
        ("bytes=10-", 206, slice(10, None)),
        ("bytes=-5", 206, slice(95, None)),
        ("bytes=90-500", 206, slice(90, None)),
        ("bytes=50-10", 200, slice(None)),  # invalid: ignored
        ("items=1-2", 200, slice(None)),
        ("bytes=0-1,5-6", 200, slice(None)),  # several ranges: the whole object
    ],
)
def test_ranges(http: httpx.Client, header: str, status: int, part: slice) -> None:
    body = bytes(range(100))
    put(http, "range.bin", body)
    got = http.get(
        "/buckets/uploads/object", params={"key": "range.bin"}, headers={"Range": header}
    )
    assert got.status_code == status and got.content == body[part]
    if status == 206:
        first = len(body[: part.start or 0]) if part.start is not None else 0
        first = 95 if header == "bytes=-5" else first
        assert got.headers["content-range"] == f"bytes {first}-{first + len(got.content) - 1}/100"


def test_unsatisfiable_range_is_416(http: httpx.Client) -> None:
    put(http, "range.bin", b"x" * 10)
    got = http.get(
        "/buckets/uploads/object", params={"key": "range.bin"}, headers={"Range": "bytes=10-"}
    )
    assert got.status_code == 416
    assert got.json()["error"]["field"] == "Range" and got.json()["error"]["size"] == 10


def test_list_with_prefix_delimiter_and_pages(http: httpx.Client) -> None:
    http.post("/buckets", json={"name": "listing"})
    keys = ["a", "p/1", "p/2", "p/q/3", "z"]
    for key in keys:
        put(http, key, key.encode(), bucket="listing")
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = http.get("/buckets/listing/objects", params=params).json()
        seen += [o["key"] for o in page["objects"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == keys
    page = http.get("/buckets/listing/objects", params={"delimiter": "/"}).json()
    assert [o["key"] for o in page["objects"]] == ["a", "z"] and page["prefixes"] == ["p/"]
    page = http.get("/buckets/listing/objects", params={"prefix": "p/", "delimiter": "/"}).json()
    assert [o["key"] for o in page["objects"]] == ["p/1", "p/2"] and page["prefixes"] == ["p/q/"]


def test_copy_and_delete(http: httpx.Client) -> None:
    put(http, "src.txt", b"copy me", **{"x-squall-meta-k": "v"})
    copied = http.post("/buckets/uploads/copy", json={"key": "src.txt", "to_key": "dst.txt"})
    assert copied.status_code == 201 and copied.json()["metadata"] == {"k": "v"}
    assert http.get("/buckets/uploads/object", params={"key": "dst.txt"}).content == b"copy me"
    deleted = http.delete("/buckets/uploads/object", params={"key": "src.txt"})
    assert deleted.json() == {"bucket": "uploads", "key": "src.txt", "deleted": True}
    gone = http.get("/buckets/uploads/object", params={"key": "src.txt"})
    assert gone.status_code == 404 and gone.json()["error"]["field"] == "key"
    again = http.delete("/buckets/uploads/object", params={"key": "src.txt"})
    assert again.json()["deleted"] is False
    assert http.get("/buckets/uploads/object", params={"key": "dst.txt"}).content == b"copy me"


def test_over_the_limit_is_413_with_both_sizes_and_nothing_is_stored(
    http: httpx.Client, workdir: Path
) -> None:
    response = put(http, "big", b"x" * 1001, bucket="tiny")
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["size"] == 1001 and error["limit"] == 1000

    def chunked() -> Iterator[bytes]:  # no Content-Length: refused as it streams
        for _ in range(3):
            yield b"y" * 600

    response = http.put("/buckets/tiny/object", params={"key": "big"}, content=chunked())
    assert response.status_code == 413 and response.json()["error"]["limit"] == 1000
    assert http.get("/buckets/tiny/object", params={"key": "big"}).status_code == 404
    assert list((workdir / ".squall" / "buckets" / "staging").iterdir()) == []


@pytest.mark.parametrize("key", ["a/../b", "..", "./a", "nul\x00x", "k" * 1025, ""])
def test_bad_keys_are_400_naming_the_key(http: httpx.Client, key: str) -> None:
    response = put(http, key, b"x")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "key"


def test_unknown_buckets_and_bad_names(http: httpx.Client) -> None:
    response = put(http, "k", b"x", bucket="nope")
    assert response.status_code == 404 and response.json()["error"]["field"] == "bucket"
    for name in ("Bad", "ab", "-ab", "a..b", "x" * 64):
        response = http.post("/buckets", json={"name": name})
        assert response.status_code == 400 and response.json()["error"]["field"] == "name"


def test_bucket_crud(http: httpx.Client) -> None:
    created = http.post("/buckets", json={"name": "made.here", "max_object_bytes": 10})
    assert created.status_code == 201 and created.json()["declared_by"] == "api"
    assert http.post("/buckets", json={"name": "made.here"}).status_code == 409
    put(http, "k", b"12345", bucket="made.here")
    assert http.get("/buckets/made.here").json()["objects"] == 1
    assert http.delete("/buckets/made.here").status_code == 409  # not empty
    http.delete("/buckets/made.here/object", params={"key": "k"})
    assert http.delete("/buckets/made.here").json() == {"deleted": "made.here"}
    assert http.get("/buckets/made.here").status_code == 404
    assert http.delete("/buckets/uploads").status_code == 409  # declared by the app
    names = [b["name"] for b in http.get("/buckets").json()["buckets"]]
    assert "uploads" in names and "made.here" not in names


def test_object_writes_need_the_publish_scope(http: httpx.Client, url: str) -> None:
    made = http.post("/keys", json={"name": "reader", "scopes": ["read"]}).json()
    reader = {"Authorization": f"Bearer {made['key']}"}
    put(http, "r.txt", b"read me")
    with httpx.Client(base_url=f"{url}/api/v1", headers=reader) as client:
        assert client.get("/buckets/uploads/object", params={"key": "r.txt"}).status_code == 200
        refused = client.put("/buckets/uploads/object", params={"key": "r.txt"}, content=b"no")
        assert refused.status_code == 403
        assert client.post("/buckets/uploads/presign", json={"key": "r.txt"}).status_code == 403


def test_presigned_get_and_put_without_a_key(http: httpx.Client, url: str) -> None:
    put(http, "photos/signed.jpg", b"jpeg bytes")
    signed = http.post(
        "/buckets/uploads/presign", json={"key": "photos/signed.jpg", "expires_s": 60}
    ).json()
    assert signed["url"].startswith(url) and signed["method"] == "GET"
    got = httpx.get(signed["url"])
    assert got.status_code == 200 and got.content == b"jpeg bytes"
    ranged = httpx.get(signed["url"], headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206 and ranged.content == b"jpeg"
    assert httpx.put(signed["url"], content=b"nope").status_code == 403  # signed for GET
    upload = http.post(
        "/buckets/uploads/presign", json={"key": "in/new.txt", "method": "PUT"}
    ).json()
    stored = httpx.put(upload["url"], content=b"uploaded", headers={"content-type": "text/plain"})
    assert stored.status_code == 200, stored.text
    check = http.get("/buckets/uploads/object", params={"key": "in/new.txt"})
    assert check.content == b"uploaded" and check.headers["content-type"] == "text/plain"


def test_tampered_or_expired_urls_are_403_with_a_json_error(http: httpx.Client, url: str) -> None:
    put(http, "a.txt", b"a")
    put(http, "b.txt", b"b")
    signed = http.post("/buckets/uploads/presign", json={"key": "a.txt"}).json()["url"]
    parts = urlsplit(signed)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    tampered = [
        signed.replace("/a.txt", "/b.txt"),
        f"{url}{parts.path}?{urlencode({**query, 'expires': int(query['expires']) + 1})}",
        f"{url}{parts.path}?{urlencode({**query, 'signature': '0' * 64})}",
        f"{url}{parts.path}",
    ]
    for bad in tampered:
        response = httpx.get(bad)
        assert response.status_code == 403, bad
        assert response.json()["error"]["type"] == "Forbidden"
    short = http.post("/buckets/uploads/presign", json={"key": "a.txt", "expires_s": 1}).json()
    time.sleep(2.1)
    expired = httpx.get(short["url"])
    assert expired.status_code == 403 and expired.json()["error"]["field"] == "expires"


def test_a_large_object_streams_in_and_out(http: httpx.Client) -> None:
    size = 64 * 1024 * 1024 + 123
    block = os.urandom(1024 * 1024)

    def body() -> Iterator[bytes]:
        sent = 0
        while sent < size:
            chunk = block[: min(len(block), size - sent)]
            sent += len(chunk)
            yield chunk

    digest = hashlib.md5()
    sent = 0
    while sent < size:
        chunk = block[: min(len(block), size - sent)]
        digest.update(chunk)
        sent += len(chunk)
    response = http.put(
        "/buckets/uploads/object",
        params={"key": "big.bin"},
        content=body(),
        headers={"content-length": str(size)},
    )
    assert response.status_code == 200 and response.json()["etag"] == digest.hexdigest()
    received = hashlib.md5()
    total = 0
    with http.stream("GET", "/buckets/uploads/object", params={"key": "big.bin"}) as got:
        for chunk in got.iter_bytes():
            received.update(chunk)
            total += len(chunk)
    assert total == size and received.hexdigest() == digest.hexdigest()
