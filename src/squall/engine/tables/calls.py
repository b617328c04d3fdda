"""``ctx.tables[...]`` calls from sandboxes: checked against the caller's permissions
(``table:<name>`` reads and writes, ``table.read:<name>`` only reads), then answered by
the platform's :class:`~squall.engine.tables.service.Tables`, holding writes in the running
invocation's effects when there is one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from squall.engine.effects import Effects
from squall.errors import InvalidInput
from squall.model.config import FunctionConfig
from squall.model.event_store import GENERATION_MARK

if TYPE_CHECKING:
    from squall.engine.platform import Platform

READS = ("table.get", "table.query", "table.scan")
WRITES = ("table.put", "table.update", "table.delete", "table.transact")


def require_table(
    caller: FunctionConfig | None, function: str, table: str, *, write: bool
) -> None:
    from squall.engine.calls import require

    table = table.partition(GENERATION_MARK)[0]  # a read model's generations are the table
    if write:
        require(caller, function, "table", table)
    elif caller is None or not caller.allows("table", table):
        require(caller, function, "table.read", table)


async def answer(
    platform: Platform,
    caller: FunctionConfig | None,
    function: str,
    op: str,
    args: dict[str, Any],
    effects: Effects | None,
) -> Any:
    tables = platform.tables
    if op == "table.transact":
        ops = args.get("ops")
        if isinstance(ops, list):
            for entry in ops:
                name = entry.get("table") if isinstance(entry, dict) else None
                write = not isinstance(entry, dict) or entry.get("op") != "check"
                require_table(caller, function, str(name), write=write)
        return await tables.transact(ops, effects)
    if op not in READS and op not in WRITES:
        raise InvalidInput(f"unknown platform call {op!r}", field="op")
    name = str(args.get("table"))
    require_table(caller, function, name, write=op in WRITES)
    if op == "table.get":
        return await tables.get_item(name, args.get("key"), effects)
    if op == "table.query":
        return await tables.query(
            name,
            args.get("partition"),
            sort=args.get("sort"),
            index=args.get("index"),
            limit=args.get("limit", 100),
            cursor=args.get("cursor"),
            descending=args.get("descending", False),
            effects=effects,
        )
    if op == "table.scan":
        return await tables.scan(
            name, limit=args.get("limit", 100), cursor=args.get("cursor"), effects=effects
        )
    conditions = {"if_version": args.get("if_version"), "condition": args.get("condition")}
    if op == "table.put":
        return await tables.put(
            name, args.get("item"), if_not_exists=args.get("if_not_exists", False),
            effects=effects, **conditions,
        )
    if op == "table.update":
        return await tables.update(
            name, args.get("key"), set=args.get("set"), remove=args.get("remove"),
            add=args.get("add"), effects=effects, **conditions,
        )
    return await tables.delete_item(name, args.get("key"), effects=effects, **conditions)
