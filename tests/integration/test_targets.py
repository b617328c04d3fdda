"""Rule targets on a real platform: bus forwarding and loops, HTTP retries and dead letters
against a real local HTTP server, input transforms end to end."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
import pytest

from squall.engine.platform import Platform
from squall.errors import InvalidInput
from squall.model.cloudevent import CloudEvent
from squall.model.rule_input import parse_rule

APP = """
import squall

app = squall.App("targets")


@app.on("order.placed", bus="audit")
def audited(event, ctx):
    return {k: event.get(k) for k in ("id", "type", "source", "squallhops", "data")}


@app.function()
def record(event, ctx):
    return event


@app.function(retries=0)
def fails(event, ctx):
    raise ValueError(event["n"])
"""


class Endpoint:
    """A real HTTP server on 127.0.0.1: each path answers its scripted statuses in turn
    (the last one repeats) and records what it was sent."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[int]] = {}
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                endpoint.received.append((self.path, dict(self.headers.items()), body))
                script = endpoint.scripts.get(self.path, [404])
                status = script.pop(0) if len(script) > 1 else script[0]
                self.send_response(status)
                self.send_header("Content-Length", "7")
                self.end_headers()
                self.wfile.write(b"said no" if status >= 300 else b"thanks!")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def requests_to(self, path: str) -> list[tuple[str, dict[str, str], bytes]]:
        return [request for request in self.received if request[0] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint()
    yield server
    server.close()


async def put_rule(p: Platform, **body: Any) -> None:
    await p.rule_book.put(parse_rule(body))


def order(total: int = 250, **fields: Any) -> CloudEvent:
    return CloudEvent.create(
        "order.placed", {"total": total, "id": "o-1"}, source="shop", subject="o-1", **fields
    )


async def results(p: Platform, function: str) -> list[Any]:
    runs = await p.list_invocations(function=function)
    return [msgspec.json.decode(r.result or b"null") for r in runs if r.status == "succeeded"]


async def test_a_bus_target_forwards_the_event_one_hop_further(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    await put_rule(
        p,
        name="to-audit",
        pattern={"type": ["order.placed"]},
        targets=[{"kind": "bus", "bus": "audit"}],
    )
    event = order()
    [outcome] = await p.publish([event])
    assert outcome.matched == ["to-audit"]
    await p.wait_idle(timeout=20)
    [forwarded] = await results(p, "audited")
    assert forwarded["id"] != event.id
    assert {k: forwarded[k] for k in ("type", "source", "squallhops", "data")} == {
        "type": "order.placed",
        "source": "shop",
        "squallhops": 1,
        "data": {"total": 250, "id": "o-1"},
    }
    [again] = await p.publish([event])  # the same event again is a duplicate: nothing moves
    assert again.duplicate
    await p.wait_idle(timeout=20)
    assert len(await results(p, "audited")) == 1


async def test_a_bus_cycle_ends_in_recursive_loop(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    await put_rule(
        p,
        name="loop",
        bus="loop",
        pattern={"type": ["ping"]},
        targets=[{"kind": "bus", "bus": "loop"}],
    )
    [outcome] = await p.publish([CloudEvent.create("ping", {}, source="t")], bus="loop")
    assert outcome.matched == ["loop"]
    await p.wait_idle(timeout=30)
    [letter] = await p.list_dead_letters(function="rule:loop")
    assert letter.error["type"] == "RecursiveLoop"
    assert letter.error["rule"] == "loop"
    assert msgspec.json.decode(letter.payload)["squallhops"] == 17
    assert await p.queue_depth() == 0


async def test_an_http_target_is_retried_through_503s_and_delivered_once(  # type: ignore[no-untyped-def]
    platform, endpoint: Endpoint
) -> None:
    endpoint.scripts["/flaky"] = [503, 503, 200]
    p = await platform(APP)
    target = {"kind": "http", "url": f"{endpoint.url}/flaky", "retry": {"max_attempts": 5}}
    await put_rule(p, name="hook", pattern={"type": ["order.placed"]}, targets=[target])
    event = order()
    await p.publish([event])
    await p.wait_idle(timeout=20)
    sent = endpoint.requests_to("/flaky")
    assert len(sent) == 3  # two 503s, then the 200: delivered once
    assert len({headers["Idempotency-Key"] for _, headers, _ in sent}) == 1
    assert all(headers["Content-Type"] == "application/json" for _, headers, _ in sent)
    assert msgspec.json.decode(sent[-1][2]) == event.to_json_dict()
    assert sent[-1][1]["X-Squall-Rule"] == "hook"
    assert await p.list_dead_letters() == []


async def test_an_http_400_is_dead_lettered_at_once_and_can_be_redriven(  # type: ignore[no-untyped-def]
    platform, endpoint: Endpoint
) -> None:
    endpoint.scripts["/strict"] = [400]
    p = await platform(APP)
    target = {"kind": "http", "url": f"{endpoint.url}/strict", "id": "strict"}
    await put_rule(p, name="hook", pattern={"type": ["order.placed"]}, targets=[target])
    await p.publish([order()])
    await p.wait_idle(timeout=20)
    assert len(endpoint.requests_to("/strict")) == 1  # a 4xx is not retried
    [letter] = await p.list_dead_letters(function="rule:hook")
    assert letter.attempts == 1
    error = letter.error
    assert (error["type"], error["condition"], error["status"]) == (
        "HttpError",
        "NotRetryable",
        400,
    )
    assert error["body"] == "said no"
    assert error["rule"] == "hook"
    assert isinstance(error["target"], dict) and error["target"]["id"] == "strict"
    endpoint.scripts["/strict"] = [200]
    assert await p.redrive(function="rule:hook") == [letter.invocation_id]
    await p.wait_idle(timeout=20)
    assert len(endpoint.requests_to("/strict")) == 2
    assert await p.list_dead_letters() == []


async def test_retries_run_out_on_errors_that_may_pass(platform, endpoint: Endpoint) -> None:  # type: ignore[no-untyped-def]
    endpoint.scripts["/down"] = [503]
    closed = Endpoint()
    closed_url = closed.url
    closed.close()  # nothing listens there any more
    p = await platform(APP)
    targets = [
        {"kind": "http", "url": f"{endpoint.url}/down", "retry": {"max_attempts": 1}},
        {"kind": "http", "url": f"{closed_url}/x", "retry": {"max_attempts": 0}},
        {
            "kind": "http",
            "url": f"{endpoint.url}/down",
            "retry": {"max_attempts": 0},
            "dead_letter": False,
        },
    ]
    await put_rule(p, name="hook", pattern={"type": ["order.placed"]}, targets=targets)
    await p.publish([order()])
    await p.wait_idle(timeout=20)
    assert len(endpoint.requests_to("/down")) == 3  # 2 for the first target, 1 for the third
    letters = {str(x.error["target"]["id"]): x for x in await p.list_dead_letters()}  # type: ignore[index]
    assert set(letters) == {"0", "1"}
    assert (letters["0"].attempts, letters["0"].error["condition"]) == (2, "RetriesExhausted")
    assert letters["0"].error["status"] == 503
    assert letters["1"].error["type"] == "ConnectionError"


async def test_input_transforms_end_to_end(platform, endpoint: Endpoint) -> None:  # type: ignore[no-untyped-def]
    endpoint.scripts["/text"] = [204]
    p = await platform(APP)
    paths = {"total": "$.data.total", "order": "$.data.id", "missing": "$.data.nothing"}
    targets = [
        {
            "kind": "function",
            "function": "record",
            "input_transformer": {
                "input_paths_map": paths,
                "input_template": '{"sum": <total>, "order": <order>, "note": "order <order>",'
                ' "missing": <missing>}',
            },
        },
        {
            "kind": "http",
            "url": f"{endpoint.url}/text",
            "headers": {"X-Token": "t0k"},
            "input_transformer": {
                "input_paths_map": paths,
                "input_template": "Order <order> totals <total>",
            },
        },
        {"kind": "function", "function": "record", "input_path": "$.data", "id": "by-path"},
        {"kind": "function", "function": "record", "input": {"constant": True}, "id": "fixed"},
    ]
    await put_rule(p, name="shaped", pattern={"type": ["order.placed"]}, targets=targets)
    await p.publish([order(total=99)])
    await p.wait_idle(timeout=20)
    received = await results(p, "record")
    assert sorted(received, key=repr) == sorted(
        [
            {"sum": 99, "order": "o-1", "note": "order o-1", "missing": None},
            {"total": 99, "id": "o-1"},
            {"constant": True},
        ],
        key=repr,
    )
    [(_, headers, body)] = endpoint.requests_to("/text")
    assert body == b"Order o-1 totals 99"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["X-Token"] == "t0k"


async def test_a_function_target_keeps_its_functions_retry_policy(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    target = {"kind": "function", "function": "fails", "input": {"n": 7}, "id": "boom"}
    await put_rule(p, name="failing", pattern={"type": ["order.placed"]}, targets=[target])
    await p.publish([order()])
    await p.wait_idle(timeout=20)
    [letter] = await p.list_dead_letters(function="fails")
    assert letter.attempts == 1  # retries=0 on the function: no retry
    assert (letter.error["rule"], letter.error["target"]) == ("failing", "boom")
    assert letter.error["condition"] == "RetriesExhausted"
    assert msgspec.json.decode(letter.payload) == {"n": 7}


QUEUE_APP = """
import squall

app = squall.App("queue-targets")
app.queue_resource("emails")
app.queue_resource("ledger.fifo", fifo=True)

app.rule(
    "orders-to-queues",
    event_type="order.placed",
    targets=[
        squall.targets.Queue("emails", input_path="$.data"),
        squall.targets.Queue("ledger.fifo", group_id="ledger"),
    ],
)


@app.function()
def noop(event, ctx):
    return None
"""


async def test_queue_targets_send_the_shaped_event_as_a_message(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(QUEUE_APP)
    events = [
        CloudEvent.create("order.placed", {"n": n}, source="shop", id=f"o-{n}") for n in range(3)
    ]
    for event in events:
        await p.publish([event])
    await p.wait_idle(timeout=20)
    emails = await p.queues.receive("emails", max_messages=10, wait_s=5)
    assert sorted(msgspec.json.decode(m.body)["n"] for m in emails) == [0, 1, 2]
    ledger = await p.queues.receive("ledger.fifo", max_messages=10, wait_s=5)
    # The whole event, in publish order, in the target's message group.
    assert [msgspec.json.decode(m.body)["id"] for m in ledger] == ["o-0", "o-1", "o-2"]
    assert {m.group_id for m in ledger} == {"ledger"}
    assert not await p.list_dead_letters()


async def test_a_rule_naming_no_queue_is_refused(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(QUEUE_APP)
    rule = {
        "name": "nowhere",
        "pattern": {"type": ["x"]},
        "targets": [{"kind": "queue", "queue": "missing"}],
    }
    with pytest.raises(InvalidInput) as info:
        await p.rule_book.put(parse_rule(rule))
    assert info.value.field == "targets[0].queue"
