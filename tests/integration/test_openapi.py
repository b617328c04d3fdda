"""Schemathesis over the admin API's OpenAPI document, against a real `squall up`.

Every operation of ``/api/v1/openapi.json`` is fuzzed with positive data (valid per the document)
and negative data (invalid per the document), and every response is checked: no 5xx from the
gateway itself, status codes and bodies as documented, invalid data rejected with a 4xx, valid
data accepted. The server gets ``SQUALL_ADMIN_KEY`` and every request carries it, so this keeps
working once the admin API requires a key.

The keys and secrets operations run against seeded keys and secrets: ``DELETE /keys/{id}`` is
never sent for the key the run uses (the last active admin key at the end, which the platform
refuses to revoke with 409: checked on its own after the run), and deleted seeded secrets are
put back after every call.
"""

from __future__ import annotations

import itertools
import re
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance
from support import start_squall, wait_for

import squall.gateway.buses_api  # noqa: F401  (registers the bus stats fragment)
from squall.gateway import (  # noqa: F401  (register their fragments)
    archive_openapi,
    buckets_openapi,
    es_openapi,
    events_openapi,
    keys_openapi,
    metrics_openapi,
    queues_openapi,
    rules_openapi,
    schedules_openapi,
    schemas_openapi,
    streams_openapi,
    tables_openapi,
    workflows_openapi,
)
from squall.gateway.openapi import openapi_document
from squall.model.config import UPDATABLE

ADMIN_KEY = "sq_admin_openapi_test_0123456789abcdef"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
MAX_EXAMPLES = 25  # per operation and generation mode

APP = """\
import squall

app = squall.App("openapi")

@app.function()
def hello(event, ctx):
    print("hello")
    return {"hello": (event or {}).get("name", "world") if isinstance(event, dict) else event}

@app.function(retries=0)
def boom(event, ctx):
    raise ValueError("nope")

@app.function()
async def later(event, ctx):
    ctx.logger.info("later")
    return {"later": True}

@app.on("seed.happened", rule="app-rule")
def on_seed(event, ctx):
    return None

app.stream_resource("seeded-stream", shards=2)

@app.stream("seeded-stream", starting_position="trim_horizon")
def on_records(event, ctx):
    return None


@app.schedule("cron(0 9 ? * MON-FRI *)", tz="Europe/Paris", payload={"report": "daily"})
def report(event, ctx):
    return None


app.queue_resource("seeded-dlq")
app.queue_resource("seeded", visibility_timeout_s=0, max_receive=1000, dead_letter="seeded-dlq")
app.queue_resource("seeded.fifo", fifo=True)
app.bucket("seeded-bucket")
app.table("seeded-table", partition_key="id", sort_key="n", key_types={"n": "N"},
          indexes={"by_kind": {"partition_key": "kind"}}, stream="new_and_old")


def double(n):
    return n * 2


@app.workflow(step_retries=0)
def seeded_flow(wf, value):
    return wf.step(double, value if isinstance(value, int) else 1)


@app.projection("seeded-view", from_streams=["order-"], partition_key="stream")
def seeded_view(event, table, ctx):
    table.put({"stream": event["stream"], "version": event["version"]})
"""

# Every (path, method) of the document, for one test per operation.
OPERATIONS = sorted(
    (path, method, op["operationId"])
    for path, item in openapi_document()["paths"].items()
    for method, op in item.items()
)


