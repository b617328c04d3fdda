"""Event schemas against a real platform: registration over the admin API and the CLI, and
published data rejected with the path and the rule (HTTP, batches, ctx.publish)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from support import AUTH, SQUALL, client_env, start_squall

APP = """
import squall

app = squall.App("schemas")


@app.on("order.placed")
def placed(event, ctx):
    return event["id"]


@app.function(permissions=["publish:default"])
def checkout(event, ctx):
    try:
        return ctx.publish("order.placed", event)
    except squall.InvalidInput as exc:
        return {"field": exc.field, "rule": exc.details["rule"]}
"""

ORDER: dict[str, Any] = {
    "type": "object",
    "required": ["items"],
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["qty"],
                "properties": {"qty": {"type": "number", "minimum": 1}},
            },
        }
    },
}


async def test_ctx_publish_of_invalid_data_raises_in_the_function(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    await p.schemas.put("order.placed", 1, ORDER)
    record = await p.invoke("checkout", b'{"items": [{"qty": 1}, {"qty": 0}]}')
    assert record.status == "succeeded", record.error
    assert msgspec.json.decode(record.result or b"") == {
        "field": "data.items[1].qty",
        "rule": "minimum: 1",
    }
    good = await p.invoke("checkout", b'{"items": [{"qty": 3}]}')
    event_id = msgspec.json.decode(good.result or b"")
    await p.wait_idle(timeout=20)
    runs = await p.list_invocations(function="placed")
    assert [msgspec.json.decode(r.result or b"") for r in runs] == [event_id]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("schemas")
    (workdir / "app.py").write_text(APP)
    proc, url = start_squall(workdir)
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def put(
    url: str, event_type: str, version: int | str, schema: Any, **params: str
) -> httpx.Response:
    return httpx.put(
        f"{url}/api/v1/schemas/{event_type}/{version}", json=schema, params=params, headers=AUTH
    )


def publish(url: str, body: Any, content_type: str) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/events",
        content=json.dumps(body),
        headers={**AUTH, "Content-Type": content_type},
    )


def ce(event_id: str, data: Any, **attrs: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": event_id, "source": "http-test",
            "type": "order.placed", "data": data, **attrs}


def ran(url: str) -> set[str]:
    shown = httpx.get(f"{url}/api/v1/invocations", params={"function": "placed"},
                      headers=AUTH).json()["invocations"]
    return {
        httpx.get(f"{url}/api/v1/invocations/{r['id']}", headers=AUTH).json()["result"]
        for r in shown
        if r["status"] == "succeeded"
    }


def wait_ran(url: str, event_id: str) -> set[str]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done = ran(url)
        if event_id in done:
            return done
        time.sleep(0.05)
    raise AssertionError(f"{event_id} never ran")


def test_registration_rules_over_http(url: str) -> None:
    first = put(url, "order.placed", 1, ORDER)
    assert first.status_code == 201, first.text
    assert first.json()["uri"] == "squall:schemas/order.placed/1"
    assert put(url, "order.placed", 1, ORDER).status_code == 200  # identical: a no-op
    different = put(url, "order.placed", 1, {**ORDER, "title": "x"})
    assert different.status_code == 409
    skipped = put(url, "order.placed", 3, ORDER)
    assert skipped.status_code == 409 and skipped.json()["error"]["field"] == "version"
    invalid = put(url, "order.placed", 2, {"type": "nope"})
    assert invalid.status_code == 400
    assert invalid.json()["error"]["field"] == "schema.type"
    narrowed = {**ORDER, "properties": {"items": {**ORDER["properties"]["items"], "items": {
        "type": "object", "required": ["qty"],
        "properties": {"qty": {"type": "integer", "minimum": 1}}}}}}
    refused = put(url, "order.placed", 2, narrowed)
    assert refused.status_code == 409
    assert refused.json()["error"]["reasons"] == [
        "data.items[].qty: type narrowed from number to integer"
    ]
    widened = {**ORDER, "required": []}
    assert put(url, "order.placed", 2, widened).status_code == 201
    listed = httpx.get(f"{url}/api/v1/schemas", headers=AUTH).json()
    assert {"type": "order.placed", "versions": [1, 2], "latest": 2} in listed["schemas"]
    one = httpx.get(f"{url}/api/v1/schemas/order.placed/1", headers=AUTH).json()
    assert one["schema"] == ORDER
    assert httpx.get(f"{url}/api/v1/schemas/order.placed/9", headers=AUTH).status_code == 404
    assert put(url, "order.placed", "x", ORDER).status_code == 400


def test_bad_data_is_a_400_naming_path_and_rule(url: str) -> None:
    put(url, "order.placed", 1, ORDER)  # (already there when run after the test above)
    pinned = "squall:schemas/order.placed/1"
    bad = publish(url, ce("bad-1", {"items": [{"qty": 2}, {"qty": 0}]}, dataschema=pinned),
                  "application/cloudevents+json")
    assert bad.status_code == 400, bad.text
    error = bad.json()["error"]
    assert (error["field"], error["rule"]) == ("data.items[1].qty", "minimum: 1")
    assert "data.items[1].qty" in error["message"] and "minimum: 1" in error["message"]
    gateway_url = f"{url}/api/v1/schemas/order.placed/1"
    missing = publish(url, ce("bad-2", {}, dataschema=gateway_url),
                      "application/cloudevents+json")
    assert missing.status_code == 400
    assert missing.json()["error"]["field"] == "data.items"
    unknown = publish(url, ce("bad-3", {}, dataschema="squall:schemas/order.placed/99"),
                      "application/cloudevents+json")
    assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "dataschema"
    batch = [ce("batch-1", {"items": [{"qty": 1}]}, dataschema=pinned),
             ce("batch-2", {"items": [{"qty": -1}]}, dataschema=pinned)]
    rejected = publish(url, batch, "application/cloudevents-batch+json")
    assert rejected.status_code == 400
    assert rejected.json()["error"]["index"] == 1
    good = publish(url, ce("good-1", {"items": [{"qty": 1}]}, dataschema=pinned),
                   "application/cloudevents+json")
    assert good.status_code == 202, good.text
    done = wait_ran(url, "good-1")
    assert not done & {"bad-1", "bad-2", "bad-3", "batch-1", "batch-2"}  # nothing delivered


def cli(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SQUALL, *args, "--url", url], capture_output=True, text=True, timeout=30,
        env=client_env(), check=False, input=stdin,
    )


def test_cli_schemas(url: str, tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({"type": "object", "properties": {"sku": {"type": "string"}}}))
    done = cli(url, "schemas", "put", "item.added", "1", str(path))
    assert done.returncode == 0, done.stderr
    assert "squall:schemas/item.added/1 registered" in done.stdout
    stricter = tmp_path / "stricter.json"
    stricter.write_text(json.dumps({"type": "object", "required": ["sku"]}))
    refused = cli(url, "schemas", "put", "item.added", "2", str(stricter))
    assert refused.returncode == 2
    assert "required field 'sku' added" in refused.stderr
    forced = cli(url, "schemas", "put", "item.added", "2", "-", "--force", "--json",
                 stdin=stricter.read_text())
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["forced"] == ["data: required field 'sku' added"]
    listed = json.loads(cli(url, "schemas", "list", "--json").stdout)
    assert {"type": "item.added", "versions": [1, 2], "latest": 2} in listed["schemas"]
    shown = cli(url, "schemas", "show", "item.added", "2")
    assert json.loads(shown.stdout) == {"type": "object", "required": ["sku"]}
    assert cli(url, "schemas", "show", "item.added").returncode == 0
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    bad_file = cli(url, "schemas", "put", "item.added", "3", str(broken))
    assert bad_file.returncode == 2 and "invalid JSON" in bad_file.stderr
    assert cli(url, "schemas", "put", "item.added", "0", str(path)).returncode == 2
    deleted = cli(url, "schemas", "delete", "item.added", "2", "--yes", "--json")
    assert json.loads(deleted.stdout) == {"type": "item.added", "deleted": [2]}
    assert cli(url, "schemas", "show", "item.added", "2").returncode == 2
    assert cli(url, "schemas", "delete", "item.added").returncode == 2  # needs --yes
