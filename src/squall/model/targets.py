"""Rule targets: where a matched event goes, in what shape, and how hard delivery tries.

A target is one of a tagged union on ``kind`` (new kinds, such as queues and workflows,
join the union later):

- ``function``: an async invocation of a function of the app. Handing the event to the
  function's queue is part of the publish commit and cannot fail, so the *function's* retry
  policy (``retries``, ``max_event_age_s``, ``dead_letter``) governs the invocation; such a
  target has no retry policy of its own.
- ``bus``: the event is put, unchanged, onto another bus (one hop further: cycles end in
  ``RecursiveLoop``).
- ``http``: the event (or its transformed input) is POSTed to a URL.

Bus and HTTP deliveries are retried per the target's ``retry`` policy (EventBridge's
defaults: 185 retries within 24 hours) and, once out of attempts or age, kept as dead
letters unless ``dead_letter`` is false. Function and HTTP targets may transform what they
receive: a constant ``input``, the part of the event at ``input_path``, or an
``input_transformer`` (see :mod:`squall.model.transform`).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import msgspec.structs

from squall.errors import InvalidInput
from squall.model.aliases import ALIAS_RE
from squall.model.jsonpath import parse_path
from squall.model.transform import check_template

MAX_TARGETS = 5
TARGET_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
FUNCTION_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{0,63}$")
BUS_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
QUEUE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")  # as model.queues.QUEUE_NAME_RE
GROUP_ID_RE = re.compile(r"^[!-~]{1,128}$")
VARIABLE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_VARIABLES = 100
MAX_TEMPLATE = 8192
# field -> (minimum, maximum), inclusive; EventBridge's ranges.
RETRY_RANGES: dict[str, tuple[int, int]] = {
    "max_attempts": (0, 185),
    "max_event_age_s": (60, 86400),
}
TIMEOUT_RANGE = (1.0, 60.0)
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")  # an RFC 9110 token
HEADER_VALUE_RE = re.compile(r"^[^\x00-\x08\x0a-\x1f\x7f]*$")  # no control but tab
URL_RE = re.compile(r"^https?://[^\x00-\x20\x7f/?#]+(?:[/?#][^\x00-\x20\x7f]*)?$")
# Headers the HTTP client owns: a target setting them would corrupt the request.
RESERVED_HEADERS = frozenset({"content-length", "host", "transfer-encoding", "connection"})


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``max_attempts``: retries after the first attempt (EventBridge's
    MaximumRetryAttempts); ``max_event_age_s``: no attempt once the event is this old."""

    max_attempts: int = 185
    max_event_age_s: int = 86400


class InputTransformer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Variables taken from the event by JSON path, filled into ``<name>`` placeholders."""

    input_paths_map: dict[str, str] = {}
    input_template: str


class _Target(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    id: str = ""  # unique within its rule; the rule fills in its index when left empty


class FunctionTarget(_Target, frozen=True, forbid_unknown_fields=True, tag="function"):
    function: str
    alias: str | None = None  # the version that runs it: that alias's (None: live, or newest)
    input: Any = msgspec.UNSET  # a constant JSON value (null included) sent instead
    input_path: str | None = None
    input_transformer: InputTransformer | None = None


class BusTarget(_Target, frozen=True, forbid_unknown_fields=True, tag="bus"):
    bus: str
    retry: RetryPolicy = RetryPolicy()
    dead_letter: bool = True


class HttpTarget(_Target, frozen=True, forbid_unknown_fields=True, tag="http"):
    url: str
    headers: dict[str, str] = {}
    timeout_s: float = 5.0
    input: Any = msgspec.UNSET
    input_path: str | None = None
    input_transformer: InputTransformer | None = None
    retry: RetryPolicy = RetryPolicy()
    dead_letter: bool = True


class QueueTarget(_Target, frozen=True, forbid_unknown_fields=True, tag="queue"):
    """A message on a queue of the platform; on a FIFO queue, in ``group_id``'s group and
    deduplicated by the delivery's id, so a retried delivery is one message."""

    queue: str
    group_id: str | None = None  # FIFO queues: the message group (default: the event source)
    input: Any = msgspec.UNSET
    input_path: str | None = None
    input_transformer: InputTransformer | None = None
    retry: RetryPolicy = RetryPolicy()
    dead_letter: bool = True


Target = FunctionTarget | BusTarget | HttpTarget | QueueTarget
TRANSFORMING = (FunctionTarget, HttpTarget, QueueTarget)


def kind_of(target: Target) -> str:
    return str(type(target).__struct_config__.tag)


def with_ids(targets: tuple[Target, ...]) -> tuple[Target, ...]:
    """``targets`` with every empty id set to the target's index."""
    return tuple(
        target if target.id else msgspec.structs.replace(target, id=str(index))
        for index, target in enumerate(targets)
    )


def validate_targets(targets: tuple[Target, ...]) -> None:
    """Check what can be checked without the app: ids, syntax, ranges, transforms.

    Raises ``InvalidInput`` naming the field, e.g. ``targets[1].retry.max_attempts``.
    """
    if len(targets) > MAX_TARGETS:
        raise InvalidInput(
            f"a rule has at most {MAX_TARGETS} targets, not {len(targets)}", field="targets"
        )
    seen: set[str] = set()
    for index, target in enumerate(targets):
        where = f"targets[{index}]"
        if not TARGET_ID_RE.fullmatch(target.id):
            raise InvalidInput(
                f"{where}.id {target.id!r} is invalid: 1-64 letters, digits, '.', '_' or '-'",
                field=f"{where}.id",
            )
        if target.id in seen:
            raise InvalidInput(f"{where}.id {target.id!r} is used twice", field=f"{where}.id")
        seen.add(target.id)
        _check_target(target, where)


