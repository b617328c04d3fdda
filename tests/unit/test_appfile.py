"""squall.yaml manifests: every section declares what its decorator does, unknown keys and
wrong types are named by their path, and a manifest app equals its decorator twin."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest

import squall
from squall.appfile import load_app_file
from squall.appfile.keys import Place, places
from squall.errors import ConfigError
from squall.runtime.loader import load_app

HANDLERS = '''
"""Handlers for the manifest tests."""


def place_order(request, ctx):
    """Take an order."""
    return {"ok": True}


async def fraud_check(event, ctx):
    return None


def send_emails(messages, ctx):
    return None


def sweep(event, ctx):
    return None


def thumbnail(event, ctx):
    return None


def index_order(change, ctx):
    return None


def read_clicks(batch, ctx):
    return None


def project_totals(event, table, ctx):
    """Keep the totals."""


def charge(event, ctx):
    return event


def fulfil(wf, order):
    return order


def load_greetings(ctx):
    return {"hi": "hello"}


NOT_CALLABLE = 3
'''

FULL = """
app: shop
settings:
  debug: true
  cors: {allow_origins: ["https://shop.example.com"], max_age_s: 60}
  jwt: {secret_env: JWT_SECRET, issuer: shop}
  key_rate_limit: {rate: 5, burst: 10}
tables:
  orders: {partition_key: id, stream: new_and_old}
  stock: {partition_key: sku, key_types: {sku: S}, indexes: {by_shelf: {partition_key: shelf}}}
buckets:
  uploads: {max_object_bytes: 1048576}
  archive:
queues:
  emails-dlq:
  emails: {visibility_timeout_s: 10, max_receive: 3, dead_letter: emails-dlq}
streams:
  clicks: {shards: 2}
functions:
  place-order:
    handler: shop_handlers:place_order
    memory_mb: 256
    timeout_s: 10
    permissions: ["table:orders"]
    env: {MODE: live}
    init: shop_handlers:load_greetings
    http:
      - POST /orders
      - {route: "GET /orders/{id}", auth: api_key, scopes: [orders.read],
         rate_limit: {rate: 2, burst: 4}}
  fraud-check:
    handler: shop_handlers:fraud_check
    retries: 1
    on:
      - order.placed
      - {event_type: order.updated, pattern: {data: {total: [{numeric: [">", 100]}]}},
         rule: big-updates}
  send-emails:
    handler: shop_handlers:send_emails
    queue: {queue: emails, batch_size: 5, batch_window_s: 0.5}
  sweeper:
    handler: shop_handlers:sweep
    schedule:
      - rate(5 minutes)
      - {expression: "cron(0 9 ? * MON-FRI *)", name: morning, payload: {kind: daily}}
  thumbnail:
    handler: shop_handlers:thumbnail
    on_object: {bucket: uploads, events: [created], prefix: photos/}
  index-order:
    handler: shop_handlers:index_order
    on_change: {table: orders, images: new, batch_size: 10}
  read-clicks:
    handler: shop_handlers:read_clicks
    stream: {stream: clicks, batch_size: 50, starting_position: trim_horizon}
  totals:
    handler: shop_handlers:project_totals
    memory_mb: 192
    projection: {name: order_totals, from_streams: [order-], partition_key: customer}
  charge:
    handler: shop_handlers:charge
workflows:
  fulfil:
    handler: shop_handlers:fulfil
    step_retries: 2
    timeout_s: 600
    memory_mb: 512
    on: order.paid
state_machines:
  checkout:
    definition: {StartAt: Charge, States: {Charge: {Type: Task, Resource: charge, End: true}}}
    run_retries: 2
rules:
  audit:
    event_type: order.placed
    targets:
      - {kind: http, url: "https://hooks.example.com/orders", retry: {max_attempts: 3}}
      - {kind: queue, queue: emails, input_path: $.data}
budgets:
  - {usd: 50}
  - {usd: 2, period: day, function: fraud-check, stop: true}
