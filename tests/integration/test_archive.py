"""Archives and replays against a real platform: functions run again for replayed events,
marked as replays, in publish order, filtered by pattern and time; archives survive a restart;
the admin API and the CLI."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
from support import AUTH, SQUALL, client_env, start_squall

from squall.engine.platform import Platform
from squall.model.cloudevent import CloudEvent

APP = """
import squall

app = squall.App("archive")


@app.on(pattern={"type": [{"prefix": "order."}]}, concurrency=1)  # runs in delivery order
def orders(event, ctx):
    print(event["type"], event["id"], event.get("squallreplay"))
    return {"id": event["id"], "replay": event.get("squallreplay"), "data": event["data"]}
"""


async def results(p: Platform) -> list[dict[str, Any]]:
    await p.wait_idle(timeout=30)
    runs = await p.list_invocations(function="orders", limit=1000)
    return [msgspec.json.decode(r.result or b"") for r in runs if r.status == "succeeded"]


async def finished(p: Platform, replay_id: str) -> Any:
    deadline = time.monotonic() + 30
    while (status := p.replays.get(replay_id)).state == "running":
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.02)
    return status


def order(event_id: str, kind: str = "order.placed", n: int = 0) -> CloudEvent:
    return CloudEvent.create(kind, {"n": n}, source="shop", id=event_id)


async def test_replay_runs_functions_again_in_publish_order(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    await p.archives.create("orders", "default", pattern={"type": [{"prefix": "order."}]})
    await p.publish([order("before-archive-filter", "ping")])  # not archived: no match
    for i in range(5):
        await p.publish([order(f"o-{i}", n=i)])
    await p.publish([order("o-0")])  # a duplicate: dropped, not archived twice
    originals = await results(p)
    assert sorted(r["id"] for r in originals) == [f"o-{i}" for i in range(5)]
    status = p.replays.start(bus="default", start=0)
    done = await finished(p, status.id)
    assert (done.state, done.published, done.total) == ("completed", 5, 5)
    assert done.last_event_time is not None
    replayed = [r for r in await results(p) if r["replay"] == status.id]
    assert sorted(r["id"] for r in replayed) == [f"o-{i}" for i in range(5)]
    assert {r["data"]["n"] for r in replayed} == set(range(5))
    # One sandbox at a time runs deliveries in the order they were queued: publish order.
    lines = [row.message.split() for row in await p.list_logs(function="orders")]
    assert [line[1] for line in lines if line[2] == status.id] == [f"o-{i}" for i in range(5)]
    [stats] = [await p.archives.stats("orders")]
    assert stats[0] == 5  # the replayed events were not archived again


FORWARDING = """
import squall

app = squall.App("forwarding")

app.rule("to-audit", event_type="order.placed", targets=[squall.targets.Bus("audit")])


@app.on("order.placed", bus="audit")
def audit(event, ctx):
    return {"id": event["id"], "replay": event.get("squallreplay")}
