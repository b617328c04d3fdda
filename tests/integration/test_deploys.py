"""Deploys end to end: remote deploys to a `squall up` started here, plans, prune, failed
deploys, aliases and blue/green rollback, canaries rolled back or promoted, and the traffic
split of an alias measured over 10,000 invocations."""

from __future__ import annotations

import getpass
import http.client
import json
import os
import signal
import subprocess
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import StartPlatform, stop_platform
from support import NO_CONFIG, SQUALL, start_squall, wait_for

from squall.client import Accepted, SquallClient
from squall.engine.deploy.bundle import MAX_BUNDLE_BYTES, pack
from squall.engine.deploy.canary import MIN_CALLS
from squall.errors import ConfigError, Conflict, NotFound


def app_source(
    version: int,
    *,
    fail: bool = False,
    spare: bool = True,
    extra: bool = False,
    memory: int = 128,
    head: str = "",
    body: str = "",
) -> str:
    """The test app at ``version``: ``hello`` answers it (or fails), ``noted`` counts the
    rollback events, ``spare`` and the ``extra`` route come and go between deploys."""
    if not body:
        body = f"raise RuntimeError('version {version} is broken')" if fail else (
            f"return {{'v': {version}}}"
        )
    source = f"""
        {head}
        import squall

        app = squall.App("deploys")

        @app.http("GET /hello", memory_mb={memory})
        def hello(request, ctx):
            {body}

        @app.on("squall.deploy.rolled_back")
        def noted(event, ctx):
            return None
        """
    if spare:
        source += """
        @app.function()
        def spare(event, ctx):
            return "spare"
        """
    if extra:
        source += """
        @app.http("GET /extra")
        def extra(request, ctx):
            return {"extra": True}
        """
    return textwrap.dedent(source).lstrip("\n")


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    workdir: Path
    url: str
    key: str
    source: Path  # the directory deploys are made from (not the server's)

    opened: list[SquallClient | httpx.Client] = field(default_factory=list)

    def client(self) -> SquallClient:
        made = SquallClient(self.url, key=self.key)
        self.opened.append(made)
        return made

    def http(self, **options: Any) -> httpx.Client:
        made = httpx.Client(base_url=self.url, **options)
        self.opened.append(made)
        return made

    def write(self, text: str) -> None:
        (self.source / "app.py").write_text(text)

    def squall(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A CLI command run in the source directory against this server."""
        return subprocess.run(
            [SQUALL, *args],
            cwd=self.source,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "SQUALL_CONFIG": NO_CONFIG, "SQUALL_API_KEY": self.key},
        )

    def deploy(self, *options: str) -> subprocess.CompletedProcess[str]:
        return self.squall("deploy", "app.py", "--to", self.url, "--key", self.key, *options)

    def upload(self, client: SquallClient, **options: Any) -> dict[str, Any]:
        """Deploy the source directory through ``SquallClient.deploy``."""
        bundle, inside = pack(str(self.source / "app.py"))
        return client.deploy(bundle, inside, **options)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        assert self.proc.wait(timeout=20) == 0

    def restart(self) -> None:
        """Start `squall up` again on the same data dir, serving its last deployment."""
        self.proc, self.url = start_squall(self.workdir, app="", env={"SQUALL_ADMIN_KEY": ""})


def _admin_key(workdir: Path) -> str:
    """The key `squall up` prints on a first start (the line may follow the gateway's)."""

    def printed() -> str | None:
        for line in (workdir / "up.out").read_text().splitlines():
            if line.strip().startswith("admin key"):
                return line.split()[2]
        return None

    return wait_for(printed, timeout=10)


def _serve(root: Path) -> Server:
    """`squall up app.py` (version 1) on a free port, with the key it prints."""
    workdir, source = root / "server", root / "source"
    workdir.mkdir()
    source.mkdir()
    (workdir / "app.py").write_text(app_source(1))
    proc, url = start_squall(workdir, env={"SQUALL_ADMIN_KEY": ""})
    return Server(proc, workdir, url, _admin_key(workdir), source)


def _shut(served: Server) -> None:
    for opened in served.opened:
        opened.close()
    if served.proc.poll() is None:
        served.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    served = _serve(tmp_path)
    yield served
    _shut(served)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests that change nothing before the one that does."""
    served = _serve(tmp_path_factory.mktemp("shared"))
    yield served
    _shut(served)


def hello(http: httpx.Client) -> tuple[int, Any]:
    response = http.get("/hello")
    return response.status_code, response.json()


def invocations(client: SquallClient, function: str, **filters: Any) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = client.invocations(function, limit=1000, **filters)[
        "invocations"
    ]
    return listed


def test_remote_deploy_plan_prune_and_failed_deploys(server: Server) -> None:
    client = server.client()
    http = server.http()
    assert hello(http) == (200, {"v": 1})

    # Version 2 through the CLI, as `squall deploy app.py --to URL --key K`, while requests
    # keep coming: they wait for the swap, none fails, and none sees the old code after it.
    server.write(app_source(2))
    answers: list[tuple[int, Any]] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as loader:
            while not stop.wait(0.02):  # paced, so the records stay few enough to list
                answers.append(hello(loader))

    loader = threading.Thread(target=load)
    loader.start()
    try:
        wait_for(lambda: len(answers) > 5 or None)
        done = server.deploy()
        count = len(answers)
        wait_for(lambda: len(answers) > count + 5 or None)
    finally:
        stop.set()
        loader.join(timeout=30)
    assert done.returncode == 0, done.stderr
    assert "deployed: deployment 2" in done.stdout
    assert {status for status, _ in answers} == {200}
    served_in_order = [body["v"] for _, body in answers]
    assert served_in_order == sorted(served_in_order) and served_in_order[-1] == 2
    assert hello(http) == (200, {"v": 2})
    listed = client.versions("hello")
    assert listed["serving"] == 2
    versions = listed["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["hash"] != versions[1]["hash"]
    assert versions[1]["deployed_by"] == getpass.getuser()
    shown = server.squall("versions", "hello", "--url", server.url)
    assert shown.returncode == 0, shown.stderr
    assert versions[1]["hash"][:12] in shown.stdout and getpass.getuser() in shown.stdout
    expected = {"1": served_in_order.count(1) + 1, "2": served_in_order.count(2) + 1}

    def served() -> Counter[str] | None:  # records of calls nobody waits on commit lazily
        found = Counter(r["version"] for r in invocations(client, "hello"))
        return found if found == expected else None

    assert wait_for(served, timeout=5) == expected
    history = server.squall("deployments", "--url", server.url)
    assert history.returncode == 0, history.stderr
    assert "hello:2" in history.stdout and "hello:1" in history.stdout

    # The same code again: no version, no deployment.
    again = server.upload(client)
    assert not again["applied"] and again["plan"]["empty"]
    assert [v["version"] for v in client.versions("hello")["versions"]] == [1, 2]
    assert len(client.deployments()) == 2

    # A plan shows what a deploy would do and changes nothing.
    server.write(app_source(3, spare=False, extra=True, memory=256))
    planned = server.squall("plan", "app.py", "--url", server.url, "--json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    actions = {(c["kind"], c["name"]): c["action"] for c in plan["changes"]}
    assert actions == {
        ("functions", "extra"): "add",
        ("functions", "hello"): "change",
        ("functions", "spare"): "keep",
        ("routes", "GET /extra"): "add",
    }
    assert plan["new_versions"] == {"extra": 1, "hello": 3, "noted": 3}
    assert hello(http) == (200, {"v": 2})
    assert http.get("/extra").status_code == 404
    assert len(client.deployments()) == 2

    # Deployed without prune, what the app no longer declares keeps serving.
    kept = server.upload(client)
    assert kept["applied"]
    assert {c["name"]: c["action"] for c in kept["plan"]["changes"]}["spare"] == "keep"
    assert hello(http) == (200, {"v": 3})
    assert http.get("/extra").json() == {"extra": True}
    spared = client.invoke("spare")
    assert not isinstance(spared, Accepted) and spared.json() == "spare"

    # With prune it goes.
    pruned = server.upload(client, prune=True)
    assert pruned["applied"]
    assert {(c["name"], c["action"]) for c in pruned["plan"]["changes"]} == {("spare", "remove")}
    with pytest.raises(NotFound):
        client.invoke("spare")
    assert hello(http) == (200, {"v": 3})

    # An app that fails to import: exit code 2, and version 3 keeps serving.
    server.write(app_source(4, head="raise RuntimeError('cannot import this')"))
    broken = server.deploy()
    assert broken.returncode == 2, (broken.stdout, broken.stderr)
    assert "cannot import this" in broken.stderr
    assert hello(http) == (200, {"v": 3})

    # An invalid config: 400 naming the field, and nothing changes.
    server.write(app_source(4, memory=-1))
    bundle, inside = pack(str(server.source / "app.py"))
    with pytest.raises(ConfigError) as caught:
        client.deploy(bundle, inside)
    assert caught.value.field == "memory_mb"
    response = http.post(
        "/api/v1/deployments", params={"app": inside}, content=bundle,
        headers={"Authorization": f"Bearer {server.key}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "memory_mb"
    assert hello(http) == (200, {"v": 3})
    assert [v["version"] for v in client.versions("hello")["versions"]] == [1, 2, 3]
    assert len(client.deployments()) == 4


def test_bad_deploy_and_alias_input_is_a_4xx_naming_the_field(shared: Server) -> None:
    server = shared
    deployments = len(server.client().deployments())
    auth = {"Authorization": f"Bearer {server.key}"}
    api = server.http(headers=auth)
    alias = "/api/v1/functions/hello/aliases/live"
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"version": 7}, 404, "version 7"),
        ({"version": 1, "weight": 101}, 400, "weight"),
        ({"version": 1, "weight": -5}, 400, "weight"),
        ({"version": 1, "canary": 1, "weight": 10}, 400, "canary"),
        ({"version": 1, "weigth": 10}, 400, "weigth"),
        ({"version": "1"}, 400, "version"),
        ({"version": 1.5}, 400, "version"),
    ]
    for body, status, named in cases:
        response = api.put(alias, json=body)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        assert error.get("field") == named or named in error["message"], (body, error)
    assert api.put("/api/v1/functions/hello/aliases/Live!", json={"version": 1}).json()[
        "error"
    ]["field"] == "alias"
    aliases = api.get("/api/v1/functions/hello/aliases").json()

    bad = api.post("/api/v1/deployments", params={"app": "app.py"}, content=b"not a tar")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "bundle"
    no_app = api.post("/api/v1/deployments", content=b"")
    assert no_app.status_code == 400 and no_app.json()["error"]["field"] == "app"
    bundle, inside = pack(str(server.workdir / "app.py"))
    for params, named in (
        ({"canary": "0%"}, "canary"),
        ({"canary": "150%"}, "canary"),
        ({"canary": "ten"}, "canary"),
        ({"canary": "10%", "for": "soon"}, "for"),
        ({"canary": "10%", "rollback_on": "errors>2"}, "rollback_on"),
        ({"for": "10m"}, "for"),
    ):
        response = api.post("/api/v1/deployments", params={"app": inside, **params},
                             content=bundle)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"]["field"] == named, params

    # Over the size limit: refused from the declared length, before the body is sent.
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    conn.putrequest("POST", "/api/v1/deployments?app=app.py")
    conn.putheader("Authorization", auth["Authorization"])
    conn.putheader("Content-Length", str(MAX_BUNDLE_BYTES + 1))
    conn.endheaders()
    answer = conn.getresponse()
    assert answer.status == 413
    assert json.loads(answer.read())["error"]["field"] == "bundle"
    conn.close()
    assert len(server.client().deployments()) == deployments
    assert api.get("/api/v1/functions/hello/aliases").json() == aliases


def test_an_app_directory_over_the_bundle_limit_is_refused(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(app_source(1))
    (tmp_path / "data.bin").write_bytes(bytes(4096))
    refused = subprocess.run(
        [SQUALL, "up", "app.py", "--port", "0", "--max-bundle-bytes", "4096"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode == 2, refused.stderr
    assert "over the size limit of 4096 bytes" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_blue_green_switch_and_one_command_rollback(shared: Server) -> None:
    server = shared
    client = server.client()
    http = server.http()
    server.write(app_source(2))
    assert server.deploy().returncode == 0
    assert hello(http) == (200, {"v": 2})

    switched = server.squall("alias", "set", "hello", "live", "--version", "1", "--url", server.url)
    assert switched.returncode == 0, switched.stderr
    assert "hello:live -> version 1" in switched.stdout
    assert {hello(http)[1]["v"] for _ in range(20)} == {1}
    assert hello(http) == (200, {"v": 1})
    assert http.get("/hello", params={}).json() == {"v": 1}

    back = server.squall("rollback", "hello", "--url", server.url)
    assert back.returncode == 0, back.stderr
    assert "hello:live -> version 2" in back.stdout
    assert {hello(http)[1]["v"] for _ in range(20)} == {2}
    # And the rollback itself can be rolled back.
    assert client.rollback("hello")["version"] == 1
    assert hello(http) == (200, {"v": 1})

    # A qualifier picks a version or an alias whatever live says.
    for name, served in (("hello:2", 2), ("hello:latest", 2), ("hello:live", 1), ("hello", 1)):
        answer = client.invoke(name, b"{}")
        assert not isinstance(answer, Accepted) and answer.json() == {"v": served}, name
    with pytest.raises(NotFound, match="no alias 'beta'"):
        client.invoke("hello:beta", b"{}")

    with pytest.raises(NotFound, match="no version 9"):
        client.set_alias("hello", "live", 9)
    assert hello(http) == (200, {"v": 1})


def test_a_failing_canary_is_rolled_back_within_its_share(server: Server) -> None:
    client = server.client()
    http = server.http()
    server.write(app_source(2, fail=True))
    started = server.deploy("--canary", "10%", "--for", "10m", "--rollback-on", "error_rate>2%")
    assert started.returncode == 0, started.stderr
    assert "canary: hello 10% to version 2 (from 1)" in started.stdout

    requests = 400
    answers = [hello(http) for _ in range(requests)]
    failed = [body for status, body in answers if status != 200]
    # Only the canary fails, and only until MIN_CALLS of its calls have been judged: the
    # verdict takes it out of the split before the next call, before its commit lands.
    assert len(failed) == MIN_CALLS
    assert {body["v"] for status, body in answers if status == 200} == {1}
    failures = invocations(client, "hello", status="failed")
    assert len(failures) == len(failed)
    assert {r["version"] for r in failures} == {"2"}

    canary = next(c for c in client.canaries() if c["function"] == "hello")
    assert canary["status"] == "rolled_back"
    assert "error_rate>2% fired" in canary["reason"]
    live = next(a for a in client.aliases("hello") if a["name"] == "live")
    assert live["version"] == 1 and not live["weight"]
    after = [hello(http) for _ in range(100)]
    assert after == [(200, {"v": 1})] * 100

    # The rollback was published as an event, which a rule of the app received.
    wait_for(lambda: invocations(client, "noted", status="succeeded") or None, timeout=10)

    # A slow version is rolled back on latency in the same way.
    server.write(app_source(3, head="import time", body="time.sleep(0.05); return {'v': 3}"))
    slow = server.deploy("--canary", "50%", "--rollback-on", "p99_ms>30")
    assert slow.returncode == 0, slow.stderr
    assert "canary: hello 50% to version 3 (from 1)" in slow.stdout
    answers = [hello(http) for _ in range(60)]
    assert {status for status, _ in answers} == {200}
    assert [body["v"] for _, body in answers].count(3) == MIN_CALLS
    canary = next(c for c in client.canaries() if c["function"] == "hello")
    assert canary["status"] == "rolled_back" and "p99_ms>30 fired" in canary["reason"]
    assert {hello(http)[1]["v"] for _ in range(20)} == {1}


def test_a_healthy_canary_is_promoted_in_steps(server: Server) -> None:
    client = server.client()
    server.write(app_source(2))
    started = server.deploy("--canary", "10%", "--for", "4s", "--steps", "2")
    assert started.returncode == 0, started.stderr

    weights: list[int] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        live = next(a for a in client.aliases("hello") if a["name"] == "live")
        if live["canary"] is None:
            break
        if not weights or weights[-1] != live["weight"]:
            weights.append(live["weight"])
        time.sleep(0.1)
    assert weights == [10, 55]
    assert live["version"] == 2 and live["previous"] == 1
    canary = next(c for c in client.canaries() if c["function"] == "hello")
    assert canary["status"] == "promoted"
    http = server.http()
    assert {hello(http)[1]["v"] for _ in range(20)} == {2}

    # A plain deploy after it serves its new code at once: the live alias follows.
    server.write(app_source(3))
    assert server.upload(client)["applied"]
    assert {hello(http)[1]["v"] for _ in range(20)} == {3}


def test_a_restart_mid_canary_keeps_it_running(server: Server) -> None:
    server.write(app_source(2))
    assert server.deploy("--canary", "30%", "--for", "10m").returncode == 0
    server.stop()
    server.restart()

    client = server.client()
    canary = next(c for c in client.canaries() if c["function"] == "hello")
    assert (canary["status"], canary["primary"], canary["canary"]) == ("running", 1, 2)
    live = next(a for a in client.aliases("hello") if a["name"] == "live")
    assert (live["version"], live["canary"], live["weight"]) == (1, 2, 30)
    http = server.http()
    assert {hello(http)[1]["v"] for _ in range(60)} == {1, 2}
    with pytest.raises(Conflict, match="roll it back first"):
        client.set_alias("hello", "live", 2)

    back = server.squall("rollback", "hello", "--url", server.url)
    assert back.returncode == 0, back.stderr
    canary = next(c for c in client.canaries() if c["function"] == "hello")
    assert canary["status"] == "rolled_back"
    assert {hello(http)[1]["v"] for _ in range(20)} == {1}

    # A plain deploy while a canary shifts supersedes it: its code serves at once.
    server.write(app_source(3))
    assert server.upload(client, canary={"canary": "30%", "for": "10m"})["canaries"]
    server.write(app_source(4))
    assert server.upload(client)["applied"]
    canary = next(c for c in client.canaries() if c["function"] == "hello")
    assert (canary["status"], canary["canary"]) == ("superseded", 3)
    live = next(a for a in client.aliases("hello") if a["name"] == "live")
    assert (live["version"], live["canary"]) == (4, None)
    assert {hello(http)[1]["v"] for _ in range(20)} == {4}


async def test_an_alias_split_is_honoured_over_10000_invocations(
    platform: StartPlatform, tmp_path: Path
) -> None:
    path = tmp_path / "split.py"
    path.write_text(
        "import squall\napp = squall.App('split')\n\n"
        "@app.function(concurrency=4)\ndef tiny(event, ctx):\n    return 1\n"
    )
    first = await platform(path)
    await stop_platform(first)
    path.write_text(path.read_text().replace("return 1", "return 2"))
    served = await platform(path)
    await served.versions.book.set_alias("tiny", "live", 1, canary=2, weight=10)

    records = [await served.invoke("tiny", b"{}") for _ in range(10_000)]
    by_version = Counter(r.version for r in records)
    assert by_version.keys() == {"1", "2"}
    assert abs(by_version["2"] / 10_000 - 0.10) <= 0.02, by_version
    # Each record names the version that served it, and that version's code answered.
    assert all(r.result == r.version.encode() for r in records)
    with pytest.raises(NotFound, match="no version 9"):
        await served.invoke("tiny:9", b"{}")
    # An async invocation keeps its qualifier until it runs.
    queued = await served.invoke_async("tiny:1", b"{}")
    await served.wait_idle()
    done = await served.get_invocation(queued.id)
    assert (done.status, done.version, done.result) == ("succeeded", "1", b"1")
