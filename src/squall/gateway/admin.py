"""Admin API routes: functions, invocations, logs and dead letters under ``/api/v1``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.errors import InvalidInput
from squall.gateway.http import (
    json_object,
    json_response,
    query_choice,
    query_float,
    query_int,
    query_optional_int,
    query_str,
    query_trace_id,
)
from squall.model import FunctionConfig, InvocationRecord, InvocationStatus
from squall.model.config import RANGES, UPDATABLE

if TYPE_CHECKING:
    from squall.engine.platform import Platform

STATUSES = tuple(status.value for status in InvocationStatus)
# ``level`` filters to this level and above.
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class AdminAPI:
    """Route handlers bound to one running platform."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def routes(self) -> list[Route]:
        return [
            Route("/functions", self.list_functions, methods=["GET"]),
            Route("/functions/{name}", self.get_function, methods=["GET"]),
            Route("/functions/{name}", self.update_function, methods=["PATCH"]),
            Route("/invocations", self.list_invocations, methods=["GET"]),
            Route("/invocations/{id}", self.get_invocation, methods=["GET"]),
            Route("/invocations/{id}/logs", self.invocation_logs, methods=["GET"]),
            Route("/logs", self.list_logs, methods=["GET"]),
            Route("/dead-letters", self.list_dead_letters, methods=["GET"]),
            Route("/dead-letters/redrive", self.redrive, methods=["POST"]),
            Route("/dead-letters/purge", self.purge, methods=["POST"]),
        ]

    # functions

    def _function_view(self, config: FunctionConfig) -> dict[str, Any]:
        view = msgspec.structs.asdict(config)
        view["stats"] = self.platform.function_stats(config.name)
        return view

    async def list_functions(self, request: Request) -> Response:
        functions = [self._function_view(fn) for fn in self.platform.functions()]
        return json_response({"functions": functions})

    async def get_function(self, request: Request) -> Response:
        config = self.platform.function(request.path_params["name"])
        return json_response(self._function_view(config))

    async def update_function(self, request: Request) -> Response:
        changes = await json_object(request)
        current = self.platform.function(request.path_params["name"])
        typed = _typed_changes(current, changes)
        names = {fn.name for fn in self.platform.functions()}
        for field in ("on_success", "on_failure"):
            target = typed.get(field)
            if target is not None and target not in names:
                raise InvalidInput(
                    f"function {current.name!r}: {field}={target!r} names no function of the app"
                    f" (functions: {', '.join(sorted(names))})",
                    field=field,
                )
        config = await self.platform.update_function(current.name, typed)
        return json_response(self._function_view(config))

    # invocations

    async def list_invocations(self, request: Request) -> Response:
        status = query_choice(request, "status", STATUSES)
        limit = query_int(request, "limit", 50)
        records = await self.platform.list_invocations(
            function=query_str(request, "function"),
            status=status,
            limit=limit,
            before=query_str(request, "before"),
        )
        # A full page may have more behind it; the last id is the cursor for the next one.
        cursor = records[-1].id if len(records) == limit else None
        return json_response({"invocations": [_summary(r) for r in records], "next": cursor})

    async def get_invocation(self, request: Request) -> Response:
        record = await self.platform.get_invocation(request.path_params["id"])
        return json_response(record.public())

    async def invocation_logs(self, request: Request) -> Response:
        record = await self.platform.get_invocation(request.path_params["id"])
        rows = await self.platform.list_logs(
            invocation_id=record.id, limit=query_int(request, "limit", 500, maximum=5000)
        )
        return json_response({"logs": rows, "next": rows[-1].seq if rows else None})

    # logs

    async def list_logs(self, request: Request) -> Response:
        after = query_optional_int(request, "after")
        rows = await self.platform.list_logs(
            function=query_str(request, "function"),
            invocation_id=query_str(request, "invocation_id"),
            request_id=query_str(request, "request_id"),
            trace_id=query_trace_id(request, "trace"),
            since=query_float(request, "since"),
            after=after,
            level=query_choice(request, "level", LOG_LEVELS),
            limit=query_int(request, "limit", 500, maximum=5000),
        )
        # The cursor is the last row scanned, not the last match, so `logs -f --grep` moves on.
        cursor = rows[-1].seq if rows else after
        grep = query_str(request, "grep")
        if grep is not None:
            rows = [row for row in rows if grep in row.message]
        return json_response({"logs": rows, "next": cursor})

    # dead letters

    async def list_dead_letters(self, request: Request) -> Response:
        letters = await self.platform.list_dead_letters(
            function=query_str(request, "function"), limit=query_int(request, "limit", 100)
        )
        return json_response({"dead_letters": [letter.public() for letter in letters]})

    async def redrive(self, request: Request) -> Response:
        function, ids = _selection(await json_object(request))
        redriven = await self.platform.redrive(function=function, ids=ids)
        return json_response({"redriven": redriven})

    async def purge(self, request: Request) -> Response:
        function, ids = _selection(await json_object(request))
        purged = await self.platform.purge_dead_letters(function=function, ids=ids)
        return json_response({"purged": purged})


_AT_FIELD = re.compile(r" - at `\$\.(\w+)[^`]*`$")


def _typed_changes(config: FunctionConfig, changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` with each updatable field checked against (and converted to) its type.

    FunctionConfig.validate checks ranges and formats, not types: without this a string for
    ``secrets`` would be taken as a list of one-letter names and a number for ``permissions``
    would fail with a TypeError (500). Unknown or read-only fields pass through untouched for
    ``FunctionConfig.updated`` to reject by name.
    """
    known = {k: _integral(v) if k in RANGES else v for k, v in changes.items() if k in UPDATABLE}
    try:
        typed = msgspec.convert({**msgspec.structs.asdict(config), **known}, FunctionConfig)
    except msgspec.ValidationError as exc:
        match = _AT_FIELD.search(str(exc))
        field = match.group(1) if match else None
        rule = _AT_FIELD.sub("", str(exc)).replace("`", "")
        raise InvalidInput(
            f"function {config.name!r}: {field or 'body'} has the wrong type: {rule.lower()}",
            field=field or "body",
        ) from None
    return {**changes, **{k: getattr(typed, k) for k in known}}


def _integral(value: object) -> object:
    # JSON does not tell 3 from 3.0 (nor does JSON Schema's "integer"); 3.5 stays a float and
    # is rejected as one.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _summary(record: InvocationRecord) -> dict[str, object]:
    """A list row: the record without its result and captured logs, which can be large."""
    data = record.public(with_result=False)
    data.pop("logs", None)
    return data


def _selection(body: dict[str, Any]) -> tuple[str | None, list[str] | None]:
    unknown = sorted(set(body) - {"function", "ids"})
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0]!r} (allowed: function, ids)", field=unknown[0]
        )
    function = body.get("function")
    if function is not None and not isinstance(function, str):
        raise InvalidInput("'function' must be a string", field="function")
    ids = body.get("ids")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        raise InvalidInput("'ids' must be a list of strings", field="ids")
    return function, ids
