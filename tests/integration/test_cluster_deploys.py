"""A remote deploy reaches every node of a cluster: `squall deploy --to` one gateway, and the
invoker node — whose data dir never saw the upload — runs the new version's code, unpacked
from the archive the deploy kept in PostgreSQL."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from cluster_nodes import Cluster, cluster, wait_until
from support import ADMIN_KEY, SQUALL, client_env

pytestmark = pytest.mark.timeout(240)

APP = """
import os
import squall
from lib.code import CODE

app = squall.App("cluster-deploys")

@app.function()
def which(event, ctx):
    return {"code": CODE, "node": os.environ["TEST_NODE"]}
"""
ADDED = """
@app.function()
def added(event, ctx):
    return {"added": True, "node": os.environ["TEST_NODE"]}
"""


def write_app(root: Path, code: str, more: str = "") -> None:
    (root / "lib").mkdir(parents=True, exist_ok=True)
    (root / "app.py").write_text(APP + more)
    (root / "lib" / "code.py").write_text(f"CODE = {code!r}\n")


def run_async(running: Cluster, http: httpx.Client, function: str = "which") -> dict[str, Any]:
    """Invoke ``function`` asynchronously through the gateway; its finished record."""
    queued = http.post(
        f"/api/v1/functions/{function}/invoke",
        content=b"{}",
        headers={"Content-Type": "application/json", "X-Squall-Invocation-Type": "Event"},
    )
    assert queued.status_code == 202, queued.text
    url = queued.json()["status_url"]
    records: list[dict[str, Any]] = []

    def finished() -> bool:
        record: dict[str, Any] = http.get(url).json()
        records.append(record)
        return record["status"] not in ("queued", "running")

    wait_until(finished, 30, lambda: f"{records[-1:]}\n{running.logs()}")
    return records[-1]


def test_a_version_deployed_through_the_gateway_runs_on_the_invoker(tmp_path: Path) -> None:
    with cluster(tmp_path) as running:
        write_app(running.app_dir, "v1")
        running.start_all({"gw": "gateway", "work": "invoker,scheduler"})
        invoker_bundles = running.workdir / "nodes" / "work" / "bundles"
        with running.client() as http:
            first = run_async(running, http)
            assert first["status"] == "succeeded", first
            assert first["result"] == {"code": "v1", "node": "work"}

            source = tmp_path / "v2"
            write_app(source, "v2", ADDED)  # a new function too, unknown to the invoker
            deployed = subprocess.run(
                [SQUALL, "deploy", "app.py", "--to", running.gateway, "--key", ADMIN_KEY,
                 "--json"],
                cwd=source, capture_output=True, text=True, timeout=120, env=client_env(),
            )
            assert deployed.returncode == 0, deployed.stderr + running.logs()
            bundle = json.loads(deployed.stdout)["bundle"]
            # The deploy's announcement makes the invoker reload versions and fetch the code
            # at once, not at its next periodic refresh (REFRESH_S, 10 s).
            wait_until(
                lambda: (invoker_bundles / bundle / "lib" / "code.py").is_file(),
                5,
                lambda: f"the invoker did not unpack bundle {bundle} in 5 s\n{running.logs()}",
            )
            second = run_async(running, http)
            assert second["status"] == "succeeded", second
            assert second["result"] == {"code": "v2", "node": "work"}
            assert (first["version"], second["version"]) == ("1", "2")
            # The invoker swapped to the deployment's manifest: it runs the new function,
            # and following it recorded no deployment of its own.
            added = run_async(running, http, "added")
            assert added["status"] == "succeeded", added
            assert added["result"] == {"added": True, "node": "work"}
            deployments = http.get("/api/v1/deployments").json()["deployments"]
            assert len(deployments) == 2, deployments

            # The invoker restarts from its image (the app dir still holds v1): it serves
            # the cluster's last deployment instead of deploying v1 again.
            running.nodes["work"].kill(signal.SIGTERM)
            running.start("work", "invoker,scheduler")
            again = run_async(running, http)
            assert again["result"] == {"code": "v2", "node": "work"}, again
            assert run_async(running, http, "added")["status"] == "succeeded"
            deployments = http.get("/api/v1/deployments").json()["deployments"]
            assert len(deployments) == 2, deployments
