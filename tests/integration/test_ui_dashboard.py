"""The dashboard at /ui in a real browser (Debian's Chromium, headless) against a real `squall up`.

One platform and one browser serve the whole module; each test gets a fresh browser context
(its own sessionStorage, so its own sign-in). The platform is seeded with an app that has
functions, a rule, a queue, an async function that dead-letters on its first try and a
workflow. Screenshots of the overview, a function, and a workflow run go to tests/artifacts/.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright
from support import ADMIN_KEY, AUTH, start_squall, wait_for

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
TIMEOUT_MS = 30_000  # generous: the machine may be busy

APP = """\
import os
import pathlib

import squall

app = squall.App("dashboard")
MARKS = pathlib.Path(os.environ["UI_MARKS"])

app.queue_resource("jobs-dlq")
app.queue_resource("jobs", visibility_timeout_s=1, max_receive=1, dead_letter="jobs-dlq")


@app.function(memory_mb=256, description="says hello")
def hello(event, ctx):
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    print(f"saying hello to {name}")
    ctx.logger.warning("greeted %s", name)
    return {"hello": name}


@app.function(retries=0)
def flaky(event, ctx):
    # Fails the first time it sees an id, so a redrive of its dead letter succeeds.
    mark = MARKS / f"flaky-{event['id']}"
    if not mark.exists():
        mark.write_text("seen")
        raise RuntimeError(f"first try of {event['id']} fails")
    print(f"second try of {event['id']} works")
    return {"ok": event["id"]}


@app.on("order.placed", rule="orders-to-audit")
def audit(event, ctx):
    print("audited", event["data"])


@app.http("POST /orders", name="place-order", permissions=["publish:default"])
def place_order(request, ctx):
    ctx.publish("order.placed", request.json(), subject="ui")
    return {"placed": True}


@app.queue("jobs")
def work(messages, ctx):
    # A poison message fails its first receive and so moves to jobs-dlq; redriven, it works.
    failed = []
    for message in messages:
        body = message["body"]
        mark = MARKS / f"job-{body['n']}"
        if body.get("poison") and not mark.exists():
            mark.write_text("seen")
            failed.append(message["id"])
        else:
            print("worked on", body["n"])
    return {"failed": failed}


def reserve(order):
    return {"reserved": order["id"]}


def charge(order):
    return {"charged": order["total"]}


@app.workflow()
def fulfil(wf, order):
    r = wf.step(reserve, order)
    c = wf.step(charge, order)
    return {"r": r, "c": c}
