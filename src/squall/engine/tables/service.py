"""The app's tables: items read and written by functions, the admin API and the CLI.

A call with ``effects`` (from a running invocation) holds its writes there and keeps them in
an overlay (``effects.state("tables")``) that the invocation's later reads consult first,
queries and scans included; without, it commits at once. Every write of an invocation
expects the version its item had when the invocation saw it, so the store refuses the
whole unit with ``WriteConflict`` if someone else wrote the item in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

import msgspec

from squall.engine.effects import Effects, commit_or_hold
from squall.engine.tables import pages
from squall.engine.tables.pages import Overlay
from squall.engine.tables.writes import (
    Key,
    Planned,
    Seen,
    check_conditions,
    check_options,
    key_dict,
    parse_key,
    plan_check,
    plan_delete,
    plan_put,
    updated_item,
    with_version,
)
from squall.errors import ConfigError, Conflict, InvalidInput, NotFound, WriteConflict
from squall.model.event_store import GENERATION_MARK, physical_table
from squall.model.tables import (
    CHANGE_RETENTION_S,
    MAX_TRANSACT,
    KeyValue,
    TableConfig,
    change_stream,
    check_key_value,
    key_of,
)
from squall.storage.logs import TrimLog
from squall.storage.protocols import Op, Store
from squall.storage.tables import DropTable, ExpireItems, PutTable

log = logging.getLogger("squall.tables")

SWEEP_EVERY_S = 1.0  # TTL expiry
TRIM_EVERY = 60  # sweeps between trims of the change streams
MAX_ATTEMPTS = 20  # plans of a write outside an invocation, when others keep winning
_decode_item = pages.decode_item


class Tables:
    def __init__(
        self, store: Store, configs: Sequence[TableConfig], wake: Callable[[str], None]
    ) -> None:
        self._store = store
        self._configs = {config.name: config for config in configs}
        self._app = set(self._configs)
        self._wake = wake
        self._lock = asyncio.Lock()
        self._physical: dict[str, TableConfig] = {}  # read model -> its live generation
        self._generations: dict[str, TableConfig] = {}  # "name@N" -> its config

    async def load(self) -> None:
        for made in await self._store.list_tables():
            if made.name in self._app:
                log.warning("table %r made through the API is now declared by the app; the"
                            " app's declaration applies", made.name)
                continue
            self._configs[made.name] = made

    async def refresh(self) -> None:
        """Take up the tables other nodes of a cluster made or dropped through the API."""
        async with self._lock:
            made = {t.name: t for t in await self._store.list_tables() if t.name not in self._app}
            for name in [n for n in self._configs if n not in self._app and n not in made]:
                del self._configs[name]
            for name, config in made.items():
                self._configs.setdefault(name, config)

    # --- tables ----------------------------------------------------------------------------

    def all(self) -> list[TableConfig]:
        return sorted(self._configs.values(), key=lambda c: c.name)

    def get(self, name: str) -> TableConfig:
        """The table ``name``; a projection's read model resolves to its live generation,
        and ``name@N`` to generation N while a projection writes it (a rebuild)."""
        physical = self._physical.get(name)
        if physical is not None:
            return physical
        config = self._configs.get(name) or self._generations.get(name)
        if config is None:
            known = ", ".join(sorted(self._configs)) or "none"
            raise NotFound(
                f"table {name!r} does not exist (tables: {known})", field="table", table=name
            )
        return config

    def set_generation(self, read_model: str, generation: int, *, live: bool = True) -> None:
        """Open ``generation``'s table of ``read_model`` to its projection, and with
        ``live`` point every read and write of the read model's name at it."""
        config = self._configs[read_model]
        name = physical_table(read_model, generation)
        if generation > 1:
            self._generations[name] = msgspec.structs.replace(config, name=name)
        if not live:
            return
        self._physical.pop(read_model, None)
        if generation > 1:
            self._physical[read_model] = self._generations[name]
        for other in [n for n in self._generations if n.partition(GENERATION_MARK)[0]
                      == read_model and n != name]:
            del self._generations[other]  # a retired generation: its table is dropped

    def declared_by_app(self, name: str) -> bool:
        return name in self._app

    async def create(self, config: TableConfig) -> TableConfig:
        try:
            config.validate()
        except ConfigError as exc:
            raise InvalidInput(exc.message, field=exc.field) from None
        async with self._lock:
            if config.name in self._configs:
                raise Conflict(f"table {config.name!r} already exists", field="name")
            await self._store.commit([PutTable(config)])
            self._configs[config.name] = config
        return config

    async def delete(self, name: str) -> None:
        async with self._lock:
            config = self.get(name)
            if name in self._app:
                raise Conflict(
                    f"table {name!r} is declared by the app: remove it from the app's code",
                    field="name",
                )
            del self._configs[name]
            try:
                await self._store.commit([DropTable(name)])
            except BaseException:
                self._configs[name] = config
                raise

    async def describe(self, name: str) -> dict[str, Any]:
        config = self.get(name)
        await self._store.commit(())
        shown = self._configs.get(name, config)  # a read model under its own name
        return {
            **msgspec.to_builtins(shown),
            "indexes": [msgspec.to_builtins(i) for i in shown.indexes],
            "items": await self._store.count_items(config.name, time.time()),
            "declared_by": "app" if name in self._app else "api",
        }

    # --- reads -----------------------------------------------------------------------------

    async def _seen(
        self, config: TableConfig, pk: KeyValue, sk: KeyValue | None, overlay: Overlay | None,
        now: float,
    ) -> Seen:
        if overlay is not None:
            pending = overlay.get((config.name, pk, sk))
            if pending is not None:
                return pages.visible(config, pending, now)
        stored = await self._store.get_item(config.name, pk, sk, now)
        if stored is None:
            return Seen(None, 0)
        return Seen(_decode_item(stored.item), stored.version)

    async def get_item(
        self, name: str, key: Any, effects: Effects | None = None
    ) -> dict[str, Any] | None:
        config = self.get(name)
        pk, sk = parse_key(config, key)
        seen = await self._seen(config, pk, sk, _overlay(effects), time.time())
        if effects is not None:  # a later write of it must find it as it was read
            read: dict[tuple[str, Any, Any], int] = effects.state("tables.read", dict)
            read.setdefault((config.name, pk, sk), seen.version)
        return None if seen.item is None else with_version(seen.item, seen.version)

    async def query(
        self,
        name: str,
        partition: Any,
        *,
        sort: Any = None,
        index: str | None = None,
        limit: Any = 100,
        cursor: str | None = None,
        descending: bool = False,
        effects: Effects | None = None,
    ) -> dict[str, Any]:
        """One partition's items in sort order: ``{"items", "cursor"}`` (cursor None: the
        last page). ``sort`` is ``[op, value]`` or ``["between", low, high]``."""
        config = self.get(name)
        name = config.name  # a read model's live generation
        if index is not None and not isinstance(index, str):
            raise InvalidInput("index must be an index name", field="index")
        chosen = config.index(index) if index is not None else None
        pk_name = chosen.partition_key if chosen else config.partition_key
        sk_name = chosen.sort_key if chosen else config.sort_key
        pk = check_key_value(config, pk_name, partition, "partition")
        sort_test = pages.sort_test(config, sk_name, sort)
        size = pages.limit(limit)
        if not isinstance(descending, bool):
            raise InvalidInput("descending must be true or false", field="descending")
        after = pages.cursor(cursor, 1 if chosen is None else 3)
        overlay = _overlay(effects)
        now = time.time()
        pending = [] if overlay is None else [k for k in overlay if k[0] == name]
        stored = await self._store.query_items(
            name, pk, index=index, sort=sort_test, after=after,
            limit=size + 1 + len(pending), descending=descending, now=now,
        )

        def position(item: dict[str, Any], pk: Any, sk: Any) -> tuple[Any, ...]:
            if chosen is None:
                return (sk,)
            isk = item.get(chosen.sort_key) if chosen.sort_key is not None else None
            return (pages.plain(isk), pk, sk)

        def wanted(item: dict[str, Any]) -> bool:
            if item.get(pk_name) != pk or (sk_name is not None and item.get(sk_name) is None):
                return False
            if sort_test is None or sk_name is None:
                return True
            return pages.sort_holds(sort_test, item.get(sk_name))

        return pages.merge(
            config, stored, overlay, wanted, position, after, size, descending, now
        )

    async def scan(
        self, name: str, *, limit: Any = 100, cursor: str | None = None,
        effects: Effects | None = None,
    ) -> dict[str, Any]:
        config = self.get(name)
        name = config.name
        size = pages.limit(limit)
        after = pages.cursor(cursor, 2)
        overlay = _overlay(effects)
        now = time.time()
        pending = [] if overlay is None else [k for k in overlay if k[0] == name]
        stored = await self._store.scan_items(
            name, after=after, limit=size + 1 + len(pending), now=now
        )
        return pages.merge(
            config, stored, overlay, lambda item: True, lambda item, pk, sk: (pk, sk),
            after, size, False, now,
        )

    # --- writes ----------------------------------------------------------------------------

    async def put(
        self,
        name: str,
        item: Any,
        *,
        if_not_exists: Any = False,
        if_version: Any = None,
        condition: Any = None,
        effects: Effects | None = None,
    ) -> dict[str, Any]:
        args = {"item": item, "if_not_exists": if_not_exists, "if_version": if_version,
                "condition": condition}
        [planned] = await self._write(
            lambda: self._plan_all([("put", name, args)], effects, False), effects
        )
        assert planned.result is not None
        return with_version(planned.result, planned.after.version)

    async def update(
        self,
        name: str,
        key: Any,
        *,
        set: Any = None,
        remove: Any = None,
        add: Any = None,
        if_version: Any = None,
        condition: Any = None,
        effects: Effects | None = None,
    ) -> dict[str, Any]:
        args = {"key": key, "set": set, "remove": remove, "add": add,
                "if_version": if_version, "condition": condition}
        [planned] = await self._write(
            lambda: self._plan_all([("update", name, args)], effects, False), effects
        )
        assert planned.result is not None
        return with_version(planned.result, planned.after.version)

    async def delete_item(
        self,
        name: str,
        key: Any,
        *,
        if_version: Any = None,
        condition: Any = None,
        effects: Effects | None = None,
    ) -> dict[str, Any] | None:
        """Delete an item; returns what it was (None: it was absent)."""
        args = {"key": key, "if_version": if_version, "condition": condition}
        [planned] = await self._write(
            lambda: self._plan_all([("delete", name, args)], effects, False), effects
        )
        return planned.result

    async def transact(self, ops: Any, effects: Effects | None = None) -> list[Any]:
        """Up to 100 puts, updates, deletes and checks on distinct items, all or none:
        ``[{"op": "put", "table": ..., "item": ..., "condition": ...}, ...]``."""
        if not isinstance(ops, list) or not 1 <= len(ops) <= MAX_TRANSACT:
            raise InvalidInput(f"a transaction takes 1-{MAX_TRANSACT} ops", field="ops")
        steps: list[tuple[str, str, dict[str, Any]]] = []
        for position, entry in enumerate(ops):
            where = f"ops[{position}]."
            if not isinstance(entry, dict):
                raise InvalidInput(f"ops[{position}] must be an object", field=f"ops[{position}]")
            action = entry.get("op")
            if action not in ("put", "update", "delete", "check"):
                raise InvalidInput(
                    f"{where}op must be put, update, delete or check", field=f"{where}op"
                )
            table = entry.get("table")
            if not isinstance(table, str):
                raise InvalidInput(f"{where}table must be a table name", field=f"{where}table")
            args = {k: v for k, v in entry.items() if k not in ("op", "table")}
            steps.append((action, table, args))
        planned = await self._write(lambda: self._plan_all(steps, effects, True), effects)
        return [
            None if p.result is None or p.op.action == "delete"
            else with_version(p.result, p.after.version)
            for p in planned
        ]

    async def _plan_all(
        self, steps: list[tuple[str, str, dict[str, Any]]], effects: Effects | None,
        numbered: bool,
    ) -> list[Planned]:
        planned: list[Planned] = []
        keys: set[Key] = set()
        for position, (action, table, args) in enumerate(steps):
            where = f"ops[{position}]." if numbered else ""
            plan = await self._plan(action, table, args, effects, where)
            if plan.key in keys:
                raise InvalidInput(
                    f"{where}: item {plan.op.keys.decode()} of table {table!r} is in the"
                    " transaction twice",
                    field=f"{where}key",
                )
            keys.add(plan.key)
            planned.append(plan)
        return planned

    async def _write(
        self, plan: Callable[[], Awaitable[list[Planned]]], effects: Effects | None
    ) -> list[Planned]:
        """Plan and apply; outside an invocation, plan again from what won a conflict (so an
        update never loses a concurrent one, and conditions are checked on what is there)."""
        attempt = 0
        while True:
            planned = await plan()
            try:
                await self._apply(planned, effects)
            except WriteConflict:
                attempt += 1
                if effects is not None or attempt >= MAX_ATTEMPTS:
                    raise
                continue
            return planned

    _ALLOWED: ClassVar[dict[str, set[str]]] = {
        "put": {"item", "if_not_exists", "if_version", "condition"},
        "update": {"key", "set", "remove", "add", "if_version", "condition"},
        "delete": {"key", "if_version", "condition"},
        "check": {"key", "if_version", "condition", "if_not_exists"},
    }

    async def _plan(
        self, action: str, name: str, args: dict[str, Any], effects: Effects | None, field: str
    ) -> Planned:
        config = self.get(name)
        unknown = sorted(set(args) - self._ALLOWED[action])
        if unknown:
            raise InvalidInput(
                f"unknown field {field}{unknown[0]!r} (allowed: "
                f"{', '.join(sorted(self._ALLOWED[action]))})",
                field=f"{field}{unknown[0]}",
            )
        if_not_exists = args.get("if_not_exists") or False
        if not isinstance(if_not_exists, bool):
            raise InvalidInput(f"{field}if_not_exists must be true or false",
                               field=f"{field}if_not_exists")
        if_version = args.get("if_version")
        condition = check_options(if_version, args.get("condition"), field)
        conditional = if_not_exists or if_version is not None or condition is not None
        if action == "put":
            pk, sk = key_of(config, args.get("item"), f"{field}item")
        else:
            pk, sk = parse_key(config, args.get("key"), f"{field}key")
        now = time.time()
        seen = await self._seen(config, pk, sk, _overlay(effects), now)
        key = key_dict(config, pk, sk)
        check_conditions(
            config, key, seen, if_not_exists=if_not_exists, if_version=if_version,
            condition=condition, field=field,
        )
        # A blind put or delete (no condition, its item not read by this invocation) is
        # last-writer-wins, as in DynamoDB; one whose item the invocation read, or wrote
        # before, expects it unchanged at commit (no lost update).
        read: dict[tuple[str, Any, Any], int] = (
            effects.state("tables.read", dict) if effects is not None else {}
        )
        overlay = _overlay(effects)
        written = overlay is not None and (config.name, pk, sk) in overlay
        version_read = read.get((config.name, pk, sk))
        if not written and version_read is not None and version_read != seen.version:
            raise WriteConflict(
                f"table {config.name!r}: item {key} changed since this invocation read it"
                f" (version {version_read or 'absent'} then, {seen.version or 'absent'} now)",
                field=f"{field}key",
                table=config.name,
                key=key,
            )
        expect = conditional or action == "check" or written or version_read is not None
        if action == "put":
            return plan_put(config, args.get("item"), seen, expect, f"{field}item")
        if action == "delete":
            return plan_delete(config, pk, sk, seen, expect)
        if action == "check":
            return plan_check(config, pk, sk, seen)
        item = updated_item(
            config, key, seen, args.get("set"), args.get("remove"), args.get("add"), field
        )
        # An update always reads the item it changes: it expects the version it read.
        return plan_put(config, item, seen, True, f"{field}item")

    async def _apply(self, planned: list[Planned], effects: Effects | None) -> None:
        ops: list[Op] = [p.op for p in planned]
        tables = sorted({p.op.table for p in planned if p.op.stream is not None})
        if effects is not None:  # one wake per table after the invocation's commit
            waking: set[str] = effects.state("tables.wake", set)
            tables = [table for table in tables if table not in waking]
            waking.update(tables)

        def wake() -> None:
            for table in tables:
                self._wake(table)

        await commit_or_hold(self._store, effects, ops, after=wake if tables else None)
        overlay = _overlay(effects)
        if overlay is not None:
            for p in planned:
                overlay[p.key] = p.after

    # --- TTL -------------------------------------------------------------------------------

    async def sweep(self, now: float | None = None, *, trim: bool = True) -> None:
        """Delete items whose TTL passed; with ``trim``, also change records past their
        retention."""
        at = time.time() if now is None else now
        ops: list[Op] = []
        for config in self._configs.values():
            if config.ttl_attribute is not None:
                ops.append(ExpireItems(config.name, at, config.stream))
            if trim and config.stream is not None:
                ops.append(TrimLog(change_stream(config.name), at - CHANGE_RETENTION_S))
        if not ops:
            return
        await self._store.commit(ops)
        for config in self._configs.values():
            if config.ttl_attribute is not None and config.stream is not None:
                self._wake(config.name)

    async def sweep_forever(self) -> None:
        turn = 0
        while True:
            try:
                await self.sweep(trim=turn % TRIM_EVERY == 0)
            except Exception:
                log.exception("table TTL sweep failed; trying again")
            turn += 1
            await asyncio.sleep(SWEEP_EVERY_S)


def _overlay(effects: Effects | None) -> Overlay | None:
    if effects is None:
        return None
    overlay: Overlay = effects.state("tables", dict)
    return overlay
