"""Faults in user code kill one sandbox, are reported as that invocation's error, and pass."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest

APP = """
import ctypes
import os
import signal
import threading
import time

import squall

app = squall.App("faults")

FLAG = {flag!r}


@app.function(memory_mb=128, timeout_s=1)
def victim(event, ctx):
    do = event["do"]
    if do == "big-alloc":
        block = bytearray(400 * 1024 * 1024)
        return len(block)
    if do == "grow":
        chunks = []
        for _ in range(400):
            chunks.append(b"x" * (1024 * 1024))
        return len(chunks)
    if do == "threads":  # 32 threads alive at once, each with a little memory of its own
        barrier = threading.Barrier(32)
        sizes = []
        def work():
            block = bytearray(1024 * 1024)
            barrier.wait()
            sizes.append(len(block))
        workers = [threading.Thread(target=work) for _ in range(32)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return sum(sizes)
    if do == "sleep":
        time.sleep(10)
    if do == "exit":
        os._exit(3)
    if do == "segfault":
        ctypes.string_at(0)
    if do == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if do == "raise":
        raise ValueError("bad thing happened")  # user-line-marker
    if do == "sys-exit":
        raise SystemExit(5)
    return {{"ok": os.getpid()}}


def fragile_init(ctx):
    if os.path.exists(FLAG):
        raise RuntimeError("init broke")  # init-line-marker
    return "ready"


@app.function(init=fragile_init)
def needs_init(event, ctx):
    return ctx.state
"""


@pytest.fixture
def app_path(make_app, tmp_path: Path) -> Path:
    return make_app(tmp_path, APP.format(flag=str(tmp_path / "fail-init")))


def do(action: str) -> bytes:
    return msgspec.json.encode({"do": action})


async def assert_recovers(p, *, cold: bool) -> None:
    after = await p.invoke("victim", do("ok"))
    assert after.error is None, after.error
    assert after.status == "succeeded"
    assert after.cold is cold


async def assert_stored(p, record) -> None:
    stored = await p.get_invocation(record.id)
    assert stored.status == "failed"
    assert stored.error == record.error


@pytest.mark.parametrize("action", ["big-alloc", "grow"])
async def test_out_of_memory(platform, app_path: Path, action: str) -> None:
    p = await platform(app_path)
    record = await p.invoke("victim", do(action))
    assert record.status == "failed"
    assert record.error is not None
    assert record.error["type"] == "OutOfMemory", record.error
    assert record.error["memory_mb"] == 128
    assert "128" in str(record.error["message"])
    await assert_stored(p, record)
    await assert_recovers(p, cold=True)


async def test_threads_fit_in_the_memory_budget(platform, app_path: Path) -> None:
    # The address-space limit counts each thread's reserved stack and malloc arena: with
    # the defaults (8 MiB, 64 MiB) 32 threads would not fit in 128 MB.
    p = await platform(app_path)
    record = await p.invoke("victim", do("threads"))
    assert record.error is None, record.error
    assert msgspec.json.decode(record.result or b"") == 32 * 1024 * 1024


async def test_timeout(platform, app_path: Path) -> None:
    p = await platform(app_path)
    await assert_recovers(p, cold=True)  # warm up, so the clock measures the handler only
    started = time.monotonic()
    record = await p.invoke("victim", do("sleep"))
    elapsed = time.monotonic() - started
    assert record.status == "failed"
    assert record.error is not None
    assert record.error["type"] == "Timeout", record.error
    assert record.error["timeout_s"] == 1
    assert "timeout_s=1" in str(record.error["message"])
    assert 0.95 <= elapsed < 1.5
    await assert_stored(p, record)
    await assert_recovers(p, cold=True)


@pytest.mark.parametrize(
    ("action", "says"),
    [
        ("exit", "exited with code 3"),
        ("segfault", "killed by signal SIGSEGV"),
        ("sigkill", "killed by signal SIGKILL"),
    ],
)
async def test_sandbox_crash(platform, app_path: Path, action: str, says: str) -> None:
    p = await platform(app_path)
    record = await p.invoke("victim", do(action))
    assert record.status == "failed"
    assert record.error is not None
    assert record.error["type"] == "SandboxCrashed", record.error
    assert says in str(record.error["message"])
    assert "'victim'" in str(record.error["message"])
    assert record.error["exit_status"] is not None
    await assert_stored(p, record)
    await assert_recovers(p, cold=True)


async def test_handler_exception(platform, app_path: Path) -> None:
    p = await platform(app_path)
    record = await p.invoke("victim", do("raise"))
    assert record.status == "failed"
    error = record.error
    assert error is not None
    assert error["type"] == "FunctionError"
    assert error["error_type"] == "ValueError"
    assert error["message"] == "ValueError: bad thing happened"
    traceback = str(error["traceback"])
    assert 'raise ValueError("bad thing happened")  # user-line-marker' in traceback
    assert "app.py" in traceback
    assert "squall/runtime" not in traceback  # trimmed to the user's frames
    assert traceback.rstrip().endswith("ValueError: bad thing happened")
    await assert_stored(p, record)
    await assert_recovers(p, cold=False)  # an exception does not cost the sandbox


async def test_system_exit_is_a_function_error(platform, app_path: Path) -> None:
    p = await platform(app_path)
    record = await p.invoke("victim", do("sys-exit"))
    assert record.error is not None
    assert record.error["type"] == "FunctionError"
    assert record.error["error_type"] == "SystemExit"
    await assert_recovers(p, cold=True)  # the sandbox is recycled after SystemExit


async def test_init_error(platform, app_path: Path, tmp_path: Path) -> None:
    flag = tmp_path / "fail-init"
    flag.touch()
    p = await platform(app_path)
    record = await p.invoke("needs-init", b"null")
    assert record.status == "failed"
    error = record.error
    assert error is not None
    assert error["type"] == "InitError", error
    assert error["error_type"] == "RuntimeError"
    assert "init broke" in str(error["message"])
    assert "# init-line-marker" in str(error["traceback"])
    await assert_stored(p, record)
    flag.unlink()
    after = await p.invoke("needs-init", b"null")
    assert after.error is None, after.error
    assert msgspec.json.decode(after.result) == "ready"
    assert after.cold is True


async def test_faults_in_a_row_leave_platform_serving(platform, app_path: Path) -> None:
    p = await platform(app_path)
    types = []
    for action in ("exit", "raise", "sigkill", "big-alloc", "segfault"):
        record = await p.invoke("victim", do(action))
        assert record.error is not None
        types.append(record.error["type"])
    assert types == [
        "SandboxCrashed",
        "FunctionError",
        "SandboxCrashed",
        "OutOfMemory",
        "SandboxCrashed",
    ]
    await assert_recovers(p, cold=True)
    stats = p.function_stats("victim")
    assert stats["busy"] == 0
    assert stats["warm"] == 1
