"""End to end: articles written over HTTP are mirrored into the FTS5 index by the change
stream — inserts, updates and deletes — and a batch delivered again changes nothing."""

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


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("cdc")
    shutil.copy(HERE / "app.py", workdir / "app.py")
    proc, url = start_squall(workdir)
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def search(url: str, query: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/search", params={"q": query})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def found_ids(url: str, query: str, expected: set[str]) -> set[str] | None:
    ids = {hit["id"] for hit in search(url, query)}
    return ids if ids == expected else None


def test_inserts_updates_and_deletes_reach_the_index(url: str) -> None:
    articles = {
        "a1": {"title": "Brewing green tea", "body": "Water at eighty degrees, two minutes."},
        "a2": {"title": "Espresso at home", "body": "Fine grind, nine bars, thirty seconds."},
        "a3": {"title": "Cold brew tea", "body": "Twelve hours in the fridge."},
    }
    for key, article in articles.items():
        assert httpx.put(f"{url}/articles/{key}", json=article).status_code == 200
    wait_for(lambda: found_ids(url, "tea", {"a1", "a3"}))
    [hit] = search(url, "grind")
    assert hit["id"] == "a2" and "[grind]" in hit["snippet"]

    httpx.put(f"{url}/articles/a2", json={"title": "Moka pot", "body": "Stovetop coffee."})
    wait_for(lambda: found_ids(url, "stovetop", {"a2"}))
    assert search(url, "grind") == []  # the old text left the index with the update
    assert httpx.delete(f"{url}/articles/a3").status_code == 204
    wait_for(lambda: found_ids(url, "tea", {"a1"}))


def test_a_batch_delivered_again_changes_nothing(url: str) -> None:
    article = {"title": "Matcha whisking", "body": "A bamboo whisk, a zigzag.", "fail_once": True}
    assert httpx.put(f"{url}/articles/m1", json=article).status_code == 200
    wait_for(lambda: found_ids(url, "whisk*", {"m1"}))

    def replayed() -> dict[str, int] | None:
        stats: dict[str, int] = httpx.get(f"{url}/index/stats").json()
        return stats if stats.get("replays_skipped", 0) >= 1 else None

    wait_for(replayed)
    assert [hit["id"] for hit in search(url, "matcha")] == ["m1"]  # indexed once


def test_a_bad_query_or_article_is_refused(url: str) -> None:
    assert httpx.get(f"{url}/search", params={"q": ""}).status_code == 400
    bad = httpx.get(f"{url}/search", params={"q": 'title:"unclosed'})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "q"
    refused = httpx.put(f"{url}/articles/x", json={"title": 7})
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "title"
