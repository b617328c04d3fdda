"""Declare a manifest's contents on an ``App`` by calling the methods the decorators use.

Validation and its messages are therefore the decorators' own; what this module adds is the
path of the YAML key at fault, put in front of the message and in ``field``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any

from squall.app import App
from squall.appfile.convert import check_keys, convert, join, parameters, unknown_key
from squall.appfile.imports import Imports
from squall.errors import ConfigError, SquallError

# Sections in the order they are declared: resources, then what uses them.
SECTIONS = (
    "app", "settings", "tables", "buckets", "queues", "streams", "functions", "workflows",
    "state_machines", "rules", "budgets", "alerts",
)
# Trigger key -> (App method, the key a bare string stands for, the keyword naming the function).
TRIGGERS: dict[str, tuple[Callable[..., Any], str, str]] = {
    "http": (App.http, "route", "name"),
    "on": (App.on, "event_type", "name"),
    "queue": (App.queue, "queue", "name"),
    "schedule": (App.schedule, "expression", "function"),
    "on_object": (App.on_object, "bucket", "name"),
    "on_change": (App.on_change, "table", "name"),
    "stream": (App.stream, "stream", "name"),
}
# Keywords of app.function a workflow's or projection's own call sets.
RUN_ONCE = ("retries",)
# Keys of a function's entry besides app.function's keywords.
FUNCTION_KEYS = ("handler", "projection", *TRIGGERS)


def build(doc: Any, imports: Imports) -> App:
    if not isinstance(doc, Mapping):
        raise ConfigError(f"the manifest must be a mapping, not {_kind(doc)}", field="app")
    check_keys("", doc, SECTIONS)
    name = doc.get("app")
    if not isinstance(name, str) or not name:
        raise ConfigError("app: required, the app's name (a string)", field="app")
    settings = _arguments(App.__init__, _mapping(doc.get("settings"), "settings"), "settings",
                          given={"name"})
    app: App = _call("settings", partial(App, name, **settings))
    for section, method in (
        ("tables", App.table), ("buckets", App.bucket), ("queues", App.queue_resource),
        ("streams", App.stream_resource),
    ):
        _resources(app, doc.get(section), section, method)
    for item, path, options in _named(doc.get("functions"), "functions"):
        _function(app, item, path, dict(options), imports)
    for item, path, options in _named(doc.get("workflows"), "workflows"):
        _workflow(app, item, path, dict(options), imports)
    for item, path, options in _named(doc.get("state_machines"), "state_machines"):
        _state_machine(app, item, path, dict(options), imports)
    _resources(app, doc.get("rules"), "rules", App.rule)
    for path, options in _listed(doc.get("budgets"), "budgets"):
        _call(path, partial(app.budget, **_arguments(App.budget, options, path)))
    _resources(app, doc.get("alerts"), "alerts", App.alert)
    return app


def _resources(app: App, value: Any, section: str, method: Callable[..., Any]) -> None:
    for item, path, options in _named(value, section):
        _call(path, partial(method, app, item, **_arguments(method, options, path,
                                                             given={"name"})))


def _function(app: App, name: str, path: str, options: dict[str, Any], imports: Imports) -> None:
    handler = imports.callable(_required(options, "handler", path), join(path, "handler"))
    triggers = _pop_triggers(options)
    projection = options.pop("projection", None)
    if projection is None:
        args = _function_options(options, path, imports, extra=FUNCTION_KEYS)
        _decorate(path, handler, app.function, name, **args)
        _triggers(app, name, handler, triggers, path)
        return
    if triggers:
        where = join(path, next(iter(triggers)))
        raise ConfigError(
            f"{where}: a projection's function runs on the event store only; declare the"
            " trigger on another function",
            field=where,
        )
    where = join(path, "projection")
    args = _arguments(App.projection, _mapping(projection, where), where, given={"function"})
    args.update(_function_options(options, path, imports, owner="a projection",
                                 extra=FUNCTION_KEYS))
    _decorate(where, handler, app.projection, function=name, **args)


def _workflow(app: App, name: str, path: str, options: dict[str, Any], imports: Imports) -> None:
    handler = imports.callable(_required(options, "handler", path), join(path, "handler"))
    triggers = _pop_triggers(options)
    args = _function_options(options, path, imports, owner="a workflow", own=App.workflow,
                             extra=("handler", *TRIGGERS))
    _decorate(path, handler, app.workflow, name, **args)
    _triggers(app, name, handler, triggers, path)


def _state_machine(
    app: App, name: str, path: str, options: dict[str, Any], imports: Imports
) -> None:
    text, file = options.pop("definition", None), options.pop("definition_file", None)
    args = _function_options(options, path, imports, owner="a state machine",
                             own=App.state_machine, extra=("definition", "definition_file"))
    definition: Any
    if text is not None and file is not None:
        raise ConfigError(
            f"{path}: give definition or definition_file, not both",
            field=join(path, "definition"),
        )
    if file is not None:
        definition = imports.file(file, join(path, "definition_file"))
    elif text is not None:
        definition = convert(text, dict[str, Any] | str, join(path, "definition"))
    else:
        raise ConfigError(
            f"{path}: missing required key definition or definition_file",
            field=join(path, "definition"),
        )
    _call(path, partial(app.state_machine, name, definition=definition, **args))


def _triggers(
    app: App, name: str, handler: Callable[..., Any], triggers: dict[str, Any], path: str
) -> None:
    for key, value in triggers.items():
        method, shorthand, names_function = TRIGGERS[key]
        for where, options in _trigger_items(value, join(path, key), shorthand):
            args = _arguments(method, options, where, given={names_function})
            args[names_function] = name
            _decorate(where, handler, method, app, **args)


def _function_options(
    options: Mapping[str, Any],
    path: str,
    imports: Imports,
    *,
    owner: str = "",
    own: Callable[..., Any] | None = None,
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The keywords of ``own`` (app.workflow, app.state_machine) and of app.function, which
    ``own`` passes on; ``owner`` sets ``retries`` itself, so the key is refused."""
    accepted = dict(parameters(App.function))
    accepted.update(parameters(own) if own is not None else {})
    for key in ("self", "name", "definition", "init", *(RUN_ONCE if owner else ())):
        accepted.pop(key, None)
    args: dict[str, Any] = {}
    for key, value in options.items():
        where = join(path, key)
        if owner and key in RUN_ONCE:
            raise ConfigError(f"{where}: not for {owner}, which sets it itself", field=where)
        if key == "init":
            args["init"] = imports.callable(value, where)
        elif key in accepted:
            args[key] = convert(value, accepted[key][0], where)
        else:
            raise unknown_key(path, key, [*accepted, "init", *extra])
    return args


