"""`squall es` and `squall projections` against a real `squall up`, and the admin API's
answers to bad input (4xx naming the field, nothing appended)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support import AUTH, SQUALL, client_env, start_squall, wait_for

APP = """\
import squall

app = squall.App("es-cli")

@app.projection("counts", from_streams=["order-"], partition_key="stream")
def counts(event, table, ctx):
    item = table.get({"stream": event["stream"]}) or {"stream": event["stream"], "n": 0}
    item.pop("_version", None)
    item["n"] += 1
    table.put(item)
"""


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("es-cli")
    (workdir / "app.py").write_text(APP)
    proc, url = start_squall(workdir)
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert "Traceback" not in (workdir / "up.err").read_text()


def squall(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SQUALL, *args, "--url", url], capture_output=True, text=True, env=client_env(),
        timeout=60,
    )


def ok_json(url: str, *args: str) -> Any:
    done = squall(url, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_append_read_list_meta_delete(url: str) -> None:
    first = ok_json(url, "es", "append", "order-1", "OrderPlaced", "-d", '{"total": 3}',
                    "--expected", "no_stream")
    assert first["version"] == 1
    ok_json(url, "es", "append", "order-1", "OrderPaid", "--expected", "1")
    conflict = squall(url, "es", "append", "order-1", "OrderPaid", "--expected", "1")
    assert conflict.returncode == 2
    assert "expected version 1, the stream is at version 2" in conflict.stderr
    page = ok_json(url, "es", "read", "order-1")
    assert [e["type"] for e in page["events"]] == ["OrderPlaced", "OrderPaid"]
    back = ok_json(url, "es", "read", "order-1", "--backward", "-n", "1")
    assert [e["version"] for e in back["events"]] == [2]
    shown = squall(url, "es", "read", "order-1")
    assert shown.returncode == 0 and "OrderPaid" in shown.stdout
    listed = ok_json(url, "es", "streams", "--prefix", "order-")
    assert [s["stream"] for s in listed["streams"]] == ["order-1"]
    meta = ok_json(url, "es", "meta", "order-1", "--max-count", "1")
    assert meta["metadata"] == {"max_count": 1}
    assert len(ok_json(url, "es", "read", "order-1")["events"]) == 1
    deleted = ok_json(url, "es", "delete", "order-1")
    assert deleted["deleted"] is True
    refused = squall(url, "es", "append", "order-1", "OrderPaid")
    assert refused.returncode == 2 and "deleted" in refused.stderr


def test_bad_input_exits_2_and_the_api_answers_4xx(url: str) -> None:
    for args in (["es", "read", "bad name"], ["es", "append", "order-2", "X", "-d", "{no"],
                 ["es", "append", "order-2", "X", "--expected", "-3"]):
        done = squall(url, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("error:"), done.stderr
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
        cases: list[tuple[str, Any, str]] = [
            ("order-2", {"events": [{"type": "A", "data": 1}], "expected_version": -1},
             "expected_version"),
            ("order-2", {"events": []}, "events"),
            ("order-2", {"events": [{"type": "", "data": 1}]}, "events[0].type"),
            ("order-2", {"events": [{"type": "A"}], "extra": 1}, "extra"),
            ("bad%20name", {"events": [{"type": "A", "data": 1}]}, "stream"),
        ]
        for stream, body, field in cases:
            response = http.post(f"/api/v1/es/streams/{stream}/events", json=body)
            assert response.status_code == 400, response.text
            assert response.json()["error"]["field"] == field, response.text
        conflict = http.post("/api/v1/es/streams/order-3/events",
                             json={"events": [{"type": "A", "data": 1}], "expected_version": 4})
        assert conflict.status_code == 409
        error = conflict.json()["error"]
        assert error["type"] == "WrongExpectedVersion"
        assert (error["expected"], error["current"]) == (4, 0)
        assert http.get("/api/v1/es/streams/order-2").status_code == 404
        assert http.get("/api/v1/es/streams/order-3").status_code == 404
        assert http.get("/api/v1/projections/nope").status_code == 404


def test_projections_ls_and_rebuild_with_progress(url: str) -> None:
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
        for n in range(25):
            response = http.post(f"/api/v1/es/streams/order-{10 + n % 5}/events",
                                 json={"events": [{"type": "Touched", "data": n}]})
            assert response.status_code == 201, response.text

        def counts() -> dict[str, int]:
            items = http.get("/api/v1/tables/counts/items", params={"limit": 100}).json()
            return {i["stream"]: i["n"] for i in items["items"]}

        wait_for(lambda: True if http.get("/api/v1/projections/counts").json()["lag"] == 0
                 else None, 30)
        before = counts()
    rows = ok_json(url, "projections", "ls")["projections"]
    assert [r["name"] for r in rows] == ["counts"] and rows[0]["lag"] == 0
    rebuilt = squall(url, "projections", "rebuild", "counts")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "generation 2 is live" in rebuilt.stdout
    status = ok_json(url, "projections", "status", "counts")
    assert (status["generation"], status["rebuild"]) == (2, None)
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
        time.sleep(0.1)
        assert counts() == before
    assert squall(url, "projections", "rebuild", "nope").returncode == 2
