"""Tables over HTTP and the CLI against a real `squall up`: tables made and deleted, items
put, read, updated, deleted, queried by index with pages, bad input naming the field, 404s,
scopes, and a change trigger fed by writes made over the API."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support import AUTH, SQUALL, client_env, start_squall, wait_for

APP = """
import squall

app = squall.App("tables-api")
app.table("events", partition_key="user", sort_key="at", key_types={"at": "N"},
          indexes={"by_kind": {"partition_key": "kind", "sort_key": "at"}}, stream="new")


@app.on_change("events", pattern={"new": {"kind": ["click"]}})
def clicks(event, ctx):
    return [r["new"]["at"] for r in event["records"]]
"""


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("tables")
    (workdir / "app.py").write_text(APP)
    proc, url = start_squall(workdir)
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def cli(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SQUALL, *args, "--url", url], capture_output=True, text=True, timeout=60,
        env=client_env(), check=False, input=stdin,
    )


def _api(url: str) -> httpx.Client:
    return httpx.Client(base_url=f"{url}/api/v1", headers=AUTH, timeout=30)


def test_items_over_http_with_versions_conditions_and_index_pages(url: str) -> None:
    with _api(url) as http:
        for at in range(7):
            kind = "click" if at % 2 == 0 else "view"
            put = http.put("/tables/events/items",
                           json={"item": {"user": "u1", "at": at, "kind": kind}})
            assert put.status_code == 200, put.text
            assert put.json()["_version"] == 1
        got = http.get("/tables/events/items/u1", params={"sort": "2"})
        assert got.json() == {"user": "u1", "at": 2, "kind": "click", "_version": 1}
        updated = http.patch("/tables/events/items/u1", params={"sort": "2"},
                             json={"add": {"seen": 1}, "if_version": 1})
        assert updated.json()["_version"] == 2 and updated.json()["seen"] == 1
        stale = http.patch("/tables/events/items/u1", params={"sort": "2"},
                           json={"set": {"x": 1}, "if_version": 1})
        assert stale.status_code == 409
        assert stale.json()["error"]["type"] == "ConditionFailed"
        assert stale.json()["error"]["key"] == {"user": "u1", "at": 2}
        pages: list[Any] = []
        cursor = None
        while True:
            body: dict[str, Any] = {"partition": "click", "index": "by_kind", "limit": 2}
            if cursor:
                body["cursor"] = cursor
            page = http.post("/tables/events/query", json=body).json()
            pages.append([item["at"] for item in page["items"]])
            cursor = page["cursor"]
            if cursor is None:
                break
        assert pages == [[0, 2], [4, 6]]
        between = http.post("/tables/events/query",
                            json={"partition": "u1", "sort": ["between", 2, 4]}).json()
        assert [item["at"] for item in between["items"]] == [2, 3, 4]
        deleted = http.delete("/tables/events/items/u1", params={"sort": "6"})
        assert deleted.json()["old"]["at"] == 6
        assert http.get("/tables/events/items/u1", params={"sort": "6"}).status_code == 404
        tx = http.post("/tables/transact", json={"ops": [
            {"op": "put", "table": "events", "item": {"user": "u2", "at": 1}},
            {"op": "check", "table": "events", "key": {"user": "u1", "at": 0}, "if_version": 9},
        ]})
        assert tx.status_code == 409 and tx.json()["error"]["field"] == "ops[1].if_version"
        assert http.get("/tables/events/items/u2", params={"sort": "1"}).status_code == 404

    def clicked() -> list[Any] | None:
        with _api(url) as http:
            runs = http.get("/invocations", params={"function": "clicks"}).json()["invocations"]
        return runs or None

    assert wait_for(clicked, timeout=20)


def test_bad_input_over_http_names_the_field(url: str) -> None:
    with _api(url) as http:
        cases = [
            (http.put("/tables/events/items", json={"item": {"user": "u"}}), 400, "item.at"),
            (http.put("/tables/events/items", json={"item": {"user": 1, "at": 1}}), 400,
             "item.user"),
            (http.put("/tables/events/items", json={}), 400, "item"),
            (http.put("/tables/events/items", json={"item": {"user": "u", "at": 1},
                                                    "colour": 1}), 400, "colour"),
            (http.get("/tables/events/items/u1"), 400, "sort"),
            (http.get("/tables/events/items/u1", params={"sort": "soon"}), 400, "sort"),
            (http.post("/tables/events/query", json={"partition": "u1", "limit": 0}), 400,
             "limit"),
            (http.post("/tables/events/query", json={"partition": "u1", "cursor": "x"}), 400,
             "cursor"),
            (http.post("/tables", json={"name": "t", "partition_key": "id",
                                        "key_types": {"id": "X"}}), 400, "key_types.id"),
            (http.post("/tables", json={"name": "t"}), 400, "partition_key"),
            (http.get("/tables/nope"), 404, "table"),
            (http.get("/tables/nope/items"), 404, "table"),
            (http.put("/tables/events/items",
                      json={"item": {"user": "u", "at": 1, "big": "x" * 410_000}}), 413, "item"),
        ]
        for response, status, field in cases:
            assert response.status_code == status, (field, response.text)
            assert response.json()["error"].get("field") == field, response.text
        assert "409600" in cases[-1][0].json()["error"]["message"]
        assert http.delete("/tables/events").status_code == 409  # the app's own


def test_the_cli_makes_a_table_writes_reads_and_deletes(url: str) -> None:
    made = cli(url, "tables", "create", "notes", "--partition-key", "id", "--key-type", "id=N",
               "--ttl-attribute", "exp", "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["key_types"] == {"id": "N"}
    put = cli(url, "tables", "put", "notes", '{"id": 7, "text": "hi"}', "--json")
    assert put.returncode == 0, put.stderr
    assert json.loads(put.stdout)["_version"] == 1
    again = cli(url, "tables", "put", "notes", "-", "--if-not-exists", stdin='{"id": 7}')
    assert again.returncode == 2 and "ConditionFailed" in again.stderr
    got = cli(url, "tables", "get", "notes", "7")
    assert json.loads(got.stdout) == {"id": 7, "text": "hi", "_version": 1}
    queried = cli(url, "tables", "query", "notes", "7", "--json")
    assert [i["text"] for i in json.loads(queried.stdout)["items"]] == ["hi"]
    scanned = cli(url, "tables", "scan", "notes", "--limit", "5")
    assert json.loads(scanned.stdout.splitlines()[0])["id"] == 7
    listed = cli(url, "tables", "list", "--json")
    assert {t["name"] for t in json.loads(listed.stdout)["tables"]} == {"events", "notes"}
    bad = cli(url, "tables", "put", "notes", '{"text": "no key"}')
    assert bad.returncode == 2 and "'id'" in bad.stderr and "number" in bad.stderr
    bad_json = cli(url, "tables", "put", "notes", "{nope")
    assert bad_json.returncode == 2 and "ITEM" in bad_json.stderr
    missing = cli(url, "tables", "get", "nope", "1")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    gone = cli(url, "tables", "delete-item", "notes", "7", "--json")
    assert json.loads(gone.stdout)["old"]["text"] == "hi"
    assert cli(url, "tables", "delete", "notes", "--yes").returncode == 0
    helped = subprocess.run([SQUALL, "tables", "query", "--help"], capture_output=True,
                            text=True, timeout=60, env=client_env(), check=False)
    assert helped.returncode == 0 and "--index" in helped.stdout


def test_scopes_a_read_key_queries_a_publish_key_writes_only_admin_makes_tables(url: str) -> None:
    with _api(url) as http:
        keys = {
            scope: http.post("/keys", json={"name": f"t-{scope}", "scopes": [scope]}).json()["key"]
            for scope in ("read", "publish")
        }
    item = {"item": {"user": "scoped", "at": 1}}
    with httpx.Client(base_url=f"{url}/api/v1", timeout=30,
                      headers={"Authorization": f"Bearer {keys['read']}"}) as reader:
        assert reader.post("/tables/events/query", json={"partition": "u1"}).status_code == 200
        assert reader.get("/tables/events/items").status_code == 200
        assert reader.put("/tables/events/items", json=item).status_code == 403
    with httpx.Client(base_url=f"{url}/api/v1", timeout=30,
                      headers={"Authorization": f"Bearer {keys['publish']}"}) as writer:
        assert writer.put("/tables/events/items", json=item).status_code == 200
        patched = writer.patch("/tables/events/items/scoped", params={"sort": "1"},
                               json={"set": {"x": 1}})
        assert patched.status_code == 200
        assert writer.delete("/tables/events/items/scoped", params={"sort": "1"}).status_code \
            == 200
        made = writer.post("/tables", json={"name": "nope", "partition_key": "id"})
        assert made.status_code == 403
