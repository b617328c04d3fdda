"""A workflow run finishes on the code version it started with, even when a deploy in the
middle of it (here: a restart on edited code) makes a new version; new runs take the new one."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from conftest import stop_platform

from squall.engine.platform import Platform
from squall.model.workflows import RunStatus

APP = """
import squall

app = squall.App("wf-versions")


def stamp(x):
    return "{label}"


@app.workflow()
def pinned(wf, x):
    first = wf.step(stamp, x)
    wf.sleep(1.0)
    second = wf.step(stamp, x)
    return [first, second]
"""


async def _finished(p: Platform, run_id: str, timeout: float = 20.0) -> dict[str, object]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        run = await p.workflows.get(run_id)
        if RunStatus(run.status).finished:
            return {"status": run.status, "result": run.result, "version": run.version}
        assert asyncio.get_running_loop().time() < deadline, f"run {run_id} is {run.status}"
        await asyncio.sleep(0.05)


def _write(path: Path, label: str) -> None:
    path.write_text(textwrap.dedent(APP.format(label=label)))


async def test_a_run_keeps_its_version_across_a_deploy(platform, tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    _write(app, "v1")
    p = await platform(app)
    run = await p.start_workflow("pinned", 1, id="old-run")
    while (await p.workflows.get(run.id)).status != RunStatus.SLEEPING:
        await asyncio.sleep(0.02)
    await stop_platform(p)

    _write(app, "v2")  # the deploy: a new version of the workflow's function
    p = await platform(app)
    assert [v.number for v in p.versions.book.versions("pinned")] == [1, 2]
    old = await _finished(p, "old-run")
    assert old == {"status": RunStatus.COMPLETED, "result": ["v1", "v1"], "version": 1}

    await p.start_workflow("pinned", 2, id="new-run")
    new = await _finished(p, "new-run")
    assert new == {"status": RunStatus.COMPLETED, "result": ["v2", "v2"], "version": 2}
