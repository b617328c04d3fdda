"""Queues over the admin API and the `squall queues` CLI, against a real `squall up`."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import AUTH, SQUALL, client_env, start_squall, wait_for

APP = """\
import squall

app = squall.App("q")
app.queue_resource("inbox", visibility_timeout_s=2)
app.queue_resource("tasks.fifo", fifo=True)


@app.queue("work", batch_size=5)
def worker(messages, ctx):
    return [m["id"] for m in messages if m["body"] == "bad"]
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("queues")
    (path / "app.py").write_text(APP)
    return path


@pytest.fixture(scope="module")
def url(workdir: Path) -> Iterator[str]:
    proc, url = start_squall(workdir)
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert "Traceback" not in (workdir / "up.err").read_text()


@pytest.fixture
def http(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{url}/api/v1", headers=AUTH, timeout=30) as client:
        yield client


def squall(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SQUALL, *args, "--url", url],
        input=stdin,
        capture_output=True,
        text=True,
        env=client_env(),
        timeout=60,
    )


def test_send_receive_delete_and_counts(http: httpx.Client) -> None:
    sent = http.post("/queues/inbox/messages", json={"body": {"n": 1}, "attributes": {"a": "b"}})
    assert sent.status_code == 201 and sent.json()["duplicate"] is False
    queue = http.get("/queues/inbox").json()
    assert queue["visible"] == 1 and queue["in_flight"] == 0 and queue["oldest_age_s"] >= 0
    [message] = http.post("/queues/inbox/receive", json={"max_messages": 10}).json()["messages"]
    assert message["id"] == sent.json()["id"] and message["body"] == {"n": 1}
    assert message["attributes"] == {"a": "b"} and message["receive_count"] == 1
    assert http.get("/queues/inbox").json()["in_flight"] == 1
    receipt = message["receipt"]
    changed = http.post(f"/queues/inbox/messages/{receipt}/visibility", json={"visibility_s": 0})
    assert changed.status_code == 200
    [again] = http.post("/queues/inbox/receive", json={}).json()["messages"]
    assert again["receive_count"] == 2
    assert http.delete(f"/queues/inbox/messages/{receipt}").status_code == 404  # stale
    assert http.delete(f"/queues/inbox/messages/{again['receipt']}").status_code == 200
    queue = http.get("/queues/inbox").json()
    assert (queue["visible"], queue["in_flight"], queue["oldest_age_s"]) == (0, 0, None)
    names = [q["name"] for q in http.get("/queues").json()["queues"]]
    assert {"inbox", "tasks.fifo", "work"} <= set(names)


def test_a_batch_is_sent_in_one_commit_or_refused_whole(http: httpx.Client) -> None:
    entries = [{"body": n, "group_id": "g", "dedup_id": f"d{n % 2}"} for n in range(3)]
    sent = http.post("/queues/tasks.fifo/messages/batch", json={"messages": entries})
    assert sent.status_code == 201, sent.text
    assert [m["duplicate"] for m in sent.json()["messages"]] == [False, False, True]
    bad = [{"body": 1, "group_id": "g"}, {"body": 2}]
    refused = http.post("/queues/tasks.fifo/messages/batch", json={"messages": bad})
    assert refused.status_code == 400
    assert refused.json()["error"]["field"] == "messages[1].group_id"
    eleven = http.post("/queues/inbox/messages/batch", json={"messages": [{"body": 1}] * 11})
    assert eleven.status_code == 400 and eleven.json()["error"]["field"] == "messages"
    got = http.post("/queues/tasks.fifo/receive", json={"max_messages": 10}).json()["messages"]
    assert [m["body"] for m in got] == [0, 1]
    for m in got:
        http.delete(f"/queues/tasks.fifo/messages/{m['receipt']}").raise_for_status()


def test_long_polling_answers_when_a_message_arrives(http: httpx.Client) -> None:
    def send_later() -> None:
        time.sleep(0.5)
        http.post("/queues/inbox/messages", json={"body": "late"}).raise_for_status()

    sender = threading.Thread(target=send_later)
    started = time.monotonic()
    sender.start()
    messages = http.post("/queues/inbox/receive", json={"wait_s": 10}).json()["messages"]
    sender.join()
    assert [m["body"] for m in messages] == ["late"]
    assert 0.4 < time.monotonic() - started < 3
    http.delete(f"/queues/inbox/messages/{messages[0]['receipt']}").raise_for_status()