FUNCTIONS = ("hello", "boom", "later")
SEED_STREAM = "seeded-stream"
SEED_MADE_STREAM = {"name": "seeded-made", "shards": 2, "retention_s": 3600}
SECRETS = {"SEED_TOKEN": "s3cret", "seed_other_2": "x"}
KEY_OPERATIONS = ("createKey", "listKeys", "revokeKey")
SEED_SCHEMA = ("order.placed", {"type": "object", "properties": {"qty": {"type": "number"}}})
SEED_ARCHIVE = {"name": "seeded", "bus": "default", "retention_s": 3600}
SECRET_OPERATIONS = ("listSecrets", "setSecret", "deleteSecret")
ES_STREAMS = ("order-seeded", "order-deleted")
ES_OPERATIONS = (
    "getEventStream", "deleteEventStream", "readEventStream", "appendEvents",
    "putEventStreamMetadata", "getProjection", "rebuildProjection",
)
RULE_OPERATIONS = ("getRule", "putRule", "updateRule", "deleteRule")
# Queues the fuzzer sends to and receives from; each holds a visible message after every call,
# so a long-polling receive answers at once.
SEED_QUEUES = ("seeded", "seeded.fifo")
# Rules the fuzzer may change and delete (put back after every call), and one of the app's.
RULES: dict[str, dict[str, Any]] = {
    "seed-rule": {
        "pattern": {"type": ["seed.happened"]},
        "targets": [
            {"kind": "function", "function": "hello", "input_path": "$.data"},
            {"kind": "http", "url": "http://127.0.0.1:9/never", "retry": {"max_attempts": 0}},
        ],
    },
    "seed-other": {"bus": "side", "pattern": {"source": ["x"]}, "enabled": False},
}
APP_RULE = "app-rule"
SCHEDULE_OPERATIONS = ("getSchedule", "putSchedule", "updateSchedule", "deleteSchedule")
SEED_TABLE = "seeded-table"
SEED_MADE_TABLE = {"name": "seeded-made-table", "partition_key": "id"}
SEED_SCHEDULE = {"function": "hello", "expression": "cron(0 3 * * ? *)", "tz": "Europe/Paris"}
# The app's bucket, holding SEED_OBJECT after every call, and an empty one made through the API.
SEED_BUCKETS = ("seeded-bucket", "made-bucket")
SEED_OBJECT = "seed.txt"


@dataclass(frozen=True)
class Seeded:
    invocations: list[str]
    keys: list[str]  # ids of keys the fuzzer may revoke (admin and not)
    admin_id: str  # id of ADMIN_KEY: never revoked
    replay: str  # a replay's id
    receipts: list[str]  # of messages received from the seeded queues
    runs: list[str]  # workflow runs
    traces: list[str]  # of the seeded invocations


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Seeded]]:
    """The server's URL and what was seeded into it."""
    workdir = tmp_path_factory.mktemp("openapi")
    (workdir / "app.py").write_text(APP)
    proc, url = start_squall(workdir, env={"SQUALL_ADMIN_KEY": ADMIN_KEY})
    try:
        yield url, _seed(url)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except Exception:
            proc.kill()
            proc.wait()
    err = (workdir / "up.err").read_text()
    assert "Traceback" not in err, err


@pytest.fixture(scope="module")
def server(started: tuple[str, Seeded]) -> str:
    return started[0]


def _seed(url: str) -> Seeded:
    """Records, logs and a dead letter, so list and get operations have something to serve;
    keys and secrets for their operations."""
    ids: list[str] = []
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
        for name in FUNCTIONS:
            response = http.post(f"/api/v1/functions/{name}/invoke", json={"name": "seed"})
            ids.append(response.headers["x-squall-invocation-id"])
        queued = http.post(
            "/api/v1/functions/boom/invoke", json={}, headers={"Prefer": "respond-async"}
        ).json()["invocation_id"]
        ids.append(queued)

        def dead() -> bool | None:
            status = http.get(f"/api/v1/invocations/{queued}").json()["status"]
            return True if status == "dead_lettered" else None

        wait_for(dead, timeout=30)

        keys = [
            http.post("/api/v1/keys", json={"name": name, "scopes": scopes}).json()["id"]
            for name, scopes in (
                ("seed-admin-1", ["admin"]),
                ("seed-admin-2", ["admin", "read"]),
                ("seed-reader", ["read"]),
            )
        ]
        (admin_id,) = [
            key["id"]
            for key in http.get("/api/v1/keys").json()["keys"]
            if ADMIN_KEY.startswith(key["prefix"])
        ]
        _put_secrets(http)
        _put_rules(http)
        _put_schema_and_archive(http)
        _put_schedule(http)
        replay = http.post("/api/v1/replays", json={"bus": "default", "from": 0}).json()["id"]
        _put_made_stream(http)
        _put_tables(http)
        for stream in ES_STREAMS:
            http.post(
                f"/api/v1/es/streams/{stream}/events",
                json={"events": [{"type": "OrderPlaced", "data": {"n": n}} for n in range(3)]},
            ).raise_for_status()
        http.delete(f"/api/v1/es/streams/{ES_STREAMS[1]}").raise_for_status()
        http.post(
            f"/api/v1/streams/{SEED_STREAM}/records",
            json={"records": [{"data": {"n": n}, "partition_key": f"k{n}"} for n in range(8)]},
        ).raise_for_status()
        receipts = []
        for queue in SEED_QUEUES:
            _put_messages(http)
            received = http.post(
                f"/api/v1/queues/{queue}/receive", json={"visibility_s": 3600}
            ).json()["messages"]
            receipts += [m["receipt"] for m in received]
        _put_messages(http)
        _put_bucket_seeds(http)
        runs = [
            http.post("/api/v1/workflows/seeded-flow/runs", json={"input": 2, "id": "seed-run"})
            .json()["id"]
        ]
        traces = [
            str(http.get(f"/api/v1/invocations/{invocation}").json()["trace_id"])
            for invocation in ids[:2]
        ]
    return Seeded(
        invocations=ids,
        keys=keys,
        admin_id=admin_id,
        replay=replay,
        receipts=receipts,
        runs=runs,
        traces=traces,
    )