alerts:
  errors: {metric: error_rate, threshold: 0.1, window: 5m, function: place-order}
"""


def twin(h: ModuleType) -> squall.App:
    """FULL written with decorators, in the manifest's order."""
    from squall.model.http import CorsConfig, JwtConfig, RateLimit

    app = squall.App(
        "shop",
        debug=True,
        cors=CorsConfig(allow_origins=("https://shop.example.com",), max_age_s=60),
        jwt=JwtConfig(secret_env="JWT_SECRET", issuer="shop"),
        key_rate_limit=RateLimit(rate=5, burst=10),
    )
    app.table("orders", partition_key="id", stream="new_and_old")
    app.table("stock", partition_key="sku", key_types={"sku": "S"},
              indexes={"by_shelf": {"partition_key": "shelf"}})
    app.bucket("uploads", max_object_bytes=1048576)
    app.bucket("archive")
    app.queue_resource("emails-dlq")
    app.queue_resource("emails", visibility_timeout_s=10, max_receive=3, dead_letter="emails-dlq")
    app.stream_resource("clicks", shards=2)
    app.function("place-order", memory_mb=256, timeout_s=10, permissions=["table:orders"],
                 env={"MODE": "live"}, init=h.load_greetings)(h.place_order)
    app.http("POST /orders", name="place-order")(h.place_order)
    app.http("GET /orders/{id}", name="place-order", auth="api_key", scopes=["orders.read"],
             rate_limit=RateLimit(rate=2, burst=4))(h.place_order)
    app.function("fraud-check", retries=1)(h.fraud_check)
    app.on("order.placed", name="fraud-check")(h.fraud_check)
    app.on("order.updated", pattern={"data": {"total": [{"numeric": [">", 100]}]}},
           rule="big-updates", name="fraud-check")(h.fraud_check)
    app.queue("emails", batch_size=5, batch_window_s=0.5, name="send-emails")(h.send_emails)
    app.schedule("rate(5 minutes)", function="sweeper")(h.sweep)
    app.schedule("cron(0 9 ? * MON-FRI *)", name="morning", payload={"kind": "daily"},
                 function="sweeper")(h.sweep)
    app.on_object("uploads", events=["created"], prefix="photos/", name="thumbnail")(h.thumbnail)
    app.on_change("orders", images="new", batch_size=10, name="index-order")(h.index_order)
    app.stream("clicks", batch_size=50, starting_position="trim_horizon",
               name="read-clicks")(h.read_clicks)
    app.projection("order_totals", from_streams=["order-"], partition_key="customer",
                   function="totals", memory_mb=192)(h.project_totals)
    app.function("charge")(h.charge)
    app.workflow("fulfil", step_retries=2, timeout_s=600, memory_mb=512)(h.fulfil)
    app.on("order.paid", name="fulfil")(h.fulfil)
    app.state_machine(
        "checkout",
        definition={"StartAt": "Charge",
                    "States": {"Charge": {"Type": "Task", "Resource": "charge", "End": True}}},
        run_retries=2,
    )
    app.rule("audit", event_type="order.placed", targets=[
        squall.targets.Http("https://hooks.example.com/orders",
                            retry=squall.targets.RetryPolicy(max_attempts=3)),
        squall.targets.Queue("emails", input_path="$.data"),
    ])
    app.budget(usd=50)
    app.budget(usd=2, period="day", function="fraud-check", stop=True)
    app.alert("errors", metric="error_rate", threshold=0.1, window="5m", function="place-order")
    return app


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """A folder with the handlers module; the modules imported from it are forgotten after."""
    (tmp_path / "shop_handlers.py").write_text(HANDLERS)
    path = list(sys.path)
    yield tmp_path
    sys.path[:] = path
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def manifest_file(folder: Path, text: str, name: str = "squall.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def load(folder: Path, text: str) -> squall.App:
    return load_app_file(manifest_file(folder, text))[0]


def config_error(folder: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        load(folder, text)
    return raised.value


def plain(app: squall.App) -> dict[str, Any]:
    manifest = msgspec.to_builtins(app.manifest())
    del manifest["version"]
    return dict(manifest)


def test_a_manifest_and_its_decorator_twin_give_equal_manifests(folder: Path) -> None:
    app = load(folder, FULL)
    assert plain(app) == plain(twin(importlib.import_module("shop_handlers")))


def test_every_section_reaches_the_app(folder: Path) -> None:
    app = load(folder, FULL)
    h = importlib.import_module("shop_handlers")
    assert app.name == "shop" and app.settings.debug and app.settings.jwt is not None
    assert [t.name for t in app.tables] == ["orders", "stock", "order_totals"]
    assert app.buckets["uploads"].max_object_bytes == 1048576
    assert app.queues["emails"].dead_letter == "emails-dlq"
    assert app.streams[0].shards == 2
    place = app.functions["place-order"]
    assert place.handler is h.place_order and place.init is h.load_greetings
    assert place.config.has_init and place.config.description == "Take an order."
    assert app.functions["fraud-check"].config.is_async
    assert [(r.method, r.path, r.auth) for r in app.routes] == [
        ("POST", "/orders", "none"), ("GET", "/orders/{id}", "api_key")]
    assert [r.name for r in app.rules] == ["fraud-check-0", "big-updates", "thumbnail-0",
                                           "fulfil-0", "audit"]
    assert [(s.name, s.function) for s in app.schedules] == [
        ("sweeper", "sweeper"), ("morning", "sweeper")]
    assert app.schedules[1].payload == {"kind": "daily"}
    assert app.queue_triggers[0].batch_size == 5
    assert app.change_triggers[0].images == "new"
    assert app.stream_triggers[0].starting_position == "trim_horizon"
    assert app.projections[0].function == "totals"
    assert app.functions["totals"].config.retries == 0
    assert app.workflows[0].step_retries == 2
    assert app.functions["fulfil"].config.timeout_s == 600
    assert "checkout" in app.state_machines
    assert app.functions["checkout"].config.permissions == ("invoke:charge",)
    assert [b.usd for b in app.budgets] == [50, 2]
    assert app.alerts[0].window_s == 300


def test_sections_may_be_lists_of_named_items(folder: Path) -> None:
    app = load(folder, """
        app: shop
        tables: [{name: orders, partition_key: id}]
        functions: [{name: take, handler: "shop_handlers:place_order", http: "POST /x"}]
        alerts: [{name: slow, metric: p99_ms, threshold: 500}]
    """)
    assert app.tables[0].name == "orders" and app.routes[0].function == "take"
    assert app.alerts[0].name == "slow"


def test_a_state_machine_definition_file_is_read_beside_the_manifest(folder: Path) -> None:
    machine = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    (folder / "flow.asl.json").write_text(json.dumps(machine))
    path = manifest_file(folder, """
        app: shop
        state_machines: {flow: {definition_file: flow.asl.json}}
    """)
    app, source = load_app_file(path)
    assert "flow" in app.state_machines and b'"Succeed"' in source


def test_the_source_covers_the_manifest_and_each_handler_module(folder: Path) -> None:
    path = manifest_file(folder, """
        app: shop
        functions: {take: {handler: "shop_handlers:place_order"}}
    """)
    app, source = load_app_file(path)
    assert path.read_bytes() in source and HANDLERS.encode() in source
    before = app.manifest(source).version
    sys.modules.pop("shop_handlers")
    (folder / "shop_handlers.py").write_text(HANDLERS + "\n# changed\n")
    again, changed = load_app_file(path)
    assert again.manifest(changed).version != before


def test_load_app_takes_yaml_and_yml(folder: Path) -> None:
    text = 'app: shop\nfunctions: {take: {handler: "shop_handlers:place_order"}}\n'
    for name in ("squall.yaml", "app.yml"):
        app, _ = load_app(str(manifest_file(folder, text, name)))
        assert list(app.functions) == ["take"]


@pytest.mark.parametrize(
    ("text", "field", "hint"),
    [
        ("app: s\nfunction: {}\n", "function", "did you mean functions?"),
        ("app: s\nsettings: {debg: true}\n", "settings.debg", "did you mean debug?"),
        ("app: s\nsettings: {cors: {allow_origin: [x]}}\n", "settings.cors.allow_origin",
         "did you mean allow_origins?"),
        ("app: s\ntables: {t: {partition_kye: id}}\n", "tables.t.partition_kye",
         "did you mean partition_key?"),
        ("app: s\nfunctions: {place_order: {handler: 'shop_handlers:place_order',"
         " timout_s: 3}}\n", "functions.place_order.timout_s", "did you mean timeout_s?"),
        ("app: s\nfunctions: {f: {handler: 'shop_handlers:place_order',"
         " http: ['GET /a', {route: 'GET /b', auht: api_key}]}}\n", "functions.f.http[1].auht",
         "did you mean auth?"),
        ("app: s\nfunctions: {f: {handler: 'shop_handlers:sweep',"
         " schedule: {expresion: 'rate(1 minute)'}}}\n", "functions.f.schedule.expresion",
         "did you mean expression?"),
        ("app: s\nrules: {r: {event_type: x, targets: [{kind: http, url: 'https://a.b',"
         " retry: {max_attempt: 3}}]}}\n", "rules.r.targets[0].retry.max_attempt",
         "did you mean max_attempts?"),
        ("app: s\nworkflows: {w: {handler: 'shop_handlers:fulfil', step_retrys: 1}}\n",
         "workflows.w.step_retrys", "did you mean step_retries?"),
        ("app: s\nstate_machines: {m: {definition_fil: x.json}}\n",
         "state_machines.m.definition_fil", "did you mean definition_file?"),
    ],
)
def test_unknown_keys_are_named_with_their_path(
    folder: Path, text: str, field: str, hint: str
) -> None:
    error = config_error(folder, text)
    assert error.field is not None and error.field.startswith(field), error.message
    assert hint in error.message and error.message.startswith(field)


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("app: s\nfunctions: {f: {handler: 'shop_handlers:charge', memory_mb: big}}\n",
         "functions.f.memory_mb", "expected `int`, got `str`"),
        ("app: s\nsettings: {cors: {max_age_s: soon}}\n", "settings.cors.max_age_s",
         "expected `int`, got `str`"),
        ("app: s\nqueues: {q: {fifo: maybe}}\n", "queues.q.fifo", "expected `bool`"),
        ("app: s\nrules: {r: {event_type: x, targets: [{kind: bus, bus: b,"
         " retry: {max_attempts: many}}]}}\n", "rules.r.targets[0].retry.max_attempts",
         "expected `int`"),
        ("app: s\nrules: {r: {event_type: x, targets: [{kind: carrier_pigeon}]}}\n",
         "rules.r.targets[0].kind", "invalid value 'carrier_pigeon'"),
        ("app: s\nfunctions: {f: {handler: 'shop_handlers:charge', permissions: 'x'}}\n",
         "functions.f.permissions", "expected `array`, got `str`"),
        ("app: s\nfunctions: {f: {handler: 'shop_handlers:charge', http: 7}}\n",
         "functions.f.http", "expected a mapping of options or a route string"),
        ("app: s\ntables: [orders]\n", "tables[0]", "expected a mapping, not a string"),
        ("app: s\nbudgets: {usd: 1}\n", "budgets", "expected a list"),
    ],
)
def test_wrong_types_are_named_with_their_path(
    folder: Path, text: str, field: str, expected: str
) -> None:
    error = config_error(folder, text)
    assert error.field == field, error.message
    assert expected in error.message.lower(), error.message


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("app: s\nfunctions: {f: {handler: 'shop_handlers:charge', memory_mb: 1}}\n",
         "functions.f.memory_mb", "memory_mb=1 is out of range"),
        ("app: s\nfunctions: {f: {handler: 'shop_handlers:sweep', schedule: 'every day'}}\n",
         "functions.f.schedule.expression", "every day"),
        ("app: s\nfunctions: {f: {handler: 'shop_handlers:charge', on: {event_type: x,"
         " pattern: {data: {n: [{numeric: ['>']}]}}}}}\n", "functions.f.on.pattern.data.n",
         "pattern is invalid"),
        ("app: s\nfunctions: {f: {handler: 'shop_handlers:charge', on_change: {table: t,"
         " images: all}}}\n", "functions.f.on_change.images", "images='all'"),
        ("app: s\nqueues: {q: {delay_s: -1}}\n", "queues.q.delay_s", "delay_s"),
        ("app: s\nbudgets: [{usd: 1, period: year}]\n", "budgets[0].period", "period"),
        ("app: s\nstate_machines: {m: {definition: {StartAt: A}}}\n", "state_machines.m",
         "States"),
    ],
)
def test_the_decorators_own_checks_speak_with_the_path(
    folder: Path, text: str, field: str, expected: str
) -> None:
    error = config_error(folder, text)
    assert error.field is not None and error.field.startswith(field), (error.field, error)
    assert expected in error.message and error.message.startswith(field.split(".")[0])


