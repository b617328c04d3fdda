"""``ctx.events_store`` calls from sandboxes, checked against the caller's permissions:
``events_store:<stream>`` for one stream, ``events_store:<prefix>*`` for the streams whose
names start with the prefix (``events_store:order-*``), ``events_store:*`` for all (needed
to read all streams); ``events_store.read:...`` the same for reads only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from squall.engine.effects import Effects
from squall.errors import AccessDenied, InvalidInput
from squall.model.config import FunctionConfig

if TYPE_CHECKING:
    from squall.engine.platform import Platform

READS = ("es.read", "es.read_all", "es.describe", "es.snapshot")
WRITES = ("es.append", "es.put_snapshot")


def grants(caller: FunctionConfig, action: str, stream: str) -> bool:
    for permission in caller.permissions:
        granted, _, resource = permission.partition(":")
        if granted != action:
            continue
        if resource == stream or (resource.endswith("*") and stream.startswith(resource[:-1])):
            return True
    return False


def require_stream(
    caller: FunctionConfig | None, function: str, stream: str, *, write: bool
) -> None:
    if caller is not None and (
        grants(caller, "events_store", stream)
        or (not write and grants(caller, "events_store.read", stream))
    ):
        return
    action = "events_store" if write else "events_store.read"
    verb = "append to" if write else "read"
    raise AccessDenied(
        f"function {function!r} may not {verb} event stream {stream!r}: add"
        f' permissions=["{action}:{stream}"] (or a prefix such as "{action}:'
        f'{stream.split("-", 1)[0]}-*") to its declaration',
        function=function,
        action=action,
        resource=stream,
    )


async def answer(
    platform: Platform,
    caller: FunctionConfig | None,
    function: str,
    op: str,
    args: dict[str, Any],
    effects: Effects | None,
) -> Any:
    es = platform.events_store
    if op == "es.read_all":
        require_stream(caller, function, "*", write=False)
        return await es.read_all(args.get("after", 0), args.get("limit", 100),
                                 args.get("prefixes") or ())
    if op not in READS and op not in WRITES:
        raise InvalidInput(f"unknown platform call {op!r}", field="op")
    stream = args.get("stream")
    require_stream(caller, function, str(stream), write=op in WRITES)
    if op == "es.append":
        return await es.append(stream, args.get("events"), args.get("expected"), effects)
    if op == "es.put_snapshot":
        await es.put_snapshot(stream, args.get("version"), args.get("state"), effects)
        return None
    if op == "es.read":
        return await es.read(
            stream, start=args.get("start"), limit=args.get("limit", 100),
            backward=bool(args.get("backward")), effects=effects,
        )
    if op == "es.describe":
        return await es.describe(stream)
    return await es.snapshot(stream)
