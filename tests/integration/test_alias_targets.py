"""Routes and event rules can name the alias that serves them; the rest follow `live`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from conftest import stop_platform

from squall.engine.platform import Platform
from squall.gateway.app import create_app
from squall.model.cloudevent import CloudEvent

APP = """
import squall

app = squall.App("aliased")
SEEN = {seen!r}


@app.http("GET /v")
@app.http("GET /beta/v", alias="beta")
def which(request, ctx):
    return {{"code": "{label}"}}


@app.on("ping", alias="beta")
def pinged(event, ctx):
    with open(SEEN, "a") as out:
        out.write("{label}\\n")
"""


async def _get(p: Platform, path: str) -> object:
    transport = httpx.ASGITransport(app=create_app(p))
    async with httpx.AsyncClient(transport=transport, base_url="http://squall") as client:
        response = await client.get(path)
    assert response.status_code == 200, response.text
    return response.json()["code"]


async def test_routes_and_rules_follow_their_alias(platform, tmp_path: Path) -> None:
    app, seen = tmp_path / "app.py", tmp_path / "seen.txt"
    app.write_text(APP.format(seen=str(seen), label="v1"))
    p = await platform(app)
    await stop_platform(p)
    app.write_text(APP.format(seen=str(seen), label="v2"))
    p = await platform(app)

    await p.versions.book.set_alias("which", "live", 1)
    await p.versions.book.set_alias("which", "beta", 2)
    await p.versions.book.set_alias("pinged", "beta", 1)
    assert await _get(p, "/v") == "v1"  # unqualified: the live alias
    assert await _get(p, "/beta/v") == "v2"
    record = await p.invoke("which:2", json.dumps({"method": "GET", "path": "/v"}).encode())
    assert record.version == "2"

    await p.publish([CloudEvent.create("ping", {}, source="test")])
    await p.wait_idle()
    for _ in range(100):
        if seen.exists():
            break
        await asyncio.sleep(0.05)
    assert seen.read_text() == "v1\n"  # the rule's alias, not the newest version
