"""Streams over HTTP and the CLI against a real `squall up`: put, read by shard and position,
describe with consumer lag, bad input with the field named, exit codes and --json."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support import AUTH, SQUALL, client_env, start_squall, wait_for

from squall.model.streams import MAX_RECORD_BYTES, shard_for

APP = """
import squall

app = squall.App("streams-api")
app.stream_resource("clicks", shards=3, retention_s=3600)


@app.stream("clicks", batch_size=50, starting_position="trim_horizon")
def count(event, ctx):
    return len(event["records"])
"""


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("streams")
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


def test_put_read_and_describe_over_http(url: str) -> None:
    with _api(url) as http:
        one = http.post("/streams/clicks/records", json={"data": {"n": 0}, "partition_key": "u1"})
        assert one.status_code == 200, one.text
        shard = shard_for("u1", 3)
        [first] = one.json()["records"]
        assert first["shard"] == shard
        batch = http.post(
            "/streams/clicks/records",
            json={"records": [{"data": {"n": n}, "partition_key": "u1"} for n in range(1, 6)]},
        )
        assert [r["sequence"] for r in batch.json()["records"]] == list(
            range(first["sequence"] + 1, first["sequence"] + 6)
        )
        page = http.get(
            f"/streams/clicks/shards/{shard}/records",
            params={"after": first["sequence"], "limit": 2},
        ).json()
        assert [r["data"]["n"] for r in page["records"]] == [1, 2]
        assert page["records"][0]["partition_key"] == "u1"
        assert page["next_after"] == first["sequence"] + 2
        rest = http.get(
            f"/streams/clicks/shards/{shard}/records", params={"after": page["next_after"]}
        ).json()
        assert [r["data"]["n"] for r in rest["records"]] == [3, 4, 5]

        def caught_up() -> dict[str, Any] | None:
            described = http.get("/streams/clicks").json()
            lag = [c for c in described["consumers"] if c["shard"] == shard]
            return described if lag and lag[0]["behind"] == 0 else None

        described = wait_for(caught_up, timeout=30)
        detail = described["shard_details"][shard]
        assert detail["last_sequence"] == first["sequence"] + 5
        assert {c["function"] for c in described["consumers"]} == {"count"}
        assert "clicks" in [s["name"] for s in http.get("/streams").json()["streams"]]


def test_bad_input_is_refused_with_the_field_named(url: str) -> None:
    with _api(url) as http:
        missing = http.post("/streams/nope/records", json={"data": 1, "partition_key": "k"})
        assert missing.status_code == 404 and missing.json()["error"]["field"] == "stream"
        assert http.get("/streams/nope").status_code == 404
        assert http.get("/streams/clicks/shards/3/records").status_code == 404
        assert http.get("/streams/clicks/shards/x/records").json()["error"]["field"] == "shard"
        empty = http.post("/streams/clicks/records", json={"data": 1, "partition_key": ""})
        assert empty.status_code == 400
        assert empty.json()["error"]["field"] == "partition_key"
        long_key = http.post(
            "/streams/clicks/records",
            json={"records": [{"data": 1, "partition_key": "a"},
                              {"data": 1, "partition_key": "k" * 257}]},
        )
        assert long_key.status_code == 400
        assert long_key.json()["error"]["field"] == "records[1].partition_key"
        big = http.post(
            "/streams/clicks/records", json={"data": "x" * MAX_RECORD_BYTES, "partition_key": "k"}
        )
        assert big.status_code == 413
        error = big.json()["error"]
        assert error["size"] == MAX_RECORD_BYTES + 3 and error["limit"] == MAX_RECORD_BYTES
        unknown = http.post("/streams/clicks/records", json={"data": 1, "partition_key": "k",
                                                              "extra": 1})
        assert unknown.json()["error"]["field"] == "extra"
        # Nothing of the refused puts landed: the long key's batch was refused whole.
        described = http.get("/streams/clicks").json()
        assert sum(s["records"] for s in described["shard_details"]) == sum(
            s["head"] for s in described["shard_details"]
        )


def test_the_cli_lists_shows_puts_and_reads(url: str) -> None:
    put = cli(url, "streams", "put", "clicks", "--partition-key", "cli-user",
              "--data", '{"page": "/"}', "--json")
    assert put.returncode == 0, put.stderr
    result = json.loads(put.stdout)
    assert result["shard"] == shard_for("cli-user", 3)
    from_stdin = cli(url, "streams", "put", "clicks", "-p", "cli-user", "--data", "-",
                     stdin='{"page": "/about"}')
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert f"shard {result['shard']} sequence {result['sequence'] + 1}" in from_stdin.stdout
    read = cli(url, "streams", "read", "clicks", "--shard", str(result["shard"]),
               "--after", str(result["sequence"] - 1), "--json")
    assert read.returncode == 0, read.stderr
    page = json.loads(read.stdout)
    assert [r["data"] for r in page["records"]] == [{"page": "/"}, {"page": "/about"}]
    table = cli(url, "streams", "read", "clicks", "-s", str(result["shard"]))
    assert "cli-user" in table.stdout and "next: --after" in table.stdout
    listed = cli(url, "streams", "ls", "--json")
    assert "clicks" in [s["name"] for s in json.loads(listed.stdout)["streams"]]
    assert "clicks" in cli(url, "streams", "ls").stdout
    shown = cli(url, "streams", "show", "clicks")
    assert shown.returncode == 0 and "3 shards" in shown.stdout
    assert json.loads(cli(url, "streams", "show", "clicks", "--json").stdout)["shards"] == 3


def test_streams_are_created_and_deleted_over_http_and_the_cli(url: str) -> None:
    with _api(url) as http:
        created = http.post("/streams", json={"name": "made", "shards": 2, "retention_s": 600})
        assert created.status_code == 201, created.text
        assert created.json()["declared_by"] == "api"
        assert http.post("/streams", json={"name": "made"}).status_code == 409
        bad = http.post("/streams", json={"name": "x", "shards": 65})
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "shards"
        assert http.delete("/streams/clicks").status_code == 409
        assert http.post("/streams/made/records", json={"data": 1, "partition_key": "k"}).is_success
        assert http.delete("/streams/made").json() == {"deleted": "made"}
        assert http.get("/streams/made").status_code == 404
    made = cli(url, "streams", "create", "by-cli", "--shards", "2", "--retention-s", "120",
               "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["shards"] == 2
    assert cli(url, "streams", "create", "by-cli").returncode == 2  # taken: 409
    assert cli(url, "streams", "create", "x", "--shards", "0").returncode == 2
    refused = cli(url, "streams", "delete", "by-cli")  # no terminal to confirm on
    assert refused.returncode == 2 and "--yes" in refused.stderr
    deleted = cli(url, "streams", "delete", "by-cli", "--yes")
    assert deleted.returncode == 0 and "deleted stream by-cli" in deleted.stdout
    assert cli(url, "streams", "delete", "clicks", "--yes").returncode == 2


def test_the_cli_exits_2_on_bad_input(url: str) -> None:
    unknown = cli(url, "streams", "show", "nope")
    assert unknown.returncode == 2 and "NotFound" in unknown.stderr
    bad_json = cli(url, "streams", "put", "clicks", "-p", "k", "--data", "{nope")
    assert bad_json.returncode == 2 and "invalid JSON" in bad_json.stderr
    long_key = cli(url, "streams", "put", "clicks", "-p", "k" * 257)
    assert long_key.returncode == 2 and "--partition-key" in long_key.stderr
    no_shard = cli(url, "streams", "read", "clicks", "--shard", "9")
    assert no_shard.returncode == 2 and "no shard 9" in no_shard.stderr
    for command in ("ls", "show", "put", "read", "create"):
        helped = cli(url, "streams", command, "--help")
        assert helped.returncode == 0 and "--json" in helped.stdout
