"""Invoking functions in real sandboxes through the Platform."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import msgspec
import pytest

from squall.errors import (
    ConfigError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
)

APP = """
import asyncio
import logging
import os
import sys
import time

import squall

app = squall.App("inv")


@app.function()
def echo(event, ctx):
    return {"echo": event}


@app.function()
async def aecho(event, ctx):
    await asyncio.sleep(0.01)
    return {"async": event}


def setup(ctx):
    print("init ran in", os.getpid())
    return {"calls": 0, "pid": os.getpid()}


@app.function(init=setup)
def counter(event, ctx):
    ctx.state["calls"] += 1
    return {"calls": ctx.state["calls"], "pid": os.getpid(), "init_pid": ctx.state["pid"]}


@app.function(memory_mb=256, timeout_s=5)
def facts(event, ctx):
    return {
        "invocation_id": ctx.invocation_id,
        "function_name": ctx.function_name,
        "version": ctx.version,
        "memory_mb": ctx.memory_mb,
        "attempt": ctx.attempt,
        "trigger": ctx.trigger,
        "remaining_ms": ctx.remaining_ms(),
    }


@app.function(env={"GREETING": "hola", "SQUALL_TEST_EMPTY": ""})
def environ(event, ctx):
    return {k: os.environ.get(k) for k in ("GREETING", "SQUALL_TEST_EMPTY")}


@app.function()
def chatty(event, ctx):
    marker = event["marker"]
    print(f"out {marker}")
    print(f"err {marker}", file=sys.stderr)
    logging.getLogger("mylib").warning("warn %s", marker)
    ctx.logger.info("ctx %s", marker)
    sys.stdout.write(f"partial {marker}")
    return marker


@app.function(permissions=["invoke:echo"])
def caller(event, ctx):
    if event.get("async"):
        return {"queued": ctx.invoke("echo", {"n": event["n"]}, async_=True)}
    return {"nested": ctx.invoke("echo", {"n": event["n"]})}


@app.function(permissions=["invoke:*"])
def caller_of_missing(event, ctx):
    try:
        ctx.invoke("no-such-function", {})
    except squall.NotFound as exc:
        return {"caught": type(exc).__name__, "field": exc.field}
    return {"caught": None}


@app.function(permissions=["invoke:caller"])
def sneaky(event, ctx):
    try:
        ctx.invoke("echo", {})
    except squall.AccessDenied as exc:
        return {"denied": exc.message, "details": exc.details}
    return {"denied": None}


@app.function()
def responder(event, ctx):
    kind = event["kind"]
    if kind == "bytes":
        return squall.Response(
            b"\\x00\\x01binary", status=201, headers={"X-Thing": "yes", "Content-Type": "image/png"}
        )
    if kind == "text":
        return squall.Response("plain words", status=418)
    return squall.Response({"made": True}, status=202, headers={"Location": "/x/1"})


@app.function()
def unserializable(event, ctx):
    class Widget:
        pass

    values = {"object": {"nested": object()}, "complex": 1j, "custom": Widget()}
    return values[event]


@app.function(concurrency=1)
def slow(event, ctx):
    time.sleep(event["sleep"])
    return event["n"]


@app.function()
def appender(event, ctx):
    with open(event["path"], "a") as f:
        f.write(ctx.invocation_id + "\\n")
    time.sleep(event.get("sleep", 0))
    return {"ran": ctx.invocation_id}


@app.function(min_instances=2, concurrency=3)
def prewarmed(event, ctx):
    return os.getpid()


@app.function(keep_alive_s=1)
def short_lived(event, ctx):
    return os.getpid()


@app.function(env={"MODE": "a"})
def tunable(event, ctx):
    return {"memory_mb": ctx.memory_mb, "mode": os.environ.get("MODE"), "pid": os.getpid()}