"""

RUN_ID = "run-ui-1"


@dataclass
class Server:
    url: str
    http: httpx.Client  # the admin API, with the admin key


def _seed(http: httpx.Client) -> None:
    assert http.post("/functions/hello/invoke", json={"name": "seed"}).status_code == 200
    queued = http.post(
        "/functions/flaky/invoke", json={"id": "d1"}, headers={"X-Squall-Invocation-Type": "Event"}
    )
    assert queued.status_code == 202, queued.text
    event = {"specversion": "1.0", "id": "e1", "source": "shop", "type": "order.placed",
             "data": {"order": 1}}
    published = http.post(
        "/events", content=json.dumps(event),
        headers={"Content-Type": "application/cloudevents+json"},
    )
    assert published.status_code in (200, 202), published.text
    assert http.post("/queues/jobs/messages", json={"body": {"n": 1}}).status_code == 201
    poison = {"body": {"n": 2, "poison": True}}
    assert http.post("/queues/jobs/messages", json=poison).status_code == 201
    started = http.post("/workflows/fulfil/runs", json={"input": {"id": "o1", "total": 3},
                                                        "id": RUN_ID})
    assert started.status_code == 201, started.text

    def settled() -> bool | None:
        letters = http.get("/dead-letters").json()["dead_letters"]
        run = http.get(f"/workflows/runs/{RUN_ID}").json()
        audited = http.get("/invocations", params={"function": "audit"}).json()["invocations"]
        dead = http.get("/queues/jobs-dlq").json()["visible"]
        done = letters and run["status"] == "completed" and audited and dead == 1
        return True if done else None

    wait_for(settled, timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("dashboard")
    (workdir / "app.py").write_text(APP)
    proc, url = start_squall(workdir, env={"UI_MARKS": str(workdir)})
    with httpx.Client(base_url=f"{url}/api/v1", headers=AUTH, timeout=30) as http:
        _seed(http)
        yield Server(url, http)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert "Traceback" not in (workdir / "up.err").read_text()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@dataclass
class Dashboard:
    page: Page
    url: str
    errors: list[str] = field(default_factory=list)

    def open(self, route: str = "") -> None:
        self.page.goto(f"{self.url}/ui/#/{route}")

    def sign_in(self, key: str = ADMIN_KEY) -> None:
        self.page.goto(f"{self.url}/ui/")
        self.page.fill("#key", key)
        self.page.click("#sign-in-form button[type=submit]")

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def dashboard(browser: Browser, server: Server) -> Iterator[Dashboard]:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    board = Dashboard(page, server.url)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            board.errors.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: board.errors.append(f"page error: {error}"))
    yield board
    context.close()


def signed_in(dashboard: Dashboard) -> Page:
    dashboard.sign_in()
    dashboard.page.wait_for_selector("#nav:not([hidden])")
    return dashboard.page


# Each page, and what shows it loaded its data (not just its frame).
PAGES = [
    ("overview", "[data-page=overview] .chart-card svg.chart"),
    ("functions", "[data-page=functions] a[href='#/functions/flaky']"),
    ("functions/hello", "[data-page=functions] .stat[data-stat=warm]"),
    ("events", "[data-page=events] svg.graph .node.rule"),
    ("queues", "[data-page=queues] tr[data-queue=jobs]"),
    ("dead-letters", "[data-page=dead-letters] h1"),
    ("workflows", f"[data-page=workflows] a[href='#/workflows/runs/{RUN_ID}']"),
    (f"workflows/runs/{RUN_ID}", "[data-page=workflows] .tl-row.step"),
    ("traces", "[data-page=traces] [data-unavailable=traces], [data-page=traces] table"),
    ("logs", "[data-page=logs] ol.logs li"),
    ("cost", "[data-page=cost] .bar-list .bar-row"),
]


def test_every_page_loads_without_console_errors(dashboard: Dashboard) -> None:
    page = signed_in(dashboard)
    for route, ready in PAGES:
        dashboard.open(route)
        page.wait_for_selector(ready)
        page.wait_for_load_state("networkidle")
        assert dashboard.errors == [], f"#{route}: {dashboard.errors}"
    dashboard.open("overview")
    page.wait_for_selector("[data-page=overview] .chart-card svg.chart")
    assert page.locator(".chart-card").count() == 4
    assert "hello" in page.inner_text("[data-page=overview] table")
    dashboard.shot("overview")
    assert dashboard.errors == []


def test_pages_show_the_platforms_data(dashboard: Dashboard) -> None:
    page = signed_in(dashboard)
    dashboard.open("events")
    graph = page.locator("svg.graph")
    graph.locator(".node.rule").wait_for()
    assert "rule orders-to-audit" in graph.text_content()
    assert "function audit" in graph.text_content()
    tail = page.locator("section:has-text('Live tail') table")
    tail.wait_for()
    assert "audit" in tail.inner_text()
    dashboard.open("logs")
    page.wait_for_selector("ol.logs li")
    page.fill("input[name=grep]", "audited")
    page.click("form.filters button[type=submit]")
    page.wait_for_function(
        "() => [...document.querySelectorAll('ol.logs li')].every(li =>"
        " li.textContent.includes('audited'))"
    )
    assert "audited" in page.inner_text("ol.logs")
    dashboard.open("queues")
    row = page.locator("tr[data-queue=jobs-dlq]")
    row.wait_for()
    assert row.locator("button.redrive").count() == 1  # the dead-letter queue of jobs
    assert page.locator("tr[data-queue=jobs] button.redrive").count() == 0
    assert dashboard.errors == []


def test_invoking_a_function_shows_its_result_and_logs(
    dashboard: Dashboard, server: Server
) -> None:
    page = signed_in(dashboard)
    dashboard.open("functions/hello")
    page.fill("textarea[name=payload]", '{"name": "browser"}')
    page.click(".invoke-form button[type=submit]")
    shown = page.locator(".invoke-output .invocation")
    shown.wait_for()
    assert "succeeded" in shown.locator(".pill").first.inner_text()
    assert '"hello": "browser"' in shown.locator(".result pre").inner_text()
    logs = shown.locator(".invocation-logs").inner_text()
    assert "saying hello to browser" in logs
    assert "greeted browser" in logs
    invocation_id = shown.get_attribute("data-invocation")
    record = server.http.get(f"/invocations/{invocation_id}").json()
    assert (record["function"], record["status"]) == ("hello", "succeeded")
    # The recent invocations list picks it up, and opens it with its logs.
    page.locator(f"button:text-is('{invocation_id}')").click()
    page.wait_for_selector(f"tr.expanded .invocation[data-invocation='{invocation_id}']")
    assert "saying hello to browser" in page.inner_text("tr.expanded")
    dashboard.shot("function")
    assert dashboard.errors == []


def test_an_async_invoke_waits_for_the_result(dashboard: Dashboard) -> None:
    page = signed_in(dashboard)
    dashboard.open("functions/hello")
    page.fill("textarea[name=payload]", '{"name": "later"}')
    page.select_option("select[name=mode]", "async")
    page.click(".invoke-form button[type=submit]")
    shown = page.locator(".invoke-output .invocation")
    shown.wait_for()
    assert "async" in shown.inner_text()  # the trigger
    assert '"hello": "later"' in shown.locator(".result pre").inner_text()
    assert dashboard.errors == []


def test_a_payload_that_is_not_json_is_refused_before_sending(
    dashboard: Dashboard, server: Server
) -> None:
    before = server.http.get("/invocations", params={"function": "hello"}).json()
    page = signed_in(dashboard)
    dashboard.open("functions/hello")
    page.fill("textarea[name=payload]", "{nope")
    page.click(".invoke-form button[type=submit]")
    error = page.locator(".invoke-output .error")
    error.wait_for()
    assert "not JSON" in error.inner_text()
    after = server.http.get("/invocations", params={"function": "hello"}).json()
    assert after["invocations"] == before["invocations"]


def test_redriving_a_dead_letter_from_the_ui_runs_it_again(
    dashboard: Dashboard, server: Server
) -> None:
    page = signed_in(dashboard)
    dashboard.open("dead-letters")
    row = page.locator("tr[data-function=flaky]")
    row.wait_for()
    letter_id = row.get_attribute("data-letter")
    assert "first try of d1 fails" in row.inner_text()
    row.locator("button.redrive").click()
    notice = page.locator(".notice")
    notice.wait_for()
    assert "Redriven 1" in notice.inner_text()
    # A redrive queues a fresh attempt of the same invocation.
    assert (notice.get_attribute("data-redriven") or "").split() == [letter_id]

    def rerun() -> dict[str, Any] | None:
        record = server.http.get(f"/invocations/{letter_id}").json()
        return record if record["status"] == "succeeded" else None

    record = wait_for(rerun, timeout=20)
    assert record["trigger"] == "redrive"
    assert any("second try of d1 works" in line["message"] for line in record["logs"])
    letters = server.http.get("/dead-letters", params={"function": "flaky"}).json()
    assert letters["dead_letters"] == []
    page.wait_for_selector(f"tr[data-letter='{letter_id}']", state="detached")
    assert dashboard.errors == []


def test_redriving_a_dead_letter_queue_from_the_ui_moves_its_messages_back(
    dashboard: Dashboard, server: Server
) -> None:
    page = signed_in(dashboard)
    dashboard.open("queues")
    button = page.locator("tr[data-queue=jobs-dlq] button.redrive:enabled")
    button.wait_for()
    button.click()
    notice = page.locator(".notice")
    notice.wait_for()
    assert "1 message(s) moved from jobs-dlq" in notice.inner_text()

    def worked() -> bool | None:
        logs = server.http.get("/logs", params={"function": "work", "grep": "worked on 2"})
        return True if logs.json()["logs"] else None

    wait_for(worked, timeout=20)
    assert server.http.get("/queues/jobs-dlq").json()["visible"] == 0
    assert dashboard.errors == []


def test_a_workflow_runs_timeline_shows_its_steps(dashboard: Dashboard) -> None:
    page = signed_in(dashboard)
    dashboard.open("workflows")
    page.click(f"a[href='#/workflows/runs/{RUN_ID}']")
    steps = page.locator(".timeline .tl-row.step")
    steps.first.wait_for()
    assert [steps.nth(i).get_attribute("data-step") for i in range(steps.count())] == [
        "reserve",
        "charge",
    ]
    assert {steps.nth(i).get_attribute("data-status") for i in range(2)} == {"completed"}
    assert "ms" in steps.nth(0).locator(".tl-dur").inner_text()
    assert "completed" in page.inner_text("dl.facts")
    assert '"charged": 3' in page.inner_text("[data-page=workflows]")
    dashboard.shot("workflow-run")
    assert dashboard.errors == []


def test_a_trace_waterfall_follows_an_order_across_the_async_hop(
    dashboard: Dashboard, server: Server
) -> None:
    placed = httpx.post(f"{server.url}/orders", json={"id": "traced"})
    assert placed.status_code == 200, placed.text
    trace_id = placed.headers["x-squall-trace-id"]

    def whole() -> list[dict[str, Any]] | None:
        answer = server.http.get(f"/traces/{trace_id}")
        if answer.status_code != 200:
            return None
        spans: list[dict[str, Any]] = answer.json()["spans"]
        return spans if "invoke audit" in {span["name"] for span in spans} else None

    spans = wait_for(whole, timeout=30)
    by_id = {span["span_id"]: span for span in spans}

    def ancestors(span: dict[str, Any]) -> list[str]:
        names = []
        while span["parent_id"] is not None:
            span = by_id[span["parent_id"]]
            names.append(span["name"])
        return names

    audit = next(span for span in spans if span["name"] == "invoke audit")
    chain = ancestors(audit)  # the async hop: the event's delivery, its publish, the request
    assert chain[0].startswith("deliver ") and chain[-1] == "POST /orders"
    assert "publish default" in chain and "invoke place-order" in chain

    page = signed_in(dashboard)
    dashboard.open(f"traces/{trace_id}")
    rows = page.locator(".waterfall .tl-row.span")
    rows.first.wait_for()
    shown = {rows.nth(i).get_attribute("data-span") for i in range(rows.count())}
    assert shown == set(by_id)  # every span, across the hop
    names = page.inner_text(".waterfall")
    for name in ("POST /orders", "invoke place-order", "publish default", "invoke audit"):
        assert name in names
    page.click(f".tl-row.span[data-span='{audit['span_id']}']")
    assert audit["parent_id"] in page.inner_text("[data-page=traces]")
    dashboard.shot("trace")
    assert dashboard.errors == []


def test_a_bad_key_is_refused_at_sign_in(dashboard: Dashboard) -> None:
    dashboard.sign_in("sq_not-a-real-key")
    error = dashboard.page.locator("#sign-in-error")
    error.wait_for()
    assert "not accepted" in error.inner_text()
    assert dashboard.page.locator("#nav").is_hidden()
    assert dashboard.page.evaluate("sessionStorage.length") == 0


def test_a_revoked_key_goes_back_to_sign_in(dashboard: Dashboard, server: Server) -> None:
    made = server.http.post("/keys", json={"name": "ui-reader", "scopes": ["read"]}).json()
    dashboard.sign_in(made["key"])
    page = dashboard.page
    page.wait_for_selector("#nav:not([hidden])")
    assert server.http.delete(f"/keys/{made['id']}").status_code == 200
    dashboard.open("functions")
    error = page.locator("#sign-in-error")
    error.wait_for()
    assert "sign in again" in error.inner_text()
    assert page.evaluate("sessionStorage.length") == 0


def test_a_read_only_key_sees_why_it_cannot_invoke(dashboard: Dashboard, server: Server) -> None:
    made = server.http.post("/keys", json={"name": "ui-viewer", "scopes": ["read"]}).json()
    dashboard.sign_in(made["key"])
    page = dashboard.page
    page.wait_for_selector("#nav:not([hidden])")
    dashboard.open("functions/hello")
    page.click(".invoke-form button[type=submit]")
    error = page.locator(".invoke-output .error")
    error.wait_for()
    assert "invoke" in error.inner_text()


def test_the_static_files_need_no_key_and_the_data_does(server: Server) -> None:
    moved = httpx.get(f"{server.url}/ui")
    assert moved.status_code == 308 and moved.headers["location"] == "/ui/"
    index = httpx.get(f"{server.url}/ui/")
    assert index.status_code == 200 and 'src="js/app.js"' in index.text
    assert "script-src 'self'" in index.headers["content-security-policy"]
    script = httpx.get(f"{server.url}/ui/js/pages/overview.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert httpx.get(f"{server.url}/ui/js/nope.js").status_code == 404
    assert httpx.get(f"{server.url}/api/v1/metrics/series").status_code == 401


def test_the_series_endpoint_matches_the_summary(server: Server) -> None:
    assert server.http.post("/functions/flaky/invoke", json={"id": "s1"}).status_code == 502
    until = time.time() + 1
    since = until - 600
    window = {"since": since, "until": until}
    series = server.http.get("/metrics/series", params={**window, "step": 30}).json()
    summary = server.http.get("/metrics/summary", params=window).json()
    assert len(series["points"]) == 20 and series["step"] == 30
    assert [p["t"] for p in series["points"]][:2] == [since, since + 30]
    total = sum(p["invocations"] for p in series["points"])
    assert total == sum(row["invocations"] for row in summary["functions"]) > 0
    errors = sum(p["errors"] for p in series["points"])
    assert errors == sum(row["errors"] for row in summary["functions"]) > 0
    cost = server.http.get("/cost", params=window).json()["total"]["total_usd"]
    assert sum(p["cost_usd"] for p in series["points"]) == pytest.approx(cost)
    hello = server.http.get("/metrics/series", params={**window, "function": "hello"}).json()
    hello_row = next(r for r in summary["functions"] if r["function"] == "hello")
    assert sum(p["invocations"] for p in hello["points"]) == hello_row["invocations"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"step": "abc"}, "number of seconds"),
        ({"step": "0.5"}, "at least 1"),
        ({"step": "1", "since": "0"}, "at most 1440"),
        ({"since": "100", "until": "50"}, "after until"),
    ],
)
def test_the_series_endpoint_names_bad_input(
    server: Server, params: dict[str, str], words: str
) -> None:
    answer = server.http.get("/metrics/series", params=params)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert words in error["message"]
    assert error["field"] in ("step", "since")
