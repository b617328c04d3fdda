"""`squall dev` redeploys an edit within a second or so, keeps queued work, and keeps serving
the old code when an edit does not import."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
from support import AUTH, start_squall, wait_for

APP = """
import time
import squall

app = squall.App("reloading")


@app.http("GET /hello")
def hello(request, ctx):
    return {{"v": {version}}}


@app.function()
def slow(event, ctx):
    time.sleep(0.5)
    return {{"done_by": {version}}}
"""


def test_dev_picks_up_an_edit(tmp_path: Path) -> None:
    # The app's own directory: the server's output files beside it are not part of the code.
    (tmp_path / "src").mkdir()
    app = tmp_path / "src" / "app.py"
    app.write_text(APP.format(version=1))
    (tmp_path / "src" / "notes.log").write_text("ignored: *.log is never bundled\n")
    proc, url = start_squall(tmp_path, command="dev", app="src/app.py")
    try:
        with httpx.Client(base_url=url, headers=AUTH, timeout=10) as client:
            assert client.get("/hello").json() == {"v": 1}
            queued = client.post(
                "/api/v1/functions/slow/invoke", headers={"X-Squall-Invocation-Type": "Event"},
                json={},
            )
            assert queued.status_code == 202, queued.text
            invocation = queued.json()["invocation_id"]

            edited = time.monotonic()
            app.write_text(APP.format(version=2))
            wait_for(lambda: client.get("/hello").json() == {"v": 2} or None, timeout=10)
            took = time.monotonic() - edited
            assert took < 5, f"the edit took {took:.1f} s to serve"

            def finished() -> dict[str, object] | None:
                record = client.get(f"/api/v1/invocations/{invocation}").json()
                return record if record["status"] in ("succeeded", "failed") else None

            record = wait_for(finished, timeout=20)
            assert record["status"] == "succeeded"  # queued work carried over the reload

            versions = client.get("/api/v1/functions/hello/versions").json()
            assert [v["version"] for v in versions["versions"]] == [1, 2]
            assert versions["serving"] == 2

            (tmp_path / "src" / "notes.log").write_text("written while serving\n")
            time.sleep(1.0)  # a reload would have happened by now
            versions = client.get("/api/v1/functions/hello/versions").json()
            assert len(versions["versions"]) == 2  # an ignored file makes no version

            app.write_text("import squall\nraise RuntimeError('half-typed')\n")
            wait_for(
                lambda: "reload failed" in (tmp_path / "up.out").read_text() or None, timeout=10
            )
            assert client.get("/hello").json() == {"v": 2}  # the old code keeps serving
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
