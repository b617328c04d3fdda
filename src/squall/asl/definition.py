"""Load an ASL definition (a dict, JSON text or a file) into validated structs.

Every error is a ``ConfigError`` naming the state and the field
(``field="States.Charge.Retry[0].BackoffRate"``): unknown state types or fields, a missing
``Next``/``End``, a ``Next`` to no state, unreachable states, bad paths, templates, choice
rules and intrinsic calls.
"""

from __future__ import annotations

import json
import re
from collections import deque
from pathlib import Path as FilePath
from typing import Any

import msgspec

from squall.asl import choice, intrinsics, paths, payload
from squall.asl.errors import ALL
from squall.errors import ConfigError
from squall.model.config import NAME_RE

MAX_STATE_NAME = 80
_RESOURCE = re.compile(r"^(?:squall:function:)?(?P<name>[^:]+)$")
_COMMON = {"Type", "Comment"}
_FLOW = {"Next", "End"}
_IO = {"InputPath", "OutputPath"}
_RESULT = {"Parameters", "ResultSelector", "ResultPath"}
_ERRORS = {"Retry", "Catch"}
FIELDS: dict[str, set[str]] = {
    "Task": _COMMON | _FLOW | _IO | _RESULT | _ERRORS | {"Resource", "TimeoutSeconds"},
    "Pass": _COMMON | _FLOW | _IO | {"Parameters", "ResultPath", "Result"},
    "Choice": _COMMON | _IO | {"Choices", "Default"},
    "Wait": _COMMON | _FLOW | _IO | {"Seconds", "Timestamp", "SecondsPath", "TimestampPath"},
    "Succeed": _COMMON | _IO,
    "Fail": _COMMON | {"Error", "Cause", "ErrorPath", "CausePath"},
    "Parallel": _COMMON | _FLOW | _IO | _RESULT | _ERRORS | {"Branches"},
    "Map": _COMMON | _FLOW | _IO | _RESULT | _ERRORS
    | {"ItemsPath", "ItemSelector", "ItemProcessor", "Iterator", "MaxConcurrency"},
}
ROOT = paths.parse("$")


class Template(msgspec.Struct, frozen=True):
    """A compiled ``Parameters``/``ResultSelector``/``ItemSelector`` (or a Pass ``Result``)."""

    value: Any


class Retrier(msgspec.Struct, frozen=True, kw_only=True):
    error_equals: tuple[str, ...]
    interval_s: float = 1.0
    max_attempts: int = 3
    backoff_rate: float = 2.0
    max_delay_s: float | None = None
    jitter: str = "NONE"  # or FULL

    def delay(self, retry: int, fraction: float) -> float:
        """Seconds before retry number ``retry`` (from 0); ``fraction`` in [0, 1) scales it
        under FULL jitter."""
        seconds = self.interval_s * self.backoff_rate**retry
        if self.max_delay_s is not None:
            seconds = min(seconds, self.max_delay_s)
        return seconds * fraction if self.jitter == "FULL" else seconds


class Catcher(msgspec.Struct, frozen=True, kw_only=True):
    error_equals: tuple[str, ...]
    next: str
    result_path: paths.Path | None = ROOT


class ChoiceBranch(msgspec.Struct, frozen=True):
    rule: choice.Rule
    next: str