"""


async def test_a_replay_forwarded_to_another_bus_stays_a_replay(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(FORWARDING)
    await p.archives.create("orders", "default")
    await p.publish([order("o-1")])
    await p.wait_idle(timeout=30)
    status = p.replays.start(bus="default", start=0)
    assert (await finished(p, status.id)).published == 1
    await p.wait_idle(timeout=30)
    runs = await p.list_invocations(function="audit", limit=100)
    seen = {(r.status, msgspec.json.decode(r.result or b"null")["replay"]) for r in runs}
    # The forwarded copy of the replay ran on the audit bus, marked, beside the original.
    assert len(runs) == 2 and seen == {("succeeded", None), ("succeeded", status.id)}
    assert not await p.list_dead_letters()


async def test_replay_filters_by_pattern_and_time(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    await p.archives.create("all", "default")
    await p.archives.create("copy", "default")  # the same events twice: replayed once
    await p.publish([order("early", "order.placed")])
    await asyncio.sleep(0.05)
    cut = time.time()
    await p.publish([order("late-placed", "order.placed"), order("late-paid", "order.paid")])
    await results(p)
    windowed = await finished(p, p.replays.start(bus="default", start=cut).id)
    assert (windowed.total, windowed.published) == (2, 2)
    only_paid = p.replays.start(
        bus="default", start=0, archive="all", pattern={"type": ["order.paid"]}
    )
    assert (await finished(p, only_paid.id)).published == 1
    ended = await finished(p, p.replays.start(bus="default", start=0, end=cut).id)
    assert ended.published == 1
    replays = {}
    for r in await results(p):
        replays.setdefault(r["replay"], set()).add(r["id"])
    assert replays[windowed.id] == {"late-placed", "late-paid"}
    assert replays[only_paid.id] == {"late-paid"}
    assert replays[ended.id] == {"early"}


async def test_archives_survive_a_restart(platform, tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    await p.archives.create("orders", "default", retention_s=3600)
    await p.publish([order("kept")])
    await results(p)
    await p.stop()
    again = await platform(tmp_path / "app.py")
    [config] = again.archives.all()
    assert (config.name, config.retention_s) == ("orders", 3600)
    status = await finished(again, again.replays.start(bus="default", start=0).id)
    assert status.published == 1
    assert [r["id"] for r in await results(again) if r["replay"] == status.id] == ["kept"]
    await again.publish([order("after-restart")])
    assert (await again.archives.stats("orders"))[0] == 2


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("archive")
    (workdir / "app.py").write_text(APP)
    proc, url = start_squall(workdir)
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SQUALL, *args, "--url", url], capture_output=True, text=True, timeout=60,
        env=client_env(), check=False,
    )


def test_archive_and_replay_over_http_and_the_cli(url: str) -> None:
    created = cli(url, "archives", "create", "orders", "--bus", "default", "--retention", "2d",
                  "--pattern", '{"type": [{"prefix": "order."}]}', "--json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["retention_s"] == 2 * 86400
    again = cli(url, "archives", "create", "orders", "--bus", "default")
    assert again.returncode == 2 and "already exists" in again.stderr
    assert cli(url, "archives", "create", "x", "--retention", "soon").returncode == 2
    assert cli(url, "archives", "create", "x", "--bus", "nope").returncode == 2
    bad_pattern = cli(url, "archives", "create", "x", "--pattern", '{"type": "a"}')
    assert bad_pattern.returncode == 2
    for i in range(3):
        assert cli(url, "publish", "order.placed", "--data", f'{{"n": {i}}}').returncode == 0
    listed = json.loads(cli(url, "archives", "list", "--json").stdout)["archives"]
    assert [(a["name"], a["events"]) for a in listed] == [("orders", 3)]
    done = cli(url, "replay", "--bus", "default", "--from", "1h", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert (status["state"], status["published"], status["total"]) == ("completed", 3, 3)
    shown = httpx.get(f"{url}/api/v1/replays/{status['id']}", headers=AUTH).json()
    assert shown["published"] == 3
    started = cli(url, "replay", "--archive", "orders", "--from", "2000-01-01T00:00:00",
                  "--no-wait")
    assert started.returncode == 0 and started.stdout.strip().startswith("rp_")
    bar = cli(url, "replay", "--bus", "default", "--from", "1h")
    assert bar.returncode == 0, bar.stderr
    assert "completed: 3/3" in bar.stdout
    assert cli(url, "replay", "--bus", "default", "--from", "whenever").returncode == 2
    assert cli(url, "replay", "--bus", "nope", "--from", "1h").returncode == 2
    assert cli(url, "replay", "--from", "1h").returncode == 2
    assert cli(url, "replays", "show", "rp_nope").returncode == 2
    assert json.loads(cli(url, "replays", "list", "--json").stdout)["replays"]
    bad = httpx.post(f"{url}/api/v1/replays", json={"bus": "default", "from": 10, "to": 5},
                     headers=AUTH)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "to"

    def replayed() -> int:
        runs = httpx.get(f"{url}/api/v1/invocations", params={"function": "orders", "limit": 100},
                         headers=AUTH).json()["invocations"]
        return sum(1 for r in runs if r["status"] == "succeeded")

    deadline = time.monotonic() + 20
    while replayed() < 12:  # 3 originals and three replays of 3
        assert time.monotonic() < deadline, replayed()
        time.sleep(0.1)
    assert cli(url, "archives", "delete", "orders", "--yes").returncode == 0
    assert cli(url, "archives", "show", "orders").returncode == 2