def _put_messages(http: httpx.Client) -> None:
    """One more visible message on each seeded queue (a FIFO group of its own)."""
    for queue in SEED_QUEUES:
        body: dict[str, Any] = {"body": {"seed": True}}
        if queue.endswith(".fifo"):
            body["group_id"] = body["dedup_id"] = f"seed-{time.monotonic_ns()}"
        http.post(f"/api/v1/queues/{queue}/messages", json=body).raise_for_status()


def _put_schema_and_archive(http: httpx.Client) -> None:
    """The seeded schema as the only version of its type, and the seeded archive."""
    event_type, schema = SEED_SCHEMA
    http.delete(f"/api/v1/schemas/{event_type}")
    http.put(f"/api/v1/schemas/{event_type}/1", json=schema).raise_for_status()
    if http.get(f"/api/v1/archives/{SEED_ARCHIVE['name']}").status_code == 404:
        http.post("/api/v1/archives", json=SEED_ARCHIVE).raise_for_status()


def _put_made_stream(http: httpx.Client) -> None:
    """The seeded stream made through the API, for getStream and deleteStream."""
    if http.get(f"/api/v1/streams/{SEED_MADE_STREAM['name']}").status_code == 404:
        http.post("/api/v1/streams", json=SEED_MADE_STREAM).raise_for_status()


def _put_bucket_seeds(http: httpx.Client) -> None:
    if http.get(f"/api/v1/buckets/{SEED_BUCKETS[1]}").status_code == 404:
        http.post("/api/v1/buckets", json={"name": SEED_BUCKETS[1]}).raise_for_status()
    for bucket in SEED_BUCKETS:
        http.put(
            f"/api/v1/buckets/{bucket}/object", params={"key": SEED_OBJECT}, content=b"seed"
        ).raise_for_status()
def _put_tables(http: httpx.Client) -> None:
    """The seeded table made through the API, and items in both, for the item operations."""
    if http.get(f"/api/v1/tables/{SEED_MADE_TABLE['name']}").status_code == 404:
        http.post("/api/v1/tables", json=SEED_MADE_TABLE).raise_for_status()
    for n in range(3):
        item = {"id": "0", "n": n, "kind": "k"}
        http.put(f"/api/v1/tables/{SEED_TABLE}/items", json={"item": item}).raise_for_status()
    http.put(
        f"/api/v1/tables/{SEED_MADE_TABLE['name']}/items", json={"item": {"id": "0"}}
    ).raise_for_status()


def _put_schedule(http: httpx.Client) -> None:
    http.put("/api/v1/schedules/seed-schedule", json=SEED_SCHEDULE).raise_for_status()


def _put_secrets(http: httpx.Client) -> None:
    for name, value in SECRETS.items():
        http.put(f"/api/v1/secrets/{name}", json={"value": value}).raise_for_status()


def _put_rules(http: httpx.Client) -> None:
    for name, rule in RULES.items():
        http.put(f"/api/v1/rules/{name}", json=rule).raise_for_status()


@pytest.fixture(scope="module")
def schema(server: str) -> schemathesis.BaseSchema:
    # The document is served without a key; from_url also validates it as OpenAPI 3.1.
    loaded = schemathesis.openapi.from_url(f"{server}/api/v1/openapi.json")
    loaded.config.update(base_url=server)
    # Invalid data may be refused with 413 too: a body over the documented limit (a secret
    # value far past its maxLength, say) is refused before it is read.
    rejection = loaded.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    return loaded