class State(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    type: str
    next: str | None = None
    end: bool = False
    input_path: paths.Path | None = ROOT  # None: the state sees {}
    output_path: paths.Path | None = ROOT
    parameters: Template | None = None
    result_selector: Template | None = None
    result_path: paths.Path | None = ROOT  # None: the result is dropped, the input kept
    result: Template | None = None
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()
    resource: str | None = None  # Task: the function
    timeout_s: float | None = None
    choices: tuple[ChoiceBranch, ...] = ()
    default: str | None = None
    seconds: float | None = None
    timestamp: str | None = None
    seconds_path: paths.Path | None = None
    timestamp_path: paths.Path | None = None
    error: str | None = None
    cause: str | None = None
    error_path: paths.Path | intrinsics.Call | None = None
    cause_path: paths.Path | intrinsics.Call | None = None
    branches: tuple[Machine, ...] = ()  # Parallel; Map: its item processor
    items_path: paths.Path = ROOT
    item_selector: Template | None = None
    max_concurrency: int = 0  # 0: no limit


class Machine(msgspec.Struct, frozen=True, kw_only=True):
    start_at: str
    states: dict[str, State]
    where: str = ""  # "" at the top, "States.P.Branches[0]." inside
    timeout_s: float | None = None  # the whole execution's (top level only)

    def resources(self) -> set[str]:
        """Every function a Task of this machine (or of its branches) invokes."""
        found: set[str] = set()
        for state in self.states.values():
            if state.resource is not None:
                found.add(state.resource)
            for branch in state.branches:
                found |= branch.resources()
        return found

    def tasks(self) -> list[tuple[str, str]]:
        """``(field, function)`` of every Task here and in the branches, e.g.
        ``("States.P.Branches[0].States.Charge.Resource", "charge")``."""
        found: list[tuple[str, str]] = []
        for name, state in self.states.items():
            if state.resource is not None:
                found.append((f"{self.where}States.{name}.Resource", state.resource))
            for branch in state.branches:
                found += branch.tasks()
        return found

    def branch(self, address: list[list[Any]]) -> Machine:
        """The nested machine at ``address`` (``[[state, branch index], ...]``)."""
        machine = self
        for state, index in address:
            machine = machine.states[state].branches[index]
        return machine


class _Error(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def load(name: str, definition: dict[str, Any] | str | FilePath) -> Machine:
    """Parse and validate ``definition``: a dict, JSON text, or the path of a JSON file."""
    document: Any = definition
    if isinstance(definition, FilePath):
        try:
            document = json.loads(definition.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"state machine {name!r}: cannot read {definition}: {exc}",
                              field="definition") from None
    elif isinstance(definition, str):
        try:
            document = json.loads(definition)
        except ValueError as exc:
            raise ConfigError(f"state machine {name!r}: the definition is not JSON: {exc}",
                              field="definition") from None
    try:
        return _machine(document, "")
    except _Error as exc:
        raise ConfigError(f"state machine {name!r}: {exc.field}: {exc.message}",
                          field=exc.field) from None


def _machine(spec: Any, where: str) -> Machine:
    if not isinstance(spec, dict):
        raise _Error(where.rstrip(".") or "definition", "must be an object with StartAt and"
                     " States")
    allowed = {"StartAt", "States", "Comment", "Version"}
    allowed |= {"TimeoutSeconds"} if not where else {"ProcessorConfig"}
    extra = sorted(set(spec) - allowed)
    if extra:
        raise _Error(f"{where}{extra[0]}", f"{extra[0]!r} is not a supported field")
    states_spec = spec.get("States")
    if not isinstance(states_spec, dict) or not states_spec:
        raise _Error(f"{where}States", "must be an object with at least one state")
    start = spec.get("StartAt")
    if not isinstance(start, str) or start not in states_spec:
        raise _Error(f"{where}StartAt", f"{start!r} is not one of the states")
    states: dict[str, State] = {}
    for state_name, state_spec in states_spec.items():
        if not state_name or len(state_name) > MAX_STATE_NAME:
            raise _Error(f"{where}States", f"state name {state_name!r} must be 1-80 characters")
        states[state_name] = _state(state_name, state_spec, f"{where}States.{state_name}.")
    timeout = None
    if "TimeoutSeconds" in spec:
        timeout = _number(spec, "TimeoutSeconds", "TimeoutSeconds", minimum=0.001)
    machine = Machine(start_at=start, states=states, where=where, timeout_s=timeout)
    _check_targets(machine)
    return machine


def _state(name: str, spec: Any, where: str) -> State:
    if not isinstance(spec, dict):
        raise _Error(where.rstrip("."), "a state must be an object")
    kind = spec.get("Type")
    if kind not in FIELDS:
        raise _Error(f"{where}Type", f"{kind!r} is not a state type ({', '.join(FIELDS)})")
    extra = sorted(set(spec) - FIELDS[kind])
    if extra:
        raise _Error(f"{where}{extra[0]}", f"{extra[0]!r} is not a field of a {kind} state")
    fields: dict[str, Any] = {"name": name, "type": kind}
    if FIELDS[kind] & _FLOW:
        _flow(spec, where, fields)
    for key, attr in (("InputPath", "input_path"), ("OutputPath", "output_path")):
        if key in spec:
            fields[attr] = None if spec[key] is None else _path(spec[key], where + key)
    if "ResultPath" in spec:
        value = spec["ResultPath"]
        fields["result_path"] = None if value is None else _result_path(value, where)
    for key, attr in (("Parameters", "parameters"), ("ResultSelector", "result_selector"),
                      ("ItemSelector", "item_selector")):
        if key in spec:
            fields[attr] = _template(spec[key], where + key)
    if "Result" in spec:
        fields["result"] = Template(spec["Result"])
    if "Retry" in spec:
        fields["retry"] = _retriers(spec["Retry"], where + "Retry")
    if "Catch" in spec:
        fields["catch"] = _catchers(spec["Catch"], where + "Catch")
    _BY_TYPE[kind](spec, where, fields)
    return State(**fields)


def _flow(spec: dict[str, Any], where: str, fields: dict[str, Any]) -> None:
    has_next, end = "Next" in spec, spec.get("End")
    if end not in (None, True):
        raise _Error(f"{where}End", "End must be true when present")
    if has_next and end:
        raise _Error(f"{where}Next", "a state has either Next or End: true, not both")
    if not has_next and not end:
        raise _Error(f"{where}Next", "the state needs Next (the state after it) or End: true")
    if has_next:
        if not isinstance(spec["Next"], str):
            raise _Error(f"{where}Next", "Next must be a state name")
        fields["next"] = spec["Next"]
    fields["end"] = bool(end)


def _path(value: Any, field: str, *, reference: bool = False) -> paths.Path:
    try:
        return paths.parse(value, reference=reference)
    except paths.PathError as exc:
        raise _Error(field, str(exc)) from None


def _result_path(value: Any, where: str) -> paths.Path:
    path = _path(value, where + "ResultPath", reference=True)
    if path.context:
        raise _Error(where + "ResultPath", "ResultPath writes into the input: use '$…', not"
                     " '$$…'")
    return path


def _template(value: Any, field: str) -> Template:
    try:
        return Template(payload.compile_template(value))
    except payload.TemplateError as exc:
        raise _Error(f"{field}.{exc.where}", str(exc)) from None


def _errors_list(value: Any, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v
                                                           for v in value):
        raise _Error(field, "must be a non-empty array of error names")
    if ALL in value and len(value) != 1:
        raise _Error(field, "States.ALL must be the only error name of its list")
    return tuple(value)


def _number(spec: dict[str, Any], key: str, field: str, *, minimum: float,
            integer: bool = False) -> Any:
    value = spec[key]
    wrong = isinstance(value, bool) or not isinstance(value, int | float) or (
        integer and not isinstance(value, int))
    if wrong or value < minimum:
        kind = "an integer" if integer else "a number"
        raise _Error(field, f"{key} must be {kind} >= {minimum}, not {value!r}")
    return value


def _retriers(value: Any, field: str) -> tuple[Retrier, ...]:
    if not isinstance(value, list):
        raise _Error(field, "must be an array of retriers")
    out: list[Retrier] = []
    known = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate",
             "MaxDelaySeconds", "JitterStrategy", "Comment"}
    for i, spec in enumerate(value):
        here = f"{field}[{i}]"
        if not isinstance(spec, dict):
            raise _Error(here, "a retrier must be an object")
        extra = sorted(set(spec) - known)
        if extra:
            raise _Error(f"{here}.{extra[0]}", f"{extra[0]!r} is not a field of a retrier")
        errors = _errors_list(spec.get("ErrorEquals"), f"{here}.ErrorEquals")
        if ALL in errors and i != len(value) - 1:
            raise _Error(f"{here}.ErrorEquals", "a retrier on States.ALL must be the last one")
        fields: dict[str, Any] = {"error_equals": errors}
        # IntervalSeconds may be a fraction of a second here (the spec asks for an integer)
        for key, attr, minimum, integer in (
            ("IntervalSeconds", "interval_s", 0.001, False),
            ("MaxAttempts", "max_attempts", 0, True),
            ("BackoffRate", "backoff_rate", 1.0, False),
            ("MaxDelaySeconds", "max_delay_s", 0.001, False),
        ):
            if key in spec:
                fields[attr] = _number(spec, key, f"{here}.{key}", minimum=minimum,
                                       integer=integer)
        if "JitterStrategy" in spec:
            if spec["JitterStrategy"] not in ("FULL", "NONE"):
                raise _Error(f"{here}.JitterStrategy", "JitterStrategy must be FULL or NONE")
            fields["jitter"] = spec["JitterStrategy"]
        out.append(Retrier(**fields))
    return tuple(out)


def _catchers(value: Any, field: str) -> tuple[Catcher, ...]:
    if not isinstance(value, list):
        raise _Error(field, "must be an array of catchers")
    out: list[Catcher] = []
    for i, spec in enumerate(value):
        here = f"{field}[{i}]"
        if not isinstance(spec, dict):
            raise _Error(here, "a catcher must be an object")
        extra = sorted(set(spec) - {"ErrorEquals", "Next", "ResultPath", "Comment"})
        if extra:
            raise _Error(f"{here}.{extra[0]}", f"{extra[0]!r} is not a field of a catcher")
        errors = _errors_list(spec.get("ErrorEquals"), f"{here}.ErrorEquals")
        if ALL in errors and i != len(value) - 1:
            raise _Error(f"{here}.ErrorEquals", "a catcher on States.ALL must be the last one")
        if not isinstance(spec.get("Next"), str):
            raise _Error(f"{here}.Next", "a catcher needs Next, the state to go to")
        result_path: paths.Path | None = ROOT
        if "ResultPath" in spec:
            raw = spec["ResultPath"]
            result_path = None if raw is None else _path(raw, f"{here}.ResultPath",
                                                         reference=True)
        out.append(Catcher(error_equals=errors, next=spec["Next"], result_path=result_path))
    return tuple(out)


def _task(spec: dict[str, Any], where: str, fields: dict[str, Any]) -> None:
    resource = spec.get("Resource")
    match = _RESOURCE.match(resource) if isinstance(resource, str) else None
    if match is None or not NAME_RE.match(match["name"]):
        raise _Error(f"{where}Resource", f"{resource!r} is not a function: give its name or"
                     " 'squall:function:<name>'")
    fields["resource"] = match["name"]
    if "TimeoutSeconds" in spec:
        fields["timeout_s"] = _number(spec, "TimeoutSeconds", f"{where}TimeoutSeconds",
                                      minimum=0.001)


def _pass(spec: dict[str, Any], where: str, fields: dict[str, Any]) -> None:
    return None


def _choice(spec: dict[str, Any], where: str, fields: dict[str, Any]) -> None:
    rules = spec.get("Choices")
    if not isinstance(rules, list) or not rules:
        raise _Error(f"{where}Choices", "a Choice state needs a non-empty Choices array")
    branches: list[ChoiceBranch] = []
    for i, rule_spec in enumerate(rules):
        here = f"{where}Choices[{i}]"
        if not isinstance(rule_spec, dict) or not isinstance(rule_spec.get("Next"), str):
            raise _Error(f"{here}.Next", "each top-level choice rule needs Next")
        body = {k: v for k, v in rule_spec.items() if k not in ("Next", "Comment")}
        try:
            rule = choice.parse_rule(body, here)
        except choice.RuleError as exc:
            raise _Error(exc.where, str(exc)) from None
        branches.append(ChoiceBranch(rule, rule_spec["Next"]))
    fields["choices"] = tuple(branches)
    if "Default" in spec:
        if not isinstance(spec["Default"], str):
            raise _Error(f"{where}Default", "Default must be a state name")
        fields["default"] = spec["Default"]


def _wait(spec: dict[str, Any], where: str, fields: dict[str, Any]) -> None:
    given = [k for k in ("Seconds", "Timestamp", "SecondsPath", "TimestampPath") if k in spec]
    if len(given) != 1:
        raise _Error(f"{where}Seconds", "a Wait state needs exactly one of Seconds, Timestamp,"
                     f" SecondsPath or TimestampPath (got {', '.join(given) or 'none'})")
    key = given[0]
    if key == "Seconds":
        fields["seconds"] = _number(spec, key, where + key, minimum=0)
    elif key == "Timestamp":
        if not choice.is_timestamp(spec[key]):
            raise _Error(where + key, f"{spec[key]!r} is not an RFC 3339 timestamp")
        fields["timestamp"] = spec[key]
    else:
        attr = "seconds_path" if key == "SecondsPath" else "timestamp_path"
        fields[attr] = _path(spec[key], where + key, reference=True)


def _fail(spec: dict[str, Any], where: str, fields: dict[str, Any]) -> None:
    for key, path_key in (("Error", "ErrorPath"), ("Cause", "CausePath")):
        if key in spec and path_key in spec:
            raise _Error(where + path_key, f"give {key} or {path_key}, not both")
        if key in spec:
            if not isinstance(spec[key], str):
                raise _Error(where + key, f"{key} must be a string")
            fields[key.lower()] = spec[key]
        if path_key in spec:
            value = spec[path_key]
            fields[f"{key.lower()}_path"] = (
                _intrinsic_path(value, where + path_key) if isinstance(value, str)
                and intrinsics.is_call(value) else _path(value, where + path_key,
                                                         reference=True)
            )


def _intrinsic_path(value: str, field: str) -> intrinsics.Call:
    try:
        return intrinsics.parse(value)
    except intrinsics.IntrinsicError as exc:
        raise _Error(field, str(exc)) from None


def _parallel(spec: dict[str, Any], where: str, fields: dict[str, Any]) -> None:
    branches = spec.get("Branches")
    if not isinstance(branches, list) or not branches:
        raise _Error(f"{where}Branches", "a Parallel state needs a non-empty Branches array")
    fields["branches"] = tuple(
        _machine(b, f"{where}Branches[{i}].") for i, b in enumerate(branches)
    )


def _map(spec: dict[str, Any], where: str, fields: dict[str, Any]) -> None:
    key = "ItemProcessor" if "ItemProcessor" in spec else "Iterator"
    if key not in spec:
        raise _Error(f"{where}ItemProcessor", "a Map state needs ItemProcessor")
    if "ItemProcessor" in spec and "Iterator" in spec:
        raise _Error(f"{where}Iterator", "give ItemProcessor or Iterator, not both")
    fields["branches"] = (_machine(spec[key], f"{where}{key}."),)
    if "ItemsPath" in spec:
        fields["items_path"] = _path(spec["ItemsPath"], f"{where}ItemsPath", reference=True)
    if "Parameters" in spec:  # the older name of ItemSelector
        if "ItemSelector" in spec:
            raise _Error(f"{where}Parameters", "give ItemSelector or Parameters, not both")
        fields["item_selector"] = fields.pop("parameters")
    if "MaxConcurrency" in spec:
        fields["max_concurrency"] = _number(spec, "MaxConcurrency", f"{where}MaxConcurrency",
                                            minimum=0, integer=True)


_BY_TYPE = {"Task": _task, "Pass": _pass, "Choice": _choice, "Wait": _wait,
            "Succeed": _pass, "Fail": _fail, "Parallel": _parallel, "Map": _map}


def _check_targets(machine: Machine) -> None:
    """Every ``Next``/``Default``/catcher target is a state here; every state is reachable
    from ``StartAt``."""
    edges: dict[str, list[tuple[str, str]]] = {}
    for name, state in machine.states.items():
        where = f"{machine.where}States.{name}."
        targets: list[tuple[str, str]] = []
        if state.next is not None:
            targets.append((f"{where}Next", state.next))
        targets += [(f"{where}Choices[{i}].Next", b.next) for i, b in enumerate(state.choices)]
        if state.default is not None:
            targets.append((f"{where}Default", state.default))
        targets += [(f"{where}Catch[{i}].Next", c.next) for i, c in enumerate(state.catch)]
        for field, target in targets:
            if target not in machine.states:
                raise _Error(field, f"{target!r} is not a state of this machine")
        edges[name] = targets
    seen = {machine.start_at}
    todo = deque([machine.start_at])
    while todo:
        for _, target in edges[todo.popleft()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    for name in machine.states:
        if name not in seen:
            raise _Error(f"{machine.where}States.{name}",
                         f"state {name!r} is unreachable from StartAt {machine.start_at!r}")