def test_the_decorator_raises_the_same_check(folder: Path) -> None:
    with pytest.raises(ConfigError) as decorated:
        squall.App("s").function("f", memory_mb=1)(lambda event, ctx: None)
    error = config_error(folder, "app: s\nfunctions: {f: {handler: 'shop_handlers:charge',"
                                 " memory_mb: 1}}\n")
    assert error.message == f"functions.f: {decorated.value.message}"


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        ("shop_handlers", "expected 'module:function'"),
        ("no_such_module:f", "no module named 'no_such_module'"),
        ("shop_handlers:missing", "has no attribute 'missing'"),
        ("shop_handlers:NOT_CALLABLE", "is not callable"),
    ],
)
def test_bad_handler_references_are_named(folder: Path, handler: str, expected: str) -> None:
    error = config_error(folder, f"app: s\nfunctions: {{f: {{handler: '{handler}'}}}}\n")
    assert error.field == "functions.f.handler" and expected in error.message


def test_a_handler_may_be_a_class_attribute(folder: Path) -> None:
    (folder / "shop_classes.py").write_text(
        "class Handlers:\n    @staticmethod\n    def take(event, ctx):\n        return 1\n"
    )
    app = load(folder, "app: s\nfunctions: {take: {handler: 'shop_classes:Handlers.take'}}\n")
    assert app.functions["take"].handler(None, None) == 1


