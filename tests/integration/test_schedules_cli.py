"""`squall schedules` and `/api/v1/schedules` against a real `squall up`."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import AUTH, SQUALL, client_env, start_squall, wait_for
from test_cli import squall, squall_json

APP = """\
import squall

app = squall.App("cal")

@app.schedule("cron(0 9 ? * MON-FRI *)", tz="Europe/Paris", name="weekday-report")
@app.schedule("rate(6 hours)", name="sweep", payload={"full": True})
def report(event, ctx):
    return event["schedule"]
"""

PARIS = ["--tz", "Europe/Paris", "--from", "2026-03-27T10:00:00Z", "-n", "3"]
MONDAY_TO_WEDNESDAY = ["2026-03-30T07:00:00Z", "2026-03-31T07:00:00Z", "2026-04-01T07:00:00Z"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("schedules")
    (path / "app.py").write_text(APP)
    return path


@pytest.fixture(scope="module")
def url(workdir: Path) -> Iterator[str]:
    proc, url = start_squall(workdir)
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert "Traceback" not in (workdir / "up.err").read_text()


def api(url: str, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{url}/api/v1{path}", params=params, headers=AUTH, timeout=10)


def test_next_prints_fire_times_and_matches_the_api(url: str) -> None:
    done = squall(url, "schedules", "next", "cron(0 9 ? * MON-FRI *)", *PARIS)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == MONDAY_TO_WEDNESDAY
    as_json = squall_json(url, "schedules", "next", "cron(0 9 ? * MON-FRI *)", *PARIS)
    assert as_json == {
        "expression": "cron(0 9 ? * MON-FRI *)",
        "tz": "Europe/Paris",
        "times": MONDAY_TO_WEDNESDAY,
    }
    answer = api(
        url,
        "/schedules/next",
        expression="cron(0 9 ? * MON-FRI *)",
        tz="Europe/Paris",
        count="3",
        **{"from": "2026-03-27T10:00:00Z"},
    )
    assert answer.status_code == 200 and answer.json() == as_json


@pytest.mark.parametrize(
    ("args", "field", "says"),
    [
        (["rate(1 minutes)"], "expression", "singular"),
        (["cron(0 9 * * MON *)"], "expression", "exactly one of day-of-month and day-of-week"),
        (["rate(5 minutes)", "--tz", "Mars/Olympus"], "tz", "IANA"),
        (["rate(5 minutes)", "--from", "tomorrow"], "from", "2026-03-29T00:00:00Z"),
    ],
)
def test_bad_input_exits_2_and_is_a_400_naming_the_field(
    url: str, args: list[str], field: str, says: str
) -> None:
    done = squall(url, "schedules", "next", *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert says in done.stderr and done.stderr.startswith("error: InvalidInput")
    options = dict(zip(args[1::2], args[2::2], strict=True))
    params = {"expression": args[0], **{k.lstrip("-"): v for k, v in options.items()}}
    answer = api(url, "/schedules/next", **params)
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == field
    assert says in answer.json()["error"]["message"]


def test_the_api_names_a_missing_expression_and_a_bad_count(url: str) -> None:
    assert api(url, "/schedules/next").json()["error"]["field"] == "expression"
    bad = api(url, "/schedules/next", expression="rate(5 minutes)", count="0")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "count"
    too_many = squall(url, "schedules", "next", "rate(5 minutes)", "-n", "1000")
    assert too_many.returncode == 2


def test_ls_lists_the_apps_schedules_with_next_times(url: str) -> None:
    listed = squall_json(url, "schedules", "ls", "-n", "2")["schedules"]
    by_name = {s["name"]: s for s in listed}
    assert set(by_name) == {"weekday-report", "sweep"}
    report = by_name["weekday-report"]
    assert report["function"] == "report" and report["tz"] == "Europe/Paris"
    assert len(report["next_fires"]) == 2 and report["last_fire"] is None
    assert report["missed"] == "skip" and report["fired"] == 0
    api_listed = api(url, "/schedules", count="2").json()["schedules"]
    assert api_listed == listed
    table = squall(url, "schedules", "ls")
    assert table.returncode == 0
    assert "weekday-report" in table.stdout and "rate(6 hours)" in table.stdout
    assert report["next_fires"][0] in table.stdout


def test_help_for_every_schedules_command(url: str) -> None:
    for command in ([], ["next"], ["ls"]):
        done = squall(url, "schedules", *command, "--help")
        assert done.returncode == 0 and "Usage" in done.stdout


def test_up_refuses_an_invalid_schedule_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "import squall\napp = squall.App('bad')\n\n"
        "@app.schedule('cron(0 9 ? * MON-FRI)')\ndef tick(event, ctx):\n    pass\n"
    )
    done = subprocess.run(
        [SQUALL, "up", "app.py", "--port", "0", "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=client_env(),
    )
    assert done.returncode == 2
    assert "'tick'" in done.stderr and "six fields" in done.stderr
    assert "Traceback" not in done.stderr


def test_put_show_disable_enable_delete_through_the_cli(url: str) -> None:
    made = squall_json(
        url, "schedules", "put", "nightly", "cron(0 3 * * ? *)", "-f", "report",
        "--tz", "America/New_York", "--payload", '{"full": false}', "--jitter", "30",
    )
    assert made["origin"] == "api" and made["payload"] == {"full": False}
    assert made["next_fires"][0].endswith(("T07:00:00Z", "T08:00:00Z"))  # 03:00 in New York
    assert squall_json(url, "schedules", "show", "nightly") == made
    off = squall_json(url, "schedules", "disable", "nightly")
    assert off["enabled"] is False and off["next_fires"] == []
    on = squall_json(url, "schedules", "enable", "nightly")
    assert on["next_fires"] == made["next_fires"]
    listed = {s["name"]: s["origin"] for s in squall_json(url, "schedules", "ls")["schedules"]}
    assert listed == {"nightly": "api", "sweep": "app", "weekday-report": "app"}
    assert squall_json(url, "schedules", "delete", "nightly") == {"deleted": "nightly"}
    gone = squall(url, "schedules", "show", "nightly")
    assert gone.returncode == 2 and "NotFound" in gone.stderr


def test_bad_schedules_are_refused_naming_the_field(url: str) -> None:
    bad = squall(url, "schedules", "put", "x", "rate(1 minutes)", "-f", "report")
    assert bad.returncode == 2 and "singular" in bad.stderr
    ghost = squall(url, "schedules", "put", "x", "rate(5 minutes)", "-f", "ghost")
    assert ghost.returncode == 2 and "ghost" in ghost.stderr
    app_owned = squall(url, "schedules", "delete", "sweep")
    assert app_owned.returncode == 2 and "read-only" in app_owned.stderr
    answer = httpx.put(
        f"{url}/api/v1/schedules/x",
        json={"function": "report", "expression": "rate(5 minutes)", "every": 1},
        headers=AUTH,
    )
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "every"
    patched = httpx.patch(f"{url}/api/v1/schedules/sweep", json={"enabled": False}, headers=AUTH)
    assert patched.status_code == 409
    assert api(url, "/schedules/x").status_code == 404


def test_up_announces_the_schedules(workdir: Path, url: str) -> None:
    out = wait_for(lambda: t if "press Ctrl-C" in (t := (workdir / "up.out").read_text()) else None)
    assert "schedule sweep  rate(6 hours)  -> report, next 20" in out
    assert "schedule weekday-report  cron(0 9 ? * MON-FRI *)  -> report, next 20" in out