def _check_target(target: Target, where: str) -> None:
    if isinstance(target, FunctionTarget):
        _check_name(target.function, FUNCTION_RE, f"{where}.function", "a function name")
        if target.alias is not None:
            _check_name(target.alias, ALIAS_RE, f"{where}.alias", "an alias name (live, beta)")
    elif isinstance(target, BusTarget):
        _check_name(target.bus, BUS_RE, f"{where}.bus", "a bus name (lower case)")
    elif isinstance(target, QueueTarget):
        _check_name(target.queue, QUEUE_RE, f"{where}.queue", "a queue name")
        if target.group_id is not None and not GROUP_ID_RE.fullmatch(target.group_id):
            raise InvalidInput(
                f"{where}.group_id {target.group_id!r} must be 1-128 printable ASCII characters",
                field=f"{where}.group_id",
            )
    else:
        _check_http(target, where)
    if isinstance(target, BusTarget | HttpTarget | QueueTarget):
        _check_retry(target.retry, f"{where}.retry")
    if isinstance(target, FunctionTarget | HttpTarget | QueueTarget):
        _check_input(target, where)


def _check_name(value: str, pattern: re.Pattern[str], field: str, what: str) -> None:
    if not pattern.fullmatch(value):
        raise InvalidInput(f"{field} {value!r} is not {what}", field=field)


def _check_retry(retry: RetryPolicy, where: str) -> None:
    for name, (low, high) in RETRY_RANGES.items():
        value = getattr(retry, name)
        if not low <= value <= high:
            raise InvalidInput(
                f"{where}.{name}={value} is out of range (allowed {low}-{high})",
                field=f"{where}.{name}",
            )


def _check_http(target: HttpTarget, where: str) -> None:
    import httpx  # the client's own URL parser: what it accepts here it can send later

    field = f"{where}.url"
    if not URL_RE.fullmatch(target.url):
        raise InvalidInput(
            f"{field} {target.url!r} must be an absolute http:// or https:// URL without"
            " spaces or control characters",
            field=field,
        )
    try:
        url = httpx.URL(target.url)
    except httpx.InvalidURL as exc:
        raise InvalidInput(f"{field} {target.url!r} is not a URL: {exc}", field=field) from None
    if not url.host:
        raise InvalidInput(f"{field} {target.url!r} names no host", field=field)
    if url.port is not None and not 1 <= url.port <= 65535:
        raise InvalidInput(f"{field} {target.url!r}: port {url.port} is out of range", field=field)
    for name, value in target.headers.items():
        field = f"{where}.headers.{name}"
        if not HEADER_NAME_RE.fullmatch(name):
            raise InvalidInput(f"header name {name!r} is not an HTTP token", field=field)
        if name.lower() in RESERVED_HEADERS:
            raise InvalidInput(f"header {name!r} is set by the platform", field=field)
        if not HEADER_VALUE_RE.fullmatch(value):
            raise InvalidInput(f"header {name!r} holds a control character", field=field)
    low, high = TIMEOUT_RANGE
    if not low <= target.timeout_s <= high:
        raise InvalidInput(
            f"{where}.timeout_s={target.timeout_s} is out of range (allowed {low:g}-{high:g})",
            field=f"{where}.timeout_s",
        )


def _check_input(target: FunctionTarget | HttpTarget | QueueTarget, where: str) -> None:
    given = [
        name
        for name, unset in (
            ("input", target.input is msgspec.UNSET),
            ("input_path", target.input_path is None),
            ("input_transformer", target.input_transformer is None),
        )
        if not unset
    ]
    if len(given) > 1:
        raise InvalidInput(
            f"{where}: give at most one of input, input_path and input_transformer"
            f" (got {' and '.join(given)})",
            field=f"{where}.{given[1]}",
        )
    if target.input_path is not None:
        parse_path(target.input_path, field=f"{where}.input_path")
    if target.input_transformer is not None:
        _check_transformer(target.input_transformer, f"{where}.input_transformer")


def _check_transformer(transformer: InputTransformer, where: str) -> None:
    variables = transformer.input_paths_map
    if len(variables) > MAX_VARIABLES:
        raise InvalidInput(
            f"{where}.input_paths_map has {len(variables)} variables (at most {MAX_VARIABLES})",
            field=f"{where}.input_paths_map",
        )
    for name, path in variables.items():
        field = f"{where}.input_paths_map.{name}"
        if not VARIABLE_RE.fullmatch(name) or name.lower().startswith("squall."):
            raise InvalidInput(
                f"variable name {name!r} is invalid: 1-64 letters, digits, '.', '_' or '-',"
                " not starting with 'squall.' (reserved)",
                field=field,
            )
        parse_path(path, field=field)
    template = transformer.input_template
    if not 1 <= len(template) <= MAX_TEMPLATE:
        raise InvalidInput(
            f"{where}.input_template must be 1-{MAX_TEMPLATE} characters",
            field=f"{where}.input_template",
        )
    check_template(template, frozenset(variables), field=f"{where}.input_template")