def test_a_handler_module_missing_a_dependency_reports_the_dependency(folder: Path) -> None:
    (folder / "shop_broken.py").write_text("import no_such_dependency_zz\n")
    with pytest.raises(ModuleNotFoundError) as raised:
        load(folder, "app: s\nfunctions: {f: {handler: 'shop_broken:f'}}\n")
    assert raised.value.name == "no_such_dependency_zz"


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("- app\n", "app", "must be a mapping"),
        ("functions: {}\n", "app", "required"),
        ("app: s\nfunctions: {f: {}}\n", "functions.f.handler", "missing required key handler"),
        ("app: s\nfunctions: {f: {handler: 'shop_handlers:charge', http: {auth: none}}}\n",
         "functions.f.http.route", "missing required key route"),
        ("app: s\nfunctions: {f: {handler: 'shop_handlers:fulfil', retries: 1,"
         " projection: {name: p, partition_key: id}}}\n", "functions.f.retries",
         "not for a projection"),
        ("app: s\nfunctions: {f: {handler: 'shop_handlers:fulfil', on: x,"
         " projection: {partition_key: id}}}\n", "functions.f.on", "projection"),
        ("app: s\nworkflows: {w: {handler: 'shop_handlers:fulfil', retries: 1}}\n",
         "workflows.w.retries", "not for a workflow"),
        ("app: s\nstate_machines: {m: {definition: {}, definition_file: x}}\n",
         "state_machines.m.definition", "not both"),
        ("app: s\nstate_machines: {m: {run_retries: 1}}\n", "state_machines.m.definition",
         "missing required key definition or definition_file"),
        ("app: s\nstate_machines: {m: {definition_file: nowhere.json}}\n",
         "state_machines.m.definition_file", "does not exist"),
        ("app: s\ntables: {t: {partition_key: [oops}\n", "app", "not valid YAML at line 2"),
        ("app: s\nfunctions:\n  f: {handler: 'shop_handlers:charge'}\n"
         "  f: {handler: 'shop_handlers:sweep'}\n", "app",
         "at line 4, column 3: the key 'f' is given twice"),
        ("", "app", "must be a mapping, not null"),
        ("app: s\nfunctions: {f: {handler: 'shop_handlers:charge', http: }}\n",
         "functions.f.http", "not null"),
    ],
)
def test_malformed_manifests_are_refused_with_the_path(
    folder: Path, text: str, field: str, expected: str
) -> None:
    error = config_error(folder, text)
    assert error.field == field, error.message
    assert expected in error.message


