"""The platform on PostgreSQL: sync and async invokes with retries, a table write with its
change stream, a workflow, and a restart that finds all of it still there; `squall up
--store postgresql://…` serving HTTP."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import msgspec
from backends import require_postgres
from support import AUTH, SQUALL, start_squall

from squall.model.tables import change_stream
from squall.model.workflows import RunStatus

APP = """
import os
import squall

app = squall.App("pg")
app.table("orders", partition_key="id", stream="new_and_old")
FLAKY = {flaky!r}


@app.function()
def hello(event, ctx):
    return {{"hi": event}}


@app.function(retries=2)
def flaky(event, ctx):
    # Fails on its first attempt (the marker file is not there yet), succeeds on the second.
    if not os.path.exists(FLAKY):
        open(FLAKY, "w").close()
        raise RuntimeError("first attempt fails")
    return "second time lucky"


@app.function(permissions=["table:orders"])
def place(event, ctx):
    ctx.tables["orders"].put(event)
    return ctx.tables["orders"].get({{"id": event["id"]}})


def double(x):
    return x * 2


@app.workflow()
def doubler(wf, x):
    return wf.step(double, x) + wf.step(double, 1)
"""


def result(record: Any) -> Any:
    return msgspec.json.decode(record.result)


def app_source(tmp_path: Path) -> str:
    return APP.format(flaky=str(tmp_path / "flaky-marker"))


async def test_the_platform_runs_on_postgres_and_keeps_its_state_across_a_restart(
    platform: Any, pg_url: str, tmp_path: Path, eventually: Any
) -> None:
    p = await platform(app_source(tmp_path), store=pg_url)
    record = await p.invoke("hello", b'"pg"')
    assert record.status == "succeeded" and result(record) == {"hi": "pg"}

    queued = await p.invoke_async("flaky", b"{}")
    await p.wait_idle(timeout=20)
    retried = await p.get_invocation(queued.id)
    assert retried.status == "succeeded" and retried.attempt == 2
    assert result(retried) == "second time lucky"

    placed = await p.invoke("place", b'{"id": "o-1", "total": 5}')
    assert placed.status == "succeeded", placed.error
    assert result(placed)["total"] == 5

    await p.start_workflow("doubler", 4, id="run-1")

    async def completed() -> Any:
        run = await p.workflows.get("run-1")
        return run if RunStatus(run.status).finished else None

    run = await eventually(completed, timeout=20)
    assert run.status == RunStatus.COMPLETED and run.result == 10
    await p.stop()

    again = await platform(app_source(tmp_path), store=pg_url)
    assert result(await again.get_invocation(queued.id)) == "second time lucky"
    assert result(await again.get_invocation(record.id)) == {"hi": "pg"}
    item = await again.tables.get_item("orders", {"id": "o-1"})
    assert item is not None and item["total"] == 5
    # The write's change record, in the table's change stream.
    store = again._store
    heads = await store.heads(change_stream("orders"))
    [(shard, head)] = heads.items()
    [change] = await store.read_records(change_stream("orders"), shard, 0, 10)
    assert head == change.sequence == 1
    record_of_change = msgspec.json.decode(change.data)
    assert record_of_change["eventName"] == "INSERT"
    assert record_of_change["new"]["total"] == 5
    finished = await again.workflows.get("run-1")
    assert finished.status == RunStatus.COMPLETED and finished.result == 10
    assert [s.name for s in await again.workflow_history("run-1")] == ["double", "double"]


def test_squall_up_serves_http_from_a_postgres_store(tmp_path: Path) -> None:
    url = require_postgres()
    store = f"{url}{'&' if '?' in url else '?'}schema=t_up_{secrets.token_hex(6)}"
    (tmp_path / "app.py").write_text(app_source(tmp_path))
    proc, base = start_squall(tmp_path, "--store", store)
    try:
        called = httpx.post(f"{base}/api/v1/functions/hello/invoke", json="web", headers=AUTH)
        assert called.status_code == 200, called.text
        assert called.json() == {"hi": "web"}
        assert not (tmp_path / ".squall" / "squall.db").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        from squall.storage.postgres.store import drop_schema

        drop_schema(store)


def test_squall_up_with_an_unreachable_store_exits_2_naming_it(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(app_source(tmp_path))
    done = subprocess.run(
        [SQUALL, "up", "app.py", "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        env={**os.environ, "SQUALL_STORE": "postgresql://postgres:pw@127.0.0.1:1/test"},
    )
    assert done.returncode == 2
    message = done.stderr.decode()
    assert "store postgresql://postgres:***@127.0.0.1:1/test: cannot connect" in message