def test_bad_input_is_refused_naming_the_field(http: httpx.Client) -> None:
    big = http.post("/queues/inbox/messages", json={"body": "x" * 262144})
    assert big.status_code == 413
    assert "262146 bytes" in big.json()["error"]["message"]
    assert "262144 bytes" in big.json()["error"]["message"]
    assert http.post("/queues/nope/messages", json={"body": 1}).status_code == 404
    cases = [
        ("tasks.fifo", {"body": 1}, "group_id"),
        ("inbox", {"body": 1, "delay_s": 901}, "delay_s"),
        ("inbox", {"body": 1, "group_id": "g"}, "group_id"),
        ("inbox", {"nobody": 1}, "nobody"),
        ("inbox", {}, "body"),
    ]
    for queue, body, field in cases:
        response = http.post(f"/queues/{queue}/messages", json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["field"] == field
    for body, field in [({"wait_s": 21}, "wait_s"), ({"max_messages": 0}, "max_messages")]:
        response = http.post("/queues/inbox/receive", json=body)
        assert response.status_code == 400 and response.json()["error"]["field"] == field
    created = http.post("/queues", json={"name": "x", "dead_letter": "nope", "max_receive": 3})
    assert created.status_code == 400 and created.json()["error"]["field"] == "dead_letter"
    assert http.delete("/queues/inbox").status_code == 409  # the app's own
    assert http.get("/queues/inbox").json()["visible"] == 0


def test_a_trigger_deletes_what_succeeded(http: httpx.Client) -> None:
    for body in ("good", "bad", "good"):
        http.post("/queues/work/messages", json={"body": body}).raise_for_status()

    def settled() -> dict[str, int] | None:
        queue = http.get("/queues/work").json()
        return queue if queue["visible"] + queue["in_flight"] + queue["delayed"] == 1 else None

    queue = wait_for(settled)
    assert queue["in_flight"] + queue["visible"] == 1  # the bad one, kept for another receive


def test_cli_creates_sends_receives_purges_and_redrives(url: str) -> None:
    done = squall(url, "queues", "create", "cli-dlq", "--json")
    assert done.returncode == 0, done.stderr
    done = squall(
        url, "queues", "create", "cli", "--max-receive", "1", "--dead-letter", "cli-dlq",
        "--visibility-timeout", "0",
    )
    assert done.returncode == 0 and "created queue cli" in done.stdout, done.stderr
    assert squall(url, "queues", "create", "cli").returncode == 2  # taken
    sent = squall(url, "queues", "send", "cli", "--data", '{"k": 1}', "-a", "x=y", "--json")
    assert sent.returncode == 0, sent.stderr
    message_id = json.loads(sent.stdout)["id"]
    got = squall(url, "queues", "receive", "cli", "--max", "10", "--json")
    assert got.returncode == 0, got.stderr
    [message] = json.loads(got.stdout)["messages"]
    assert message["id"] == message_id and message["attributes"] == {"x": "y"}
    # Visible again at once (timeout 0): past max_receive=1 it moves to the dead-letter queue.
    assert json.loads(squall(url, "queues", "receive", "cli", "--json").stdout) == {
        "messages": []
    }
    listed = json.loads(squall(url, "queues", "ls", "--json").stdout)["queues"]
    assert {q["name"]: q["visible"] for q in listed}["cli-dlq"] == 1
    moved = squall(url, "queues", "redrive", "cli-dlq", "--json")
    assert json.loads(moved.stdout) == {"moved": {"cli": 1}, "total": 1}
    shown = json.loads(squall(url, "queues", "show", "cli", "--json").stdout)
    assert shown["visible"] == 1 and shown["dead_letter"] == "cli-dlq"
    taken = squall(url, "queues", "receive", "cli", "--delete")
    assert taken.returncode == 0 and "(deleted)" in taken.stdout, taken.stderr
    assert json.loads(squall(url, "queues", "show", "cli", "--json").stdout)["in_flight"] == 0
    squall(url, "queues", "send", "cli", "--data", "2").check_returncode()
    assert squall(url, "queues", "purge", "cli").returncode == 2  # not a terminal: needs --yes
    assert squall(url, "queues", "purge", "cli", "--yes").returncode == 0
    assert json.loads(squall(url, "queues", "show", "cli", "--json").stdout)["visible"] == 0
    assert squall(url, "queues", "delete", "cli", "--yes").returncode == 0
    missing = squall(url, "queues", "send", "cli", "--data", "1")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    bad = squall(url, "queues", "send", "cli-dlq", "--data", "{nope")
    assert bad.returncode == 2 and "invalid JSON" in bad.stderr
    bad = squall(url, "queues", "receive", "cli-dlq", "--wait", "30")
    assert bad.returncode == 2 and "wait_s" in bad.stderr


def test_cli_help_lists_every_command() -> None:
    done = subprocess.run([SQUALL, "queues", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for command in ("ls", "show", "create", "delete", "send", "receive", "purge", "redrive"):
        assert command in done.stdout


def test_a_publish_key_may_send_but_not_receive(url: str, http: httpx.Client) -> None:
    key = http.post("/keys", json={"name": "producer", "scopes": ["publish"]}).json()["key"]
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=f"{url}/api/v1", headers=headers) as producer:
        assert producer.post("/queues/inbox/messages", json={"body": 1}).status_code == 201
        batch = {"messages": [{"body": 2}]}
        assert producer.post("/queues/inbox/messages/batch", json=batch).status_code == 201
        assert producer.post("/queues/inbox/receive", json={}).status_code == 403
    http.post("/queues/inbox/purge").raise_for_status()