def test_yaml_11_booleans_are_plain_strings_but_true_and_false_are_booleans(
    folder: Path,
) -> None:
    app = load(folder, """
        app: s
        settings: {debug: true}
        functions:
          f: {handler: "shop_handlers:charge", on: yes, dead_letter: false}
    """)
    assert app.settings.debug and not app.functions["f"].config.dead_letter
    assert app.rules[0].pattern == {"type": ["yes"]}


def test_a_missing_manifest_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_app(str(tmp_path / "squall.yaml"))


BOGUS = "qqqqqqqqqqqq"  # close to no key, so the error lists them all
# A manifest with BOGUS at each documented place.
AT_PLACE = {
    "settings": f"settings: {{{BOGUS}: 1}}",
    "tables.<name>": f"tables: {{t: {{{BOGUS}: 1}}}}",
    "buckets.<name>": f"buckets: {{b: {{{BOGUS}: 1}}}}",
    "queues.<name>": f"queues: {{q: {{{BOGUS}: 1}}}}",
    "streams.<name>": f"streams: {{s: {{{BOGUS}: 1}}}}",
    "functions.<name>": f"functions: {{f: {{handler: 'shop_handlers:charge', {BOGUS}: 1}}}}",
    "functions.<name>.projection": "functions: {f: {handler: 'shop_handlers:project_totals',"
                                   f" projection: {{{BOGUS}: 1}}}}}}",
    "workflows.<name>": f"workflows: {{w: {{handler: 'shop_handlers:fulfil', {BOGUS}: 1}}}}",
    "state_machines.<name>": f"state_machines: {{m: {{{BOGUS}: 1}}}}",
    "rules.<name>": f"rules: {{r: {{{BOGUS}: 1}}}}",
    "budgets[]": f"budgets: [{{{BOGUS}: 1}}]",
    "alerts.<name>": f"alerts: {{a: {{{BOGUS}: 1}}}}",
}
for trigger in ("http", "on", "queue", "schedule", "on_object", "on_change", "stream"):
    AT_PLACE[f"functions.<name>.{trigger}"] = (
        f"functions: {{f: {{handler: 'shop_handlers:charge', {trigger}: {{{BOGUS}: 1}}}}}}"
    )


@pytest.mark.parametrize("place", places(), ids=lambda place: place.path)
def test_the_key_reference_lists_exactly_the_keys_the_loader_takes(
    folder: Path, place: Place
) -> None:
    error = config_error(folder, f"app: s\n{AT_PLACE[place.path]}\n")
    listed = error.message.split("expected one of ")[1].rstrip(")")
    assert set(listed.split(", ")) == place.keys()
