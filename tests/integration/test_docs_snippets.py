"""The apps the concepts page shows (docs/snippets/), run for real."""

from __future__ import annotations

import shutil
import signal
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
from docs_blocks import SNIPPETS
from support import AUTH, start_squall, wait_for

from squall.engine.platform import Platform
from squall.model.workflows import RunStatus, WorkflowRun
from squall.runtime.loader import load_app


@pytest.fixture(scope="module", params=["triggers.py", "triggers.yaml"])
def triggers_url(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    """The triggers snippet served from its decorators, then from its manifest twin."""
    workdir = tmp_path_factory.mktemp("triggers")
    if request.param == "triggers.py":
        shutil.copy(SNIPPETS / "triggers.py", workdir / "app.py")
        proc, url = start_squall(workdir)
    else:
        for name in ("triggers.yaml", "triggers_handlers.py"):
            shutil.copy(SNIPPETS / name, workdir / name)
        proc, url = start_squall(workdir, app="triggers.yaml")
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def messages(url: str, function: str) -> list[str]:
    response = httpx.get(f"{url}/api/v1/logs", params={"function": function}, headers=AUTH)
    assert response.status_code == 200, response.text
    return [row["message"] for row in response.json()["logs"]]


def test_each_trigger_of_the_triggers_snippet_fires(triggers_url: str) -> None:
    for _ in range(2):
        answer = httpx.post(f"{triggers_url}/visit/home")
        assert answer.status_code == 200 and answer.json() == {"page": "home"}
    thanked = wait_for(
        lambda: (found := messages(triggers_url, "send-thanks")) and len(found) >= 2 and found
    )
    assert thanked == ["thank you for visiting home"] * 2
    first = wait_for(lambda: messages(triggers_url, "first-visit") or None)
    assert first == ["first visit of home"]  # the second visit is a MODIFY, filtered out


def test_the_triggers_manifest_declares_what_the_decorators_do() -> None:
    path, modules = list(sys.path), set(sys.modules)
    try:
        decorated, _ = load_app(str(SNIPPETS / "triggers.py"))
        declared, _ = load_app(str(SNIPPETS / "triggers.yaml"))
        plain = [msgspec.to_builtins(app.manifest()) for app in (decorated, declared)]
    finally:
        sys.path[:] = path
        for name in set(sys.modules) - modules:
            del sys.modules[name]
    for manifest in plain:
        del manifest["version"]
    assert plain[0] == plain[1]


async def finished(p: Platform, run_id: str, eventually: Any) -> WorkflowRun:
    async def check() -> WorkflowRun | None:
        run = await p.workflows.get(run_id)
        return run if RunStatus(run.status).finished else None

    result: WorkflowRun = await eventually(check, timeout=20)
    return result


async def test_the_saga_snippet_books_or_compensates(platform, eventually) -> None:  # type: ignore[no-untyped-def]
    p = await platform(SNIPPETS / "saga.py")
    await p.start_workflow("book-trip", {"id": "t1", "city": "Lisbon"}, id="t1")
    await p.start_workflow("book-trip", {"id": "t2", "city": "Atlantis"}, id="t2")
    booked = await finished(p, "t1", eventually)
    assert booked.status == RunStatus.COMPLETED and booked.result == {
        "flight": "FL-t1", "hotel": "HT-t1"
    }
    failed = await finished(p, "t2", eventually)
    assert failed.status == RunStatus.COMPENSATED
    steps = [(s.kind, s.name, s.status) for s in await p.workflow_history("t2")]
    assert steps == [
        ("step", "book_flight", "completed"),
        ("step", "book_hotel", "failed"),
        ("compensate", "cancel_flight", "completed"),
    ]