@pytest.fixture(scope="module")
def admin(server: str) -> Iterator[httpx.Client]:
    """One admin client for the module's restorers (a client per call costs ~25 ms of TLS
    set-up even for plain HTTP, and restorers run after every fuzzed call)."""
    with httpx.Client(base_url=server, headers=AUTH, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
def auth_enforced(server: str) -> bool:
    return httpx.get(f"{server}/api/v1/functions").status_code == 401


def test_document_is_served_without_a_key(server: str) -> None:
    response = httpx.get(f"{server}/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        for method, op in item.items():
            secured = op["security"] != []
            assert secured == (path.startswith("/api/v1/") and op["operationId"] != "openapi")
            for status, response_spec in op["responses"].items():
                if status[0] in "45" and op["operationId"] != "readyz":
                    schema_ref = response_spec["content"]["application/json"]["schema"]
                    assert schema_ref == {"$ref": "#/components/schemas/Error"}, (method, path)


# --- checks the operations need beyond schemathesis' own ------------------------------


def no_gateway_error(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """For invoke: a 5xx is fine when the *function* failed (502/504 with
    X-Squall-Function-Error, as documented); the gateway itself must never answer 5xx."""
    if response.status_code >= 500:
        assert "x-squall-function-error" in {name.lower() for name in response.headers}, (
            f"gateway error {response.status_code}: {response.text[:500]}"
        )


def only_cross_field_rejections(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """For PATCH /functions/{name} with valid data: the document cannot say that
    min_instances may not exceed concurrency (a rule across two fields, one of them possibly
    unchanged) or that on_success/on_failure must name a function of the app, so a 400 naming
    one of those fields is the right answer; any other 400 is a real finding."""
    meta = case.meta
    if response.status_code == 400 and meta is not None and meta.generation.mode.is_positive:
        field = response.json()["error"].get("field")
        assert field in ("min_instances", "on_success", "on_failure"), response.text


def printable_key_names_only(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """For POST /keys with valid data: a name must be printable (str.isprintable), which no
    JSON Schema keyword says, so a 400 for a name that is not is right; any other is a
    real finding."""
    meta = case.meta
    if response.status_code == 400 and meta is not None and meta.generation.mode.is_positive:
        assert response.json()["error"].get("field") == "name", response.text
        assert isinstance(case.body, dict) and not str(case.body["name"]).isprintable()


# What a rule's schema cannot say, and the handler answers 400 for, naming the field: the
# pattern's validity, that targets name a function, bus or queue the platform has, unique target
# ids, one input transform per target, JSON-looking templates, reserved headers, URLs httpx
# cannot send to, a body name other than the path's, lone surrogates.
RULE_ONLY_IN_HANDLER = re.compile(
    r"pattern(\..*)?|name|body|targets\[\d+\]\.(function|bus|queue|id|url|input_path"
    r"|input_transformer(\..*)?|headers\..+)",
    re.DOTALL,  # a pattern's field names may hold any character, line breaks too
)


def only_rule_checks_beyond_the_schema(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """For creating, putting and updating rules with valid data: a 400 is right only for one
    of the checks the document cannot express (RULE_ONLY_IN_HANDLER)."""
    meta = case.meta
    if response.status_code == 400 and meta is not None and meta.generation.mode.is_positive:
        field = response.json()["error"].get("field")
        assert isinstance(field, str) and RULE_ONLY_IN_HANDLER.fullmatch(field), response.text


def only_unexpressed_rules(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """For PUT /schemas, POST /archives and POST /replays with valid data: the document cannot
    say that a body is a valid JSON Schema or a valid event pattern, nor that `from` comes
    before `to` or that an archive belongs to the bus named beside it; a 400 naming one of
    those is right, any other a real finding. POST /streams is here for its 409 on a taken
    name (valid data may draw one); any 400 for it is a finding."""
    meta = case.meta
    if response.status_code == 400 and meta is not None and meta.generation.mode.is_positive:
        field = str(response.json()["error"].get("field"))
        allowed = ("schema", "pattern", "to", "archive")
        assert field.split(".")[0].split("[")[0] in allowed, response.text


# What the CloudEvents spec and the platform check beyond the document, naming the attribute
# (of the batch's n-th event): characters a String may not hold (controls, surrogates,
# noncharacters), URI references, RFC 3339 times, the extensions the platform owns, and data
# against the registered schema of its type.
EVENT_ONLY_IN_HANDLER = re.compile(
    r"(\[\d+\]\.)?([a-z0-9]{1,20}|data_base64|data[.\[].*)", re.DOTALL
)


def only_event_checks_beyond_the_schema(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """For POST /events with valid data: a 400 is right only when it names an attribute."""
    meta = case.meta
    if response.status_code == 400 and meta is not None and meta.generation.mode.is_positive:
        field = response.json()["error"].get("field")
        assert isinstance(field, str) and EVENT_ONLY_IN_HANDLER.fullmatch(field), response.text


def only_pattern_rejections(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """For POST /events/test-pattern with valid data: the document cannot say which objects
    are valid patterns; a 400 naming the pattern is right, any other a real finding."""
    meta = case.meta
    if response.status_code == 400 and meta is not None and meta.generation.mode.is_positive:
        field = str(response.json()["error"].get("field"))
        assert field == "pattern" or field.startswith("pattern."), response.text


def only_bad_expressions(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """For the schedules operations with valid data: the document cannot say which strings
    are schedule expressions, time zones, times or functions of the app, that a body's name
    must be the path's, or how large a payload may be; a 400 naming one of those is right."""
    meta = case.meta
    if response.status_code == 400 and meta is not None and meta.generation.mode.is_positive:
        field = response.json()["error"].get("field")
        allowed = ("expression", "tz", "from", "function", "name", "payload", "body")
        assert field in allowed, response.text


# What the queue schemas cannot say: a dead-letter queue must exist, be of the same kind and
# come with max_receive; content-based dedup is for FIFO queues; group and dedup ids are for
# FIFO queues only, where a group id is required.
QUEUE_ONLY_IN_HANDLER = (
    "dead_letter",
    "max_receive",
    "content_based_dedup",
    "group_id",
    "dedup_id",
)


def only_queue_rules_beyond_the_schema(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """For creating queues and sending messages with valid data: a 400 is right only for
    one of QUEUE_ONLY_IN_HANDLER, a 409 only for a queue name that is taken."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    if response.status_code == 400:
        field = str(response.json()["error"].get("field")).split(".")[-1]
        assert field in QUEUE_ONLY_IN_HANDLER, response.text
    if response.status_code == 409:
        assert response.json()["error"].get("field") == "name", response.text


# What the object operations check beyond the document: a key's UTF-8 length (the document
# counts characters), NUL and '.'/'..' segments; a bucket name's '..'.
BUCKET_OPERATIONS = (
    "createBucket",
    "putObject",
    "getObject",
    "headObject",
    "deleteObject",
    "copyObject",
    "presignObject",
)


def only_key_rules_beyond_the_schema(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """For the object operations with valid data: a 400 is right only when it names a key
    (or a made bucket's name), a 409 only for a bucket name that is taken. (A HEAD has no
    body to name anything.)"""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or case.method.upper() == "HEAD":
        return
    if response.status_code == 400:
        field = response.json()["error"].get("field")
        assert field in ("key", "to_key", "name"), response.text
    if response.status_code == 409:
        assert response.json()["error"].get("field") == "name", response.text


# What the tables schemas cannot say: an item's key attributes and their types (per table),
# index key types, the condition language's operands, sort conditions of the key's type,
# cursors this API made, attribute names of a new table and how its keys fit together.
TABLE_ONLY_IN_HANDLER = re.compile(
    r"(ops\[\d+\]\.)?(item|key|set|remove|add|condition|if_version|sort|partition|index"
    r"|cursor|table|op|ops|name|partition_key|sort_key|key_types|indexes|ttl_attribute"
    r"|stream)([.\[].*)?",
    re.DOTALL,
)


def only_table_rules_beyond_the_schema(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """For the tables operations with valid data: a 400 is right only when it names one of
    the fields of TABLE_ONLY_IN_HANDLER; a 409 only for a failed condition or a taken name."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    if response.status_code == 400:
        field = response.json()["error"].get("field")
        assert isinstance(field, str) and TABLE_ONLY_IN_HANDLER.fullmatch(field), response.text
    if response.status_code == 409:
        error = response.json()["error"]
        assert error["type"] == "ConditionFailed" or error.get("field") == "name", response.text


def only_event_data_beyond_the_schema(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """For appends with valid data: a 400 is right only for what the document cannot say of
    an event's data or metadata (a lone surrogate, more than 256 KiB of JSON), or of ids that
    must differ within one append."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return
    error = response.json()["error"]
    field = error.get("field")
    duplicate = re.fullmatch(r"events\[\d+\]\.id", str(field)) and "given twice" in error["message"]
    assert duplicate or (
        isinstance(field, str) and re.fullmatch(r"events\[\d+\]\.(data|metadata)", field)
    ), response.text


TABLE_ITEM_OPERATIONS = (
    "createTable", "putItem", "getItem", "updateItem", "deleteItem", "queryTable", "scanTable",
    "transactItems",
)


def only_inverted_windows(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """For the usage summary and cost: the document cannot say that ``since`` must not be
    after ``until``, so that 400 (naming ``since``) is right; any other 400 is a finding."""
    meta = case.meta
    if response.status_code == 400 and meta is not None and meta.generation.mode.is_positive:
        error = response.json()["error"]
        assert error.get("field") == "since" and "is after" in error["message"], response.text


def only_unchartable_windows(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """For the metrics series: besides an inverted window, the document cannot say that the
    window over ``step`` must come to at most MAX_POINTS points, nor that the window must be
    finite; those 400s (naming the field) are right, any other 400 is a finding."""
    meta = case.meta
    if response.status_code == 400 and meta is not None and meta.generation.mode.is_positive:
        error = response.json()["error"]
        allowed = (("since", "is after"), ("step", "points (at most"), ("since", "too long"))
        assert any(
            error.get("field") == field and words in error["message"] for field, words in allowed
        ), response.text


# A deploy's body is a gzipped tar of an app's directory. What the fuzzer can make of that is
# bytes that are not one (real deploys are tested in test_deploys.py); the platform must refuse
# them with a 400 naming the bundle or the app, and change nothing.
schemathesis.openapi.media_type("application/gzip", st.binary(max_size=512))


def only_bundle_rejections(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """For deploys with valid data: the document cannot say what a bundle holds, so a 400
    naming the bundle or the app inside it is right, as is one naming an option whose
    format it cannot express (a duration, a rollback condition); any other 400 is a finding."""
    meta = case.meta
    if response.status_code == 400 and meta is not None and meta.generation.mode.is_positive:
        field = response.json()["error"].get("field")
        assert field in ("bundle", "app", "for", "rollback_on", "canary", "steps"), response.text


ALIAS_OPERATIONS = ("setAlias", "deleteAlias", "rollbackAlias")


def only_alias_rules_beyond_the_schema(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """For aliases with valid data: the document cannot say which versions a function has, so
    a 400 for a canary equal to the primary, a weight without a canary, or a rollback with
    nothing to go back to is right; any other 400 is a finding."""
    meta = case.meta
    if response.status_code == 400 and meta is not None and meta.generation.mode.is_positive:
        message = response.json()["error"]["message"]
        allowed = ("the same as the primary", "needs a canary", "nothing to roll back to",
                   "nothing older to roll back to")
        assert any(words in message for words in allowed), response.text


def _checks_for(operation_id: str) -> tuple[list[CheckFunction], list[CheckFunction]]:
    """(additional checks, excluded built-in checks) for one operation."""
    if operation_id == "invokeFunction":
        # Replaced, not dropped: see no_gateway_error.
        return [no_gateway_error], [not_a_server_error]
    if operation_id == "updateFunction":
        # Replaced by a narrower version of itself: see only_cross_field_rejections.
        return [only_cross_field_rejections], [positive_data_acceptance]
    if operation_id == "createKey":
        return [printable_key_names_only], [positive_data_acceptance]
    if operation_id in ("createRule", "putRule", "updateRule"):
        return [only_rule_checks_beyond_the_schema], [positive_data_acceptance]
    if operation_id in ("putSchema", "createArchive", "startReplay", "createStream"):
        return [only_unexpressed_rules], [positive_data_acceptance]
    if operation_id == "publishEvents":
        return [only_event_checks_beyond_the_schema], [positive_data_acceptance]
    if operation_id == "testEventPattern":
        return [only_pattern_rejections], [positive_data_acceptance]
    if operation_id in ("nextScheduleTimes", "createSchedule", *SCHEDULE_OPERATIONS):
        return [only_bad_expressions], [positive_data_acceptance]
    if operation_id in ("createQueue", "sendMessage", "sendMessageBatch"):
        return [only_queue_rules_beyond_the_schema], [positive_data_acceptance]
    if operation_id in BUCKET_OPERATIONS:
        return [only_key_rules_beyond_the_schema], [positive_data_acceptance]
    if operation_id in TABLE_ITEM_OPERATIONS:
        return [only_table_rules_beyond_the_schema], [positive_data_acceptance]
    if operation_id in ("metricsSummary", "cost"):
        return [only_inverted_windows], [positive_data_acceptance]
    if operation_id == "appendEvents":
        return [only_event_data_beyond_the_schema], [positive_data_acceptance]
    if operation_id == "metricsSeries":
        return [only_unchartable_windows], [positive_data_acceptance]
    if operation_id == "deploy":
        return [only_bundle_rejections], [positive_data_acceptance]
    if operation_id in ALIAS_OPERATIONS:
        return [only_alias_rules_beyond_the_schema], [positive_data_acceptance]
    return [], []


# --- the run ----------------------------------------------------------------------------------


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("path", "method", "operation_id"), OPERATIONS, ids=lambda v: str(v))
def test_schemathesis(
    schema: schemathesis.BaseSchema,
    started: tuple[str, Seeded],
    admin: httpx.Client,
    auth_enforced: bool,
    path: str,
    method: str,
    operation_id: str,
) -> None:
    operation = schema[path][method.upper()]
    additional, excluded = _checks_for(operation_id)
    if not auth_enforced:
        # Until the admin API requires a key, a request without one is (correctly, for now)
        # served, which the ignored_auth check would report for every secured operation.
        # It switches itself back on as soon as the server answers 401 without a key.
        from schemathesis.specs.openapi.checks import ignored_auth

        excluded = [*excluded, ignored_auth]
    restore = _restorer(admin, path, method, operation_id)
    session = requests.Session()

    # Drawn path parameters almost never name a function or an invocation that exists, which
    # would leave everything behind the 404 untested: half the cases use the app's functions
    # and the seeded invocations instead.
    seeded = started[1]
    if operation_id in KEY_OPERATIONS:
        known = {"id": seeded.keys}
    elif operation_id in SECRET_OPERATIONS:
        known = {"name": list(SECRETS)}
    elif operation_id in RULE_OPERATIONS:
        known = {"name": [*RULES, APP_RULE]}
    elif operation_id in SCHEDULE_OPERATIONS:
        known = {"name": ["seed-schedule", "report"]}
    elif operation_id in ES_OPERATIONS:
        known = {"stream": list(ES_STREAMS), "name": ["seeded-view"]}
    elif "Schema" in operation_id:
        known = {"type": [SEED_SCHEMA[0]], "version": ["1"]}
    elif "Table" in operation_id or "Item" in operation_id:
        known = {
            "name": [SEED_TABLE, str(SEED_MADE_TABLE["name"])],
            "partition": ["0"],
        }
    elif "Stream" in operation_id:
        known = {"name": [SEED_STREAM, str(SEED_MADE_STREAM["name"])], "shard": ["0", "1"]}
    elif "Workflow" in operation_id:
        known = {"name": ["seeded-flow"], "id": seeded.runs}
    elif operation_id == "getTrace":
        known = {"trace_id": seeded.traces}
    elif "Queue" in operation_id or "Message" in operation_id or operation_id == "changeVisibility":
        known = {"name": list(SEED_QUEUES), "receipt": seeded.receipts}
    elif "Bucket" in operation_id or "Object" in operation_id:
        known = {"bucket": list(SEED_BUCKETS)}
    elif "Archive" in operation_id or "Replay" in operation_id:
        known = {"name": [str(SEED_ARCHIVE["name"])], "id": [seeded.replay]}
    elif operation_id in ALIAS_OPERATIONS:
        known = {"name": list(FUNCTIONS), "alias": ["live", "beta"]}
    else:
        known = {"name": list(FUNCTIONS), "id": seeded.invocations}
    params = [p.name for p in operation.path_parameters]
    strategies = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        strategies.append(operation.as_strategy(generation_mode=mode))
        if params:
            strategies.append(
                st.sampled_from(
                    [
                        dict(zip(params, values, strict=True))
                        for values in _product([known[p] for p in params])
                    ]
                ).flatmap(
                    lambda fixed, mode=mode: operation.as_strategy(
                        generation_mode=mode, path_parameters=fixed
                    )
                )
            )
    strategy = st.one_of(strategies)
    if operation_id == "revokeKey":
        # Revoking the run's own key would turn every later call into a 401.
        strategy = strategy.filter(
            lambda case: (case.path_parameters or {}).get("id") != seeded.admin_id
        )

    @given(case=strategy)
    @settings(
        max_examples=2 * MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        # A negative case may be one whose credentials were made invalid or left out; it
        # must go out as generated, and (until keys are required) would rightly be served.
        negated = case.meta is not None and (
            case.meta.generation.mode.is_negative and schema.is_security_param_negated(case)
        )
        assume(auth_enforced or not negated)
        # Framing headers drawn at random (``transfer-encoding: U``) make the request invalid
        # HTTP, refused by the server before any route with a plain-text 400: not the API's.
        drawn = {name.lower() for name in case.headers or {}}
        assume(not {"transfer-encoding", "content-length"} & drawn)
        try:
            case.call_and_validate(
                session=session,
                headers=None if negated else AUTH,
                additional_checks=additional,
                excluded_checks=excluded,
                timeout=30,
            )
        finally:
            restore()

    run()


def _product(choices: list[list[str]]) -> list[tuple[str, ...]]:
    return list(itertools.product(*choices))


def _restorer(http: httpx.Client, path: str, method: str, operation_id: str) -> Callable[[], None]:
    """Undo what a fuzzed call changed that would spoil the rest of the run.

    PATCH /functions/{name}: fuzzed configs (min_instances up to 1000, memory 128 MB, a
    1 s timeout, …) stay in force for the other operations; the original is put back after
    every call. Nothing else needs undoing: purge and redrive (which run after the dead-letter
    list, in path order) may empty the seeded dead letters, and the lists are still checked
    against the document when they are empty.

    DELETE /secrets/{name}: the seeded secrets are put back, so the next call finds them.
    DELETE /streams/{name}: the seeded stream made through the API is made again.
    PUT, PATCH and DELETE /rules/{name}: the seeded rules are put back as they were.
    DELETE /keys/{id} needs nothing: revoking a seeded key again is still a 200.
    """
    if operation_id in ("deleteSchema", "deleteSchemas", "deleteArchive"):

        def put_back_seeds() -> None:
            _put_schema_and_archive(http)

        return put_back_seeds
    if operation_id in ("deleteTable", "deleteItem"):

        def put_tables_back() -> None:
            _put_tables(http)

        return put_tables_back
    if operation_id == "deleteStream":

        def put_stream_back() -> None:
            _put_made_stream(http)

        return put_stream_back
    if operation_id in SCHEDULE_OPERATIONS:

        def put_schedule_back() -> None:
            _put_schedule(http)

        return put_schedule_back
    if "Queue" in operation_id or "Message" in operation_id:

        def put_messages_back() -> None:
            _put_messages(http)

        return put_messages_back
    if "Bucket" in operation_id or "Object" in operation_id:

        def put_bucket_seeds_back() -> None:
            _put_bucket_seeds(http)

        return put_bucket_seeds_back
    if operation_id == "deleteSecret":

        def put_secrets_back() -> None:
            _put_secrets(http)

        return put_secrets_back
    if operation_id in RULE_OPERATIONS:

        def put_rules_back() -> None:
            _put_rules(http)

        return put_rules_back
    if operation_id == "updateFunction":
        originals = {
            fn["name"]: {k: fn[k] for k in UPDATABLE}
            for fn in http.get("/api/v1/functions").json()["functions"]
        }

        def put_back() -> None:
            for name, config in originals.items():
                http.patch(f"/api/v1/functions/{name}", json=config).raise_for_status()

        return put_back
    return lambda: None


def test_last_admin_key_is_not_revoked(
    schema: schemathesis.BaseSchema, started: tuple[str, Seeded], server: str
) -> None:
    """After the run: revoke every other admin key, then the run's own is refused with 409,
    as documented, and still works."""
    admin_id = started[1].admin_id
    with httpx.Client(base_url=server, headers=AUTH) as http:
        for key in http.get("/api/v1/keys").json()["keys"]:
            if key["id"] != admin_id and "admin" in key["scopes"] and key["revoked_at"] is None:
                http.delete(f"/api/v1/keys/{key['id']}").raise_for_status()
    case = schema["/api/v1/keys/{id}"]["DELETE"].Case(path_parameters={"id": admin_id})
    response = case.call_and_validate(headers=AUTH)
    assert response.status_code == 409
    assert response.json()["error"]["field"] == "id"
    assert httpx.get(f"{server}/api/v1/keys", headers=AUTH).status_code == 200
