"""Rules through the admin API and the CLI, against a real `squall up`."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import AUTH, SQUALL, client_env, start_squall, wait_for

APP = """
import squall

app = squall.App("rules")


@app.on("order.placed")
def record(event, ctx):
    return event["type"]


@app.function()
def other(event, ctx):
    return event["data"]
"""

TO_OTHER = [{"kind": "function", "function": "other"}]


def stop(proc: subprocess.Popen[bytes], workdir: Path) -> None:
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert "Traceback" not in (workdir / "up.err").read_text()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("rules")
    (workdir / "app.py").write_text(APP)
    proc, url = start_squall(workdir)
    yield url
    stop(proc, workdir)


@pytest.fixture
def http(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{url}/api/v1", headers=AUTH, timeout=30) as client:
        yield client


_ids = itertools.count()


def matched(http: httpx.Client, event_type: str, bus: str = "default") -> list[str]:
    """Publish an event of ``event_type`` on ``bus``; the rules it matched."""
    event = {"specversion": "1.0", "id": f"e-{next(_ids)}", "source": "t", "type": event_type}
    response = http.post(
        "/events",
        params={"bus": bus},
        content=json.dumps({**event, "data": {"n": 1}}),
        headers={"Content-Type": "application/cloudevents+json"},
    )
    assert response.status_code == 202, response.text
    matches: list[str] = response.json()["events"][0]["matched"]
    return matches


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    return body


def test_api_changes_what_matches_without_a_restart(http: httpx.Client) -> None:
    created = http.post(
        "/rules", json={"name": "orders", "pattern": {"type": ["a"]}, "targets": TO_OTHER}
    )
    assert created.status_code == 201, created.text
    assert created.json() == {
        "name": "orders",
        "bus": "default",
        "pattern": {"type": ["a"]},
        "targets": [
            {
                "kind": "function",
                "id": "0",
                "function": "other",
                "alias": None,
                "input_path": None,
                "input_transformer": None,
            }
        ],
        "description": "",
        "enabled": True,
        "origin": "api",
    }
    assert matched(http, "a") == ["orders"]
    replaced = http.put("/rules/orders", json={"pattern": {"type": ["b"]}, "targets": TO_OTHER})
    assert replaced.status_code == 200, replaced.text
    assert matched(http, "a") == []
    assert matched(http, "b") == ["orders"]
    assert http.patch("/rules/orders", json={"enabled": False}).json()["enabled"] is False
    assert matched(http, "b") == []
    assert http.patch("/rules/orders", json={"enabled": True}).status_code == 200
    assert matched(http, "b") == ["orders"]
    assert http.get("/rules/orders").json()["pattern"] == {"type": ["b"]}
    assert http.delete("/rules/orders").json() == {"deleted": "orders"}
    error(http.get("/rules/orders"), 404)
    assert matched(http, "b") == []
    put_new = http.put("/rules/fresh", json={"name": "fresh", "pattern": {"type": ["c"]}})
    assert put_new.status_code == 201, put_new.text
    assert http.delete("/rules/fresh").status_code == 200

    def delivered() -> list[Any] | None:
        shown = http.get("/invocations", params={"function": "other"}).json()["invocations"]
        done = [r for r in shown if r["status"] == "succeeded"]
        return done if len(done) == 3 else None

    assert len(wait_for(delivered)) == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pattern": {"data": {"total": [{"numeric": "x"}]}}}, "pattern.data.total[0].numeric"),
        ({"targets": [{"kind": "function", "function": "nobody"}]}, "targets[0].function"),
        ({"targets": [{"kind": "bus", "bus": "nowhere"}]}, "targets[0].bus"),
        (
            {"targets": [{"kind": "function", "function": "other", "input_path": "data"}]},
            "targets[0].input_path",
        ),
        (
            {"targets": [{"kind": "http", "url": "https://x", "retry": {"max_attempts": 200}}]},
            "targets[0].retry.max_attempts",
        ),
        ({"targets": [{"kind": "workflow"}]}, "targets[0].kind"),
        ({"targets": [{"kind": "queue"}]}, "targets[0].queue"),
        ({"targets": [{"kind": "queue", "queue": "nowhere"}]}, "targets[0].queue"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    before = http.get("/rules").json()
    full = {"name": "bad", "pattern": {"type": ["a"]}, "targets": TO_OTHER, **body}
    assert error(http.post("/rules", json=full), 400)["field"] == field
    assert error(http.put("/rules/bad", json=full), 400)["field"] == field
    assert http.get("/rules").json() == before


def test_app_rules_are_read_only_and_names_unique(http: httpx.Client) -> None:
    rule = {"pattern": {"type": ["a"]}, "targets": TO_OTHER}
    assert "declared in the app" in error(http.put("/rules/record-0", json=rule), 409)["message"]
    error(http.patch("/rules/record-0", json={"enabled": False}), 409)
    error(http.delete("/rules/record-0"), 409)
    assert http.get("/rules/record-0").json()["origin"] == "app"
    assert http.post("/rules", json={"name": "once", **rule}).status_code == 201
    assert (
        "already exists"
        in error(http.post("/rules", json={"name": "once", **rule}), 409)["message"]
    )
    assert error(http.put("/rules/once", json={"name": "twice", **rule}), 400)["field"] == "name"
    assert error(http.patch("/rules/once", json={"origin": "app"}), 400)["field"] == "origin"
    assert error(http.get("/rules/no%20such"), 400)["field"] == "name"
    error(http.delete("/rules/missing"), 404)
    assert http.delete("/rules/once").status_code == 200


def test_buses_are_listed_with_their_rule_counts(http: httpx.Client) -> None:
    rule = {"pattern": {"type": ["a"]}, "targets": TO_OTHER, "bus": "side"}
    assert http.put("/rules/on-side", json=rule).status_code == 201
    assert http.put("/rules/off-side", json={**rule, "enabled": False}).status_code == 201
    buses = {b["name"]: b for b in http.get("/buses").json()["buses"]}
    assert buses["side"] == {"name": "side", "rules": 2, "enabled_rules": 1}
    assert buses["default"]["rules"] >= 1
    assert matched(http, "a", bus="side") == ["on-side"]
    for name in ("on-side", "off-side"):
        http.delete(f"/rules/{name}")
    assert "side" not in {b["name"] for b in http.get("/buses").json()["buses"]}


def test_rules_survive_a_restart(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    proc, url = start_squall(tmp_path)
    rule = {"name": "kept", "pattern": {"type": ["k"]}, "targets": TO_OTHER, "bus": "kept-bus"}
    try:
        assert httpx.post(f"{url}/api/v1/rules", json=rule, headers=AUTH).status_code == 201
    finally:
        stop(proc, tmp_path)
    proc, url = start_squall(tmp_path)
    try:
        with httpx.Client(base_url=f"{url}/api/v1", headers=AUTH, timeout=30) as http:
            assert http.get("/rules/kept").json()["bus"] == "kept-bus"
            assert matched(http, "k", bus="kept-bus") == ["kept"]
    finally:
        stop(proc, tmp_path)


# --- the CLI ---------------------------------------------------------------------------------


def cli(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SQUALL, *args, "--url", url],
        capture_output=True,
        text=True,
        timeout=30,
        env=client_env(),
        input=stdin,
        check=False,
    )


def test_cli_puts_shows_disables_and_deletes_rules(url: str, tmp_path: Path) -> None:
    targets_file = tmp_path / "targets.json"
    targets_file.write_text(
        json.dumps([{"kind": "function", "function": "other", "input_path": "$.data"}])
    )
    done = cli(
        url,
        "rules",
        "put",
        "cli-rule",
        "--type",
        "cli.happened",
        "--pattern",
        '{"data": {"n": [{"numeric": [">", 0]}]}}',
        "--targets-file",
        str(targets_file),
        "--target",
        "function:record",
        "--target",
        "http:https://hooks.example.com/cli",
        "--description",
        "made by the CLI",
        "--disabled",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "rule cli-rule created: function:other, function:record, http:https://hooks.example.com/cli"
    )
    shown = json.loads(cli(url, "rules", "show", "cli-rule", "--json").stdout)
    assert shown["pattern"] == {"data": {"n": [{"numeric": [">", 0]}]}, "type": ["cli.happened"]}
    assert [t["id"] for t in shown["targets"]] == ["0", "1", "2"]
    assert shown["targets"][0]["input_path"] == "$.data"
    assert (shown["enabled"], shown["description"]) == (False, "made by the CLI")
    assert cli(url, "rules", "enable", "cli-rule").stdout.strip() == "rule cli-rule enabled"
    listed = json.loads(cli(url, "rules", "list", "--json").stdout)["rules"]
    assert {r["name"]: r["enabled"] for r in listed}["cli-rule"] is True
    table = cli(url, "rules", "list").stdout
    assert "cli-rule" in table and "http:https://hooks.example.com/cli" in table
    legacy = cli(url, "events", "rules", "--json")  # the older spelling still lists them
    assert {r["name"] for r in json.loads(legacy.stdout)["rules"]} >= {"cli-rule", "record-0"}
    disabled = json.loads(cli(url, "rules", "disable", "cli-rule", "--json").stdout)
    assert disabled["enabled"] is False
    again = cli(url, "rules", "put", "cli-rule", "--type", "x", "--target", "function:other")
    assert again.stdout.strip() == "rule cli-rule replaced: function:other"
    buses = json.loads(cli(url, "rules", "buses", "--json").stdout)["buses"]
    assert "default" in {b["name"] for b in buses}
    assert cli(url, "rules", "delete", "cli-rule").stdout.strip() == "rule cli-rule deleted"
    gone = cli(url, "rules", "show", "cli-rule")
    assert gone.returncode == 2 and "NotFound" in gone.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--type", "x", "--target", "lambda:f"), "targets[0]"),
        (("--type", "x", "--target", "function:nobody"), "targets[0].function"),
        (("--pattern", '{"data": {"n": [{"numeric": "x"}]}}'), "pattern.data.n[0].numeric"),
        (("--pattern", "{not json"), "--pattern"),
        (("--pattern", "@/nonexistent/p.json"), "--pattern file"),
        (("--target", "function:other"), "--pattern or --type"),
        (("--type", "x", "--target", "bus:nowhere"), "targets[0].bus"),
    ],
)
def test_cli_bad_input_exits_2_naming_the_field(
    url: str, args: tuple[str, ...], needle: str
) -> None:
    done = cli(url, "rules", "put", "bad-cli", *args)
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith("error: ") and needle in done.stderr
    assert cli(url, "rules", "show", "bad-cli").returncode == 2  # nothing was made


def test_cli_app_rules_are_read_only(url: str) -> None:
    done = cli(url, "rules", "delete", "record-0")
    assert done.returncode == 2 and "declared in the app" in done.stderr
    for command in ("list", "show", "put", "delete", "enable", "disable", "buses"):
        assert cli(url, "rules", command, "--help").returncode == 0
