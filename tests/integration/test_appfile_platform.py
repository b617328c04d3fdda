"""A platform started on a squall.yaml app: its HTTP route, event rule, queue trigger and
rule target run the handlers the manifest names; `squall up` refuses a bad one."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import httpx
import msgspec
from support import SQUALL, client_env

from squall.gateway.app import create_app
from squall.model.cloudevent import CloudEvent

HANDLERS = """
import json
import os


def note(*row):
    with open(os.environ["APPFILE_OUT"], "a") as f:  # the functions' env, from the manifest
        f.write(json.dumps(row) + "\\n")


def greet(request, ctx):
    note("http", request.path_params["name"])
    return {"hello": request.path_params["name"]}


def on_signup(event, ctx):
    note("event", event["data"]["user"])


def work(messages, ctx):
    for message in messages:
        note("queue", message["body"])
"""

MANIFEST = """
app: manifest-platform
queues:
  jobs: {visibility_timeout_s: 5}
  audit:
functions:
  greet:
    handler: app_handlers:greet
    env: {APPFILE_OUT: "%(out)s"}
    http: GET /hello/{name}
  on-signup:
    handler: app_handlers:on_signup
    env: {APPFILE_OUT: "%(out)s"}
    on: {event_type: user.signed_up, pattern: {data: {plan: [pro]}}}
  work:
    handler: app_handlers:work
    env: {APPFILE_OUT: "%(out)s"}
    queue: {queue: jobs, batch_size: 5}
rules:
  signups-to-jobs:
    event_type: user.signed_up
    targets: [{kind: queue, queue: jobs, input_path: $.data.user}]
"""


def rows(out: Path) -> list[list[Any]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines()]


async def test_a_manifest_app_serves_routes_rules_and_queues(  # type: ignore[no-untyped-def]
    platform, eventually, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    (tmp_path / "app_handlers.py").write_text(textwrap.dedent(HANDLERS))
    manifest = tmp_path / "squall.yaml"
    manifest.write_text(MANIFEST % {"out": out})
    p = await platform(manifest)

    transport = httpx.ASGITransport(app=create_app(p))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        answer = await client.get("/hello/ada")
    assert answer.status_code == 200 and answer.json() == {"hello": "ada"}

    await p.publish([
        CloudEvent.create("user.signed_up", {"user": "bo", "plan": "pro"}, source="t", id="1"),
        CloudEvent.create("user.signed_up", {"user": "cy", "plan": "free"}, source="t", id="2"),
    ])
    await p.queues.send("jobs", msgspec.json.encode("direct"))

    async def everything() -> list[list[Any]] | None:
        found = rows(out)
        return found if len(found) >= 5 else None

    found = await eventually(everything, timeout=20)
    assert sorted(map(tuple, found)) == [
        ("event", "bo"), ("http", "ada"), ("queue", "bo"), ("queue", "cy"), ("queue", "direct"),
    ]
    assert p.manifest.app == "manifest-platform"


def test_squall_up_refuses_a_bad_manifest_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "app_handlers.py").write_text(textwrap.dedent(HANDLERS))
    (tmp_path / "squall.yaml").write_text(
        "app: s\nfunctions: {greet: {handler: 'app_handlers:greet', timout_s: 3}}\n"
    )
    done = subprocess.run(
        [SQUALL, "up", "squall.yaml", "--port", "0"], cwd=tmp_path, capture_output=True,
        text=True, timeout=60, check=False, env=client_env(),
    )
    assert done.returncode == 2, done.stderr
    assert "functions.greet.timout_s: unknown key (did you mean timeout_s?)" in done.stderr