"""


def result(record) -> object:
    assert record.error is None, record.error
    assert record.status == "succeeded"
    return msgspec.json.decode(record.result)


async def test_sync_invoke_returns_result(platform) -> None:
    p = await platform(APP)
    record = await p.invoke("echo", b'{"a": [1, 2, "three"]}')
    assert result(record) == {"echo": {"a": [1, 2, "three"]}}
    assert record.function == "echo"
    assert record.trigger == "sync"
    assert record.attempt == 1
    assert record.version == "1"  # the function's first version served it
    assert record.duration_ms is not None and record.duration_ms >= 0
    assert record.billed_ms is not None and record.billed_ms >= 1
    stored = await p.get_invocation(record.id)
    assert stored.status == "succeeded"
    assert msgspec.json.decode(stored.result) == {"echo": {"a": [1, 2, "three"]}}


async def test_empty_payload_is_null(platform) -> None:
    p = await platform(APP)
    assert result(await p.invoke("echo", b"")) == {"echo": None}
    assert result(await p.invoke("echo", b"  \n")) == {"echo": None}


async def test_async_handler(platform) -> None:
    p = await platform(APP)
    assert p.function("aecho").is_async
    assert not p.function("echo").is_async
    record = await p.invoke("aecho", b"7")
    assert result(record) == {"async": 7}
    assert result(await p.invoke("aecho", b"8")) == {"async": 8}  # the loop is reusable


async def test_cold_then_warm(platform) -> None:
    p = await platform(APP)
    first = await p.invoke("echo", b"1")
    second = await p.invoke("echo", b"2")
    assert first.cold is True
    assert first.init_ms is not None and first.init_ms >= 0
    assert second.cold is False
    assert second.init_ms is None
    assert p.function_stats("echo")["cold_starts"] == 1


async def test_init_runs_once_per_sandbox(platform) -> None:
    p = await platform(APP)
    records = [await p.invoke("counter", b"null") for _ in range(3)]
    values = [result(r) for r in records]
    assert [v["calls"] for v in values] == [1, 2, 3]
    assert len({v["pid"] for v in values}) == 1
    assert values[0]["init_pid"] == values[0]["pid"]
    # the init hook's output belongs to the cold invocation only
    init_lines = [e.message for e in records[0].logs if e.message.startswith("init ran")]
    assert init_lines == [f"init ran in {values[0]['pid']}"]
    assert not any(e.message.startswith("init ran") for r in records[1:] for e in r.logs)


async def test_context_fields(platform) -> None:
    p = await platform(APP)
    record = await p.invoke("facts", b"null")
    facts = result(record)
    assert isinstance(facts, dict)
    assert facts["invocation_id"] == record.id
    assert facts["function_name"] == "facts"
    assert facts["version"] == p.manifest.version
    assert facts["memory_mb"] == 256
    assert facts["attempt"] == 1
    assert facts["trigger"] == "sync"
    assert 4000 < facts["remaining_ms"] <= 5000
    assert record.memory_mb == 256


async def test_env_config_is_visible(platform) -> None:
    p = await platform(APP)
    assert result(await p.invoke("environ", b"null")) == {
        "GREETING": "hola",
        "SQUALL_TEST_EMPTY": "",
    }
    # and not in other functions' sandboxes
    other = await p.invoke("facts", b"null")
    assert other.error is None


async def test_output_is_captured_per_invocation(platform) -> None:
    p = await platform(APP)
    first = await p.invoke("chatty", b'{"marker": "one"}')
    second = await p.invoke("chatty", b'{"marker": "two"}')
    assert result(first) == "one"
    lines = {(e.level, e.stream, e.message) for e in first.logs}
    assert lines == {
        ("info", "stdout", "out one"),
        ("error", "stderr", "err one"),
        ("warning", "mylib", "warn one"),
        ("info", "chatty", "ctx one"),
        ("info", "stdout", "partial one"),
    }
    assert all(e.time > 0 for e in first.logs)
    second_messages = [e.message for e in second.logs]
    assert sorted(second_messages) == sorted(
        ["out two", "err two", "warn two", "ctx two", "partial two"]
    )
    assert not any("one" in m for m in second_messages)
    stored = await p.list_logs(invocation_id=second.id)
    assert sorted(row.message for row in stored) == sorted(second_messages)
    assert {row.function for row in stored} == {"chatty"}
    errors_only = await p.list_logs(function="chatty", level="error")
    assert sorted(row.message for row in errors_only) == ["err one", "err two"]


async def test_nested_invoke(platform) -> None:
    p = await platform(APP)
    record = await p.invoke("caller", b'{"n": 5}')
    assert result(record) == {"nested": {"echo": {"n": 5}}}
    nested = [r for r in await p.list_invocations(function="echo") if r.trigger == "function"]
    assert len(nested) == 1
    assert nested[0].status == "succeeded"


async def test_nested_invoke_async(platform) -> None:
    p = await platform(APP)
    record = await p.invoke("caller", b'{"n": 6, "async": true}')
    queued_id = result(record)["queued"]
    assert isinstance(queued_id, str)
    await p.wait_idle(timeout=10)
    child = await p.get_invocation(queued_id)
    assert child.function == "echo"
    assert child.trigger == "function"
    assert child.status == "succeeded"
    assert msgspec.json.decode(child.result) == {"echo": {"n": 6}}


async def test_nested_invoke_error_reaches_user_code(platform) -> None:
    p = await platform(APP)
    assert result(await p.invoke("caller-of-missing", b"null")) == {
        "caught": "NotFound",
        "field": "function",
    }


async def test_invoking_an_undeclared_function_is_access_denied(platform) -> None:
    p = await platform(APP)
    outcome = result(await p.invoke("sneaky", b"null"))
    assert outcome["details"] == {"function": "sneaky", "action": "invoke", "resource": "echo"}
    assert "invoke:echo" in outcome["denied"]
    assert [r for r in await p.list_invocations(function="echo")] == []


async def test_response_with_status_headers_and_bytes(platform) -> None:
    p = await platform(APP)
    binary = await p.invoke("responder", b'{"kind": "bytes"}')
    assert binary.error is None
    assert binary.result == b"\x00\x01binary"
    assert binary.response == {
        "status": 201,
        "headers": {"x-thing": "yes"},
        "content_type": "image/png",
    }
    text = await p.invoke("responder", b'{"kind": "text"}')
    assert text.result == b"plain words"
    assert text.response == {
        "status": 418,
        "headers": {},
        "content_type": "text/plain; charset=utf-8",
    }
    made = await p.invoke("responder", b'{"kind": "json"}')
    assert msgspec.json.decode(made.result) == {"made": True}
    assert made.response == {
        "status": 202,
        "headers": {"location": "/x/1"},
        "content_type": "application/json",
    }
    stored = await p.get_invocation(binary.id)
    assert stored.public()["result"] == "\x00\x01binary"


async def test_unknown_function(platform) -> None:
    p = await platform(APP)
    for call in (p.invoke, p.invoke_async):
        with pytest.raises(NotFound) as info:
            await call("nope", b"{}")
        assert info.value.field == "function"
        assert info.value.details["function"] == "nope"
        assert "'nope'" in str(info.value)
        assert "echo" in str(info.value)  # lists the functions that do exist
    assert await p.list_invocations() == []


async def test_malformed_json_names_line_and_column(platform) -> None:
    p = await platform(APP)
    payload = b'{\n  "a": 1,\n  oops\n}'
    expected = json.JSONDecodeError  # what the stdlib says about the same text
    with pytest.raises(expected) as stdlib:
        json.loads(payload)
    for call in (p.invoke, p.invoke_async):
        with pytest.raises(InvalidInput) as info:
            await call("echo", payload)
        error = info.value
        assert error.field == "payload"
        assert error.details["line"] == 3 == stdlib.value.lineno
        assert error.details["column"] == 3 == stdlib.value.colno
        assert "line 3 column 3" in str(error)
    assert await p.list_invocations() == []
    assert await p.queue_depth() == 0


async def test_invalid_utf8_payload_is_invalid_input(platform) -> None:
    p = await platform(APP)
    for call in (p.invoke, p.invoke_async):
        with pytest.raises(InvalidInput) as info:
            await call("echo", b'{"a": "\xff\xfe"}')
        assert info.value.field == "payload"
        assert info.value.details["position"] == 7
    assert await p.list_invocations() == []
    assert await p.queue_depth() == 0


async def test_payload_too_large_names_both_sizes(platform) -> None:
    p = await platform(APP, max_sync_payload=100, max_async_payload=50)
    body = msgspec.json.encode("x" * 60)  # 62 bytes: fine for sync, too big for async
    assert result(await p.invoke("echo", body)) == {"echo": "x" * 60}
    with pytest.raises(PayloadTooLarge) as info:
        await p.invoke_async("echo", body)
    assert info.value.details == {"size": 62, "limit": 50}
    assert info.value.field == "payload"
    assert "62" in str(info.value) and "50" in str(info.value)
    big = msgspec.json.encode("y" * 200)
    with pytest.raises(PayloadTooLarge) as info:
        await p.invoke("echo", big)
    assert info.value.details == {"size": 202, "limit": 100}
    assert "202" in str(info.value) and "100" in str(info.value)
    stored = await p.list_invocations()
    assert [r.function for r in stored] == ["echo"]  # only the accepted call
    assert await p.queue_depth() == 0


@pytest.mark.parametrize(
    ("kind", "type_name"), [("object", "object"), ("complex", "complex"), ("custom", "Widget")]
)
async def test_result_not_serializable_names_type(platform, kind, type_name) -> None:
    p = await platform(APP)
    record = await p.invoke("unserializable", msgspec.json.encode(kind))
    assert record.status == "failed"
    assert record.result is None
    assert record.error is not None
    assert record.error["type"] == "ResultNotSerializable"
    assert record.error["value_type"] == type_name
    assert type_name in str(record.error["message"])
    # the sandbox survives and serves the next call
    assert (await p.invoke("echo", b"1")).cold is True  # other function, own pool
    again = await p.invoke("unserializable", msgspec.json.encode(kind))
    assert again.cold is False


async def test_concurrency_limit_rejects_sync_queues_async(platform) -> None:
    p = await platform(APP, sync_wait_s=0.2)
    holder = asyncio.create_task(p.invoke("slow", b'{"sleep": 0.8, "n": 0}'))

    async def busy() -> bool:
        return p.function_stats("slow")["busy"] == 1

    deadline = time.monotonic() + 5
    while not await busy():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    started = time.monotonic()
    with pytest.raises(TooManyRequests) as info:
        await p.invoke("slow", b'{"sleep": 0, "n": 1}')
    waited = time.monotonic() - started
    assert 0.15 <= waited < 0.7
    assert info.value.details["concurrency"] == 1
    assert "'slow'" in str(info.value)
    queued = [
        await p.invoke_async("slow", msgspec.json.encode({"sleep": 0, "n": n})) for n in range(2, 5)
    ]
    assert {q.status for q in queued} == {"queued"}
    first = await holder
    assert result(first) == 0
    await p.wait_idle(timeout=10)
    done = [await p.get_invocation(q.id) for q in queued]
    assert [msgspec.json.decode(r.result) for r in done] == [2, 3, 4]
    stored = await p.list_invocations(function="slow")
    assert len(stored) == 4  # the rejected call left no record


async def test_idempotent_sync_runs_once(platform, tmp_path: Path) -> None:
    p = await platform(APP)
    runs = tmp_path / "runs.txt"
    payload = msgspec.json.encode({"path": str(runs)})
    first = await p.invoke("appender", payload, idempotency_key="k-1")
    second = await p.invoke("appender", payload, idempotency_key="k-1")
    assert first.id == second.id
    assert result(second) == {"ran": first.id}
    assert runs.read_text().splitlines() == [first.id]
    other = await p.invoke("appender", payload, idempotency_key="k-2")
    assert other.id != first.id
    assert runs.read_text().splitlines() == [first.id, other.id]


async def test_idempotent_sync_concurrent_callers(platform, tmp_path: Path) -> None:
    p = await platform(APP)
    runs = tmp_path / "runs.txt"
    payload = msgspec.json.encode({"path": str(runs), "sleep": 0.2})
    records = await asyncio.gather(
        *(p.invoke("appender", payload, idempotency_key="same") for _ in range(3))
    )
    assert len({r.id for r in records}) == 1
    assert all(r.status == "succeeded" for r in records)
    assert runs.read_text().splitlines() == [records[0].id]


async def test_idempotent_async_runs_once(platform, tmp_path: Path) -> None:
    p = await platform(APP)
    runs = tmp_path / "runs.txt"
    payload = msgspec.json.encode({"path": str(runs)})
    first = await p.invoke_async("appender", payload, idempotency_key="a-1")
    second = await p.invoke_async("appender", payload, idempotency_key="a-1")
    assert first.id == second.id
    await p.wait_idle(timeout=10)
    third = await p.invoke_async("appender", payload, idempotency_key="a-1")
    assert third.id == first.id
    await p.wait_idle(timeout=10)
    assert runs.read_text().splitlines() == [first.id]
    assert (await p.get_invocation(first.id)).status == "succeeded"


async def test_min_instances_kept_warm(platform) -> None:
    p = await platform(APP)
    deadline = time.monotonic() + 5
    while p.function_stats("prewarmed")["warm"] < 2:
        assert time.monotonic() < deadline, p.function_stats("prewarmed")
        await asyncio.sleep(0.02)
    record = await p.invoke("prewarmed", b"null")
    assert record.cold is False
    assert p.function_stats("prewarmed")["cold_starts"] == 2
    assert p.function_stats("echo")["warm"] == 0  # no min_instances: nothing started


async def test_keep_alive_scales_to_zero(platform) -> None:
    p = await platform(APP)
    assert (await p.invoke("short-lived", b"null")).cold is True
    assert p.function_stats("short-lived")["warm"] == 1
    started = time.monotonic()
    while p.function_stats("short-lived")["warm"] != 0:
        assert time.monotonic() - started < 3.5, "idle sandbox was never reaped"
        await asyncio.sleep(0.05)
    assert (await p.invoke("short-lived", b"null")).cold is True


async def test_update_function_applies_to_new_sandboxes(platform) -> None:
    p = await platform(APP)
    before = result(await p.invoke("tunable", b"null"))
    assert before["memory_mb"] == 128 and before["mode"] == "a"
    config = await p.update_function("tunable", {"memory_mb": 256, "env": {"MODE": "b"}})
    assert config.memory_mb == 256
    assert p.function("tunable").env == {"MODE": "b"}
    record = await p.invoke("tunable", b"null")
    after = result(record)
    assert record.cold is True
    assert record.memory_mb == 256
    assert after["memory_mb"] == 256 and after["mode"] == "b"
    assert after["pid"] != before["pid"]
    with pytest.raises(ConfigError) as info:
        await p.update_function("tunable", {"memory_mb": 1})
    assert info.value.field == "memory_mb"
    with pytest.raises(NotFound):
        await p.update_function("tunable", {"on_success": "ghost"})
    assert p.function("tunable").memory_mb == 256
    assert p.function("tunable").on_success is None
    assert os.environ.get("MODE") is None  # the platform's own environment is untouched


async def test_settings_changed_through_the_api_outlive_a_restart(platform, tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    await p.update_function("tunable", {"env": {"MODE": "b"}})
    await p.update_function("tunable", {"memory_mb": 256})  # the earlier change is kept too
    await p.stop()
    again = await platform(APP)
    assert again.function("tunable").memory_mb == 256
    after = result(await again.invoke("tunable", b"null"))
    assert after["memory_mb"] == 256 and after["mode"] == "b"
    assert again.function("echo").memory_mb == 128  # others keep their code's settings


PAIR = """
import squall
app = squall.App("pair")

@app.function()
def first(event, ctx):
    return event
{second}
"""
SECOND = """
@app.function()
def second(event, ctx):
    return event
"""


async def test_a_kept_setting_the_new_code_cannot_take_leaves_the_codes_settings(  # type: ignore[no-untyped-def]
    platform, caplog
) -> None:
    p = await platform(PAIR.format(second=SECOND))
    await p.update_function("first", {"on_success": "second", "timeout_s": 7})
    await p.stop()
    again = await platform(PAIR.format(second=""))  # "second" is gone from the code
    assert again.function("first").on_success is None
    assert again.function("first").timeout_s != 7  # all of the kept changes, or none
    assert "no longer apply" in caplog.text


async def test_a_data_dir_serves_one_platform_at_a_time(platform, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from squall.engine.platform import Platform, PlatformConfig
    from squall.errors import ConfigError

    first = await platform(APP)
    with pytest.raises(ConfigError) as info:
        await Platform.start(PlatformConfig(app=first.config.app, data_dir=first.config.data_dir))
    assert info.value.field == "data_dir"
    assert str(os.getpid()) in info.value.message
    await first.stop()
    second = await Platform.start(
        PlatformConfig(app=first.config.app, data_dir=first.config.data_dir)
    )
    await second.stop()
