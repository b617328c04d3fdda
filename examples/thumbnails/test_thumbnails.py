"""End to end: serve the thumbnails app with `squall up`, upload a real PNG and a corrupt one
over the bucket API, and check the thumbnails with Pillow and the dead letter with the CLI."""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from support import AUTH, SQUALL, client_env, start_squall, wait_for

HERE = Path(__file__).parent
OBJECT = "/api/v1/buckets/images/object"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("thumbnails")
    shutil.copy(HERE / "app.py", workdir / "app.py")
    proc, url = start_squall(workdir, "--retry-base", "0.05")
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


@pytest.fixture
def admin(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        yield client


def squall(url: str, *args: str) -> Any:
    done = subprocess.run(
        [SQUALL, *args, "--url", url, "--json"],
        capture_output=True, text=True, timeout=30, check=False, env=client_env(),
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 90)).save(out, format="PNG")
    return out.getvalue()


def upload(admin: httpx.Client, key: str, body: bytes, **meta: str) -> None:
    headers = {"content-type": "image/png", **{f"x-squall-meta-{k}": v for k, v in meta.items()}}
    response = admin.put(OBJECT, params={"key": key}, content=body, headers=headers)
    assert response.status_code in (200, 201), response.text


def fetched(admin: httpx.Client, key: str) -> httpx.Response | None:
    response = admin.get(OBJECT, params={"key": key})
    return response if response.status_code == 200 else None


def runs(url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = squall(url, "invocations", "make-thumbnails",
                                         "--limit", "100")["invocations"]
    return found


def test_an_upload_gets_thumbnails_of_each_size_with_its_type_and_metadata(
    url: str, admin: httpx.Client
) -> None:
    upload(admin, "uploads/cat.png", png(800, 600), owner="ann")
    expected = {"small": (64, 48), "medium": (256, 192), "large": (512, 384)}
    for size, dimensions in expected.items():
        response = wait_for(lambda size=size: fetched(admin, f"thumbs/{size}/cat.png"))
        assert response.headers["content-type"] == "image/png"
        assert response.headers["x-squall-meta-owner"] == "ann"
        assert response.headers["x-squall-meta-source"] == "uploads/cat.png"
        with Image.open(io.BytesIO(response.content)) as thumb:
            assert (thumb.format, thumb.size) == ("PNG", dimensions)

    served = httpx.get(f"{url}/thumbs/medium/cat.png")
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(served.content)) as thumb:
        assert thumb.size == (256, 192)
    signed = httpx.get(f"{url}/thumbs/large/cat.png/url").json()
    assert signed["key"] == "thumbs/large/cat.png"
    with Image.open(io.BytesIO(httpx.get(signed["url"]).content)) as thumb:
        assert thumb.size == (512, 384)
    missing = httpx.get(f"{url}/thumbs/huge/cat.png")
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "size"
    assert httpx.get(f"{url}/thumbs/small/dog.png").json()["error"]["field"] == "name"


def test_writes_under_thumbs_do_not_trigger_the_function(url: str, admin: httpx.Client) -> None:
    upload(admin, "uploads/owl.png", png(300, 300))
    wait_for(lambda: fetched(admin, "thumbs/large/owl.png"))
    before = wait_for(lambda: [r for r in runs(url) if r["status"] == "succeeded"] or None)
    upload(admin, "thumbs/small/manual.png", png(10, 10))
    time.sleep(1.5)  # long enough for an event to be routed had the prefix let it through
    after = runs(url)
    assert len(after) == len(before)
    assert all(r["status"] == "succeeded" for r in after)


def test_a_corrupt_upload_is_retried_then_dead_lettered_with_its_error(
    url: str, admin: httpx.Client
) -> None:
    upload(admin, "uploads/broken.png", b"\x89PNG\r\n\x1a\n this is not an image")

    def dead() -> list[dict[str, Any]] | None:
        letters = squall(url, "dlq", "list", "make-thumbnails")["dead_letters"]
        return letters or None

    [letter] = wait_for(dead, timeout=30)
    assert letter["attempts"] == 3  # the first attempt and two retries
    assert letter["error"]["type"] == "FunctionError"
    assert letter["error"]["error_type"] == "CorruptImage"
    assert "uploads/broken.png is not an image" in letter["error"]["message"]
    api = admin.get("/api/v1/dead-letters", params={"function": "make-thumbnails"}).json()
    assert [d["id"] for d in api["dead_letters"]] == [letter["id"]]
    assert fetched(admin, "thumbs/small/broken.png") is None