def _arguments(
    method: Callable[..., Any],
    options: Mapping[Any, Any],
    path: str,
    *,
    given: set[str] | frozenset[str] = frozenset(),
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``options`` converted to ``method``'s keywords; ``given`` ones the loader supplies
    (they are not keys of the YAML), ``extra`` ones are suggested for typos but not taken."""
    accepted = {k: v for k, v in parameters(method).items() if k not in given}
    args: dict[str, Any] = {}
    for key, value in options.items():
        if key not in accepted:
            raise unknown_key(path, key, [*accepted, *extra])
        args[key] = convert(value, accepted[key][0], join(path, key))
    for key, (_, required) in accepted.items():
        if required and key not in args:
            raise ConfigError(f"{path}: missing required key {key}", field=join(path, key))
    return args


def _pop_triggers(options: dict[str, Any]) -> dict[str, Any]:
    return {key: options.pop(key) for key in list(options) if key in TRIGGERS}


def _trigger_items(
    value: Any, path: str, shorthand: str
) -> Iterator[tuple[str, Mapping[Any, Any]]]:
    """A trigger's declarations: one, or a list of them (stacked decorators); a bare value
    stands for the trigger's first argument (``http: "GET /x"``)."""
    items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
    for index, item in items:
        where = path if index is None else f"{path}[{index}]"
        if isinstance(item, Mapping):
            yield where, item
        elif isinstance(item, str):
            yield where, {shorthand: item}
        else:
            raise ConfigError(
                f"{where}: expected a mapping of options or a {shorthand} string, not"
                f" {_kind(item)}",
                field=where,
            )


def _named(value: Any, path: str) -> Iterator[tuple[str, str, Mapping[Any, Any]]]:
    """(name, path, options) of a section: a mapping of name -> options, or a list of
    mappings each with a ``name``."""
    if value is None:
        return
    if isinstance(value, Mapping):
        for name, options in value.items():
            where = join(path, name)
            if not isinstance(name, str):
                raise ConfigError(f"{where}: names must be strings", field=where)
            yield name, where, _mapping(options, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            where = f"{path}[{index}]"
            options = dict(_mapping(item, where))
            name = options.pop("name", None)
            if not isinstance(name, str):
                raise ConfigError(f"{where}.name: required, a string", field=f"{where}.name")
            yield name, where, options
    else:
        raise ConfigError(
            f"{path}: expected a mapping of name to options, or a list, not {_kind(value)}",
            field=path,
        )


def _listed(value: Any, path: str) -> Iterator[tuple[str, Mapping[Any, Any]]]:
    if value is None:
        return
    if not isinstance(value, list):
        raise ConfigError(f"{path}: expected a list, not {_kind(value)}", field=path)
    for index, item in enumerate(value):
        yield f"{path}[{index}]", _mapping(item, f"{path}[{index}]")


def _mapping(value: Any, path: str) -> Mapping[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected a mapping, not {_kind(value)}", field=path)
    return value


def _required(options: dict[str, Any], key: str, path: str, also: str = "") -> Any:
    if key not in options:
        either = f"{key} or {also}" if also else key
        raise ConfigError(f"{path}: missing required key {either}", field=join(path, key))
    return options.pop(key)


def _call(path: str, declare: Callable[[], Any]) -> Any:
    """Run an App method; its error, if any, gets the manifest path in front."""
    try:
        return declare()
    except SquallError as exc:
        field = join(path, exc.field) if exc.field else path
        details = {k: v for k, v in exc.details.items() if k != "path"}
        raise ConfigError(f"{path}: {exc.message}", field=field, **details) from None


def _decorate(
    path: str, handler: Callable[..., Any], factory: Callable[..., Any], *args: Any,
    **kwargs: Any
) -> None:
    """``factory(*args, **kwargs)(handler)``: a decorator's factory validates some
    arguments itself (patterns, event types), so both calls are inside ``_call``."""
    _call(path, lambda: factory(*args, **kwargs)(handler))


def _kind(value: Any) -> str:
    names: dict[type, str] = {
        list: "a list", str: "a string", dict: "a mapping", type(None): "null"
    }
    return names.get(type(value), type(value).__name__)
