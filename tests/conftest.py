"""Shared fixtures: write an app file, start a real platform on it, stop it afterwards.

    def test_hello(make_app, platform, tmp_path):
        path = make_app(tmp_path, '''
            import squall
            app = squall.App("t")

            @app.function()
            def hello(event, ctx):
                return {"hi": event}
        ''')
        p = await platform(path, sync_wait_s=0.5)
        record = await p.invoke("hello", b'"you"')

``platform`` starts ``Platform.start(PlatformConfig(app=..., data_dir=tmp_path/"data", ...))``
with a fast retry base; keyword arguments override any ``PlatformConfig`` field. Every platform
a test starts is stopped after it (a test may stop one itself, e.g. to restart on the same
data dir).
"""

from __future__ import annotations

import asyncio
import io
import os
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from backends import BACKENDS, drop, new_schema_url, pg_url, store_url_for
from cluster_nodes import remove_streams
from nats_service import NATS_URL, fresh_prefix

from squall.engine.platform import Platform, PlatformConfig
from squall.storage import open_store
from squall.storage.sqlite.store import SqliteStore

__all__ = ["pg_url"]  # a fixture, shared from tests.backends

MakeApp = Callable[..., Path]
StartPlatform = Callable[..., Awaitable[Platform]]


def write_app(tmp_path: Path, source: str, name: str = "app.py") -> Path:
    """Write ``source`` (dedented) to ``tmp_path/name`` and return the path."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(source).lstrip("\n"))
    return path


@pytest.fixture
def make_app() -> MakeApp:
    """``make_app(tmp_path, source, name="app.py") -> Path``: an app file on disk."""
    return write_app


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each store backend in turn: the contract tests run against both."""
    name: str = request.param
    return name


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh store of ``backend``: a file in tmp_path, or a PostgreSQL schema of its own."""
    return store_url_for(backend, tmp_path, request)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SqliteStore]:
    """An open store of each backend (the PostgreSQL one shares SqliteStore's code)."""
    opened = await open_store(store_url)
    assert isinstance(opened, SqliteStore)
    yield opened
    await opened.close()


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[StartPlatform]:
    """``await platform(app, **config)``: a started Platform, stopped after the test.

    ``app`` is a path to an app file, or app source text (written to ``tmp_path/app.py``).
    With ``SQUALL_TEST_BACKEND=postgres`` each data dir of a test gets a fresh PostgreSQL
    schema instead of its SQLite file (unless the test names its own ``store``).
    """
    started: list[Platform] = []
    backend = os.environ.get("SQUALL_TEST_BACKEND")
    on_postgres = backend in ("postgres", "cluster")
    schemas: dict[Path, str] = {}  # data dir -> its store URL
    prefixes: dict[Path, str] = {}  # data dir -> its JetStream subject prefix (cluster)

    async def start(app: Path | str, **overrides: Any) -> Platform:
        if isinstance(app, str) and "\n" in app:
            app = write_app(tmp_path, app)
        settings: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "retry_base_s": 0.02,
            "sync_wait_s": 2.0,
        }
        settings.update(overrides)
        if on_postgres and "store" not in overrides:
            data_dir = Path(settings["data_dir"])
            settings["store"] = schemas.setdefault(data_dir, new_schema_url())
            if backend == "cluster":
                prefix = prefixes.setdefault(data_dir, fresh_prefix())
                settings["bus"] = f"{NATS_URL}?prefix={prefix}&storage=memory"
        instance = await Platform.start(PlatformConfig(app=str(app), **settings))
        started.append(instance)
        return instance

    yield start
    for instance in reversed(started):
        if instance.started:
            await stop_platform(instance)
    for url in schemas.values():
        drop(url)
    for prefix in prefixes.values():
        await remove_streams(NATS_URL, prefix)


STOP_TIMEOUT_S = 10.0


async def stop_platform(instance: Platform, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop ``instance``; if that hangs, force it down and fail with the stuck tasks' stacks."""
    stopping = asyncio.ensure_future(instance.stop())
    done, _ = await asyncio.wait([stopping], timeout=timeout)
    if done:
        stopping.result()
        return
    stacks = io.StringIO()
    for task in asyncio.all_tasks():
        if not task.done() and task is not asyncio.current_task():
            task.print_stack(file=stacks)
    # Keep cancelling the platform's own tasks so the sandboxes and the store still get closed
    # and the hang does not leak processes into the tests that follow.
    for _ in range(200):
        for task in getattr(instance, "_tasks", ()):
            task.cancel()
        done, _ = await asyncio.wait([stopping], timeout=0.05)
        if done:
            break
    raise AssertionError(f"Platform.stop() hung for {timeout} s; tasks:\n{stacks.getvalue()}")


async def poll(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 10.0, interval: float = 0.02
) -> Any:
    """Await ``check()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value {value!r})")
        await asyncio.sleep(interval)


@pytest.fixture
def eventually() -> Callable[..., Awaitable[Any]]:
    """``await eventually(async_check, timeout=10)``: poll until truthy, else fail."""
    return poll
