"""The app's streams: put records, read them back, describe shards and consumer lag, trim.

The appends of one put are one unit of work. Where the store keeps what the engine numbers
(the embedded store, one process), sequence numbers are given out here, from each shard's
head kept in memory (loaded from the store at start). Units are committed in the order they
are submitted, so a shard's records become visible in sequence order; a unit that fails
leaves a gap in the numbering, never a reordering. A put made inside an invocation is
numbered when the invocation's effects are submitted, not when it is made, for the same
reason. Where the store assigns sequences (``assigns_sequences``: the cluster's, whose
nodes put to one stream at once), the engine keeps no heads: each record gets an id instead,
and ``put`` returns the sequences the store gave.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from squall.engine.effects import Effects
from squall.errors import AccessDenied, ConfigError, Conflict, InvalidInput, NotFound
from squall.model.config import FunctionConfig
from squall.model.ids import new_id
from squall.model.streams import (
    DEFAULT_RETENTION_S,
    MAX_PUT_RECORDS,
    PutResult,
    StreamConfig,
    StreamRecord,
    StreamTrigger,
    check_partition_key,
    check_record_size,
    shard_for,
)
from squall.storage.logs import AppendRecord, DeleteStream, PutStream, TrimLog
from squall.storage.protocols import Op, Store

log = logging.getLogger("squall.streams")

SWEEP_EVERY_S = 60.0
Listener = Callable[[str, set[int]], None]


class Streams:
    def __init__(
        self, store: Store, configs: Sequence[StreamConfig], triggers: Sequence[StreamTrigger]
    ) -> None:
        self._store = store
        self._configs = {config.name: config for config in configs}
        self._app = set(self._configs)  # declared by the app: read-only through the API
        self._triggers = list(triggers)
        self._heads: dict[tuple[str, int], int] = {}
        self._listeners: list[Listener] = []
        self._lock = asyncio.Lock()
        self._numbered = not store.assigns_sequences  # the engine numbers the records
        self._max_record = store.max_record_bytes

    async def load(self) -> None:
        for made in await self._store.list_streams():
            if made.name in self._app:
                log.warning("stream %r made through the API is now declared by the app; the"
                            " app's declaration applies", made.name)
                continue
            self._configs[made.name] = made
        await self._store.ensure_logs(list(self._configs.values()))
        if not self._numbered:
            return
        for name in self._configs:
            for shard, seq in (await self._store.heads(name)).items():
                self._heads[(name, shard)] = seq

    async def refresh(self) -> None:
        """Take up the streams other nodes of a cluster made or deleted through the API."""
        async with self._lock:
            made = {c.name: c for c in await self._store.list_streams() if c.name not in self._app}
            new = [config for name, config in made.items() if name not in self._configs]
            if new:
                await self._store.ensure_logs(new)
            for name in [n for n in self._configs if n not in self._app and n not in made]:
                del self._configs[name]
                for key in [k for k in self._heads if k[0] == name]:
                    del self._heads[key]
            for config in new:
                self._configs[config.name] = config
                if self._numbered:  # numbered here: start from the shards' heads
                    for shard, seq in (await self._store.heads(config.name)).items():
                        self._heads[(config.name, shard)] = seq

    @property
    def max_record_bytes(self) -> int:
        """MAX_RECORD_BYTES, or less where the store's broker takes smaller messages."""
        return self._max_record

    def listen(self, listener: Listener) -> None:
        """``listener(stream, shards)`` is called once records are committed to them."""
        self._listeners.append(listener)

    def all(self) -> list[StreamConfig]:
        return sorted(self._configs.values(), key=lambda c: c.name)

    def get(self, name: str) -> StreamConfig:
        config = self._configs.get(name)
        if config is None:
            known = ", ".join(sorted(self._configs)) or "none"
            raise NotFound(
                f"stream {name!r} does not exist (streams: {known})", field="stream", stream=name
            )
        return config

    def declared_by_app(self, name: str) -> bool:
        return name in self._app

    async def create(
        self, name: Any, *, shards: Any = 1, retention_s: Any = DEFAULT_RETENTION_S
    ) -> StreamConfig:
        """A stream made through the admin API; its bad input is a 400 naming the field."""
        config = StreamConfig(name=name, shards=shards, retention_s=retention_s)
        try:
            config.validate()
        except ConfigError as exc:
            raise InvalidInput(exc.message, field=exc.field) from None
        async with self._lock:
            if name in self._configs:
                raise Conflict(f"stream {name!r} already exists", field="name")
            await self._store.ensure_logs([config])  # before any put can reach it
            await self._store.commit([PutStream(config)])
            self._configs[name] = config
        return config

    async def delete(self, name: str) -> None:
        """Delete a stream made through the API, with its records and checkpoints."""
        async with self._lock:
            config = self.get(name)
            if name in self._app:
                raise Conflict(
                    f"stream {name!r} is declared by the app: remove it from the app's code",
                    field="name",
                )
            # Unknown from now on, so no put is accepted after the delete is submitted.
            del self._configs[name]
            try:
                await self._store.commit([DeleteStream(name)])
            except BaseException:
                self._configs[name] = config
                raise
            for shard in range(config.shards):
                self._heads.pop((name, shard), None)

    async def heads(self, stream: str) -> dict[int, int]:
        """shard -> the last sequence given out on it (absent: none yet)."""
        if self._numbered:
            return {s: seq for (name, s), seq in self._heads.items() if name == stream}
        return await self._store.heads(stream)

    async def head(self, stream: str, shard: int) -> int:
        """The last sequence given out on the shard (0: none yet)."""
        if self._numbered:
            return self._heads.get((stream, shard), 0)
        return (await self._store.heads(stream)).get(shard, 0)

    def check_shard(self, stream: str, shard: int) -> StreamConfig:
        config = self.get(stream)
        if not 0 <= shard < config.shards:
            raise NotFound(
                f"stream {stream!r} has no shard {shard} (shards 0-{config.shards - 1})",
                field="shard",
            )
        return config

    async def put(
        self,
        stream: str,
        records: Sequence[tuple[bytes, Any]],
        *,
        batch: bool | None = None,
        effects: Effects | None = None,
    ) -> list[PutResult]:
        """Append ``(data JSON, partition key)`` pairs, all or none; errors name the field,
        as ``records[i].field`` in a ``batch`` (by default: more than one record).

        Held in ``effects`` (a put from inside an invocation), the records are numbered when
        the invocation's effects are submitted, so a shard still fills in commit order."""
        config = self.get(stream)
        if not 1 <= len(records) <= MAX_PUT_RECORDS:
            raise InvalidInput(
                f"a put takes 1-{MAX_PUT_RECORDS} records, got {len(records)}", field="records"
            )
        batch = len(records) > 1 if batch is None else batch
        for index, (data, key) in enumerate(records):
            where = f"records[{index}]." if batch else ""
            check_partition_key(key, f"{where}partition_key")
            check_record_size(data, key, f"{where}data", self._max_record)
        keyed = [(data, key, shard_for(key, config.shards)) for data, key in records]
        shards = {shard for _, _, shard in keyed}

        def appends() -> list[AppendRecord]:
            now = time.time()
            if not self._numbered:
                return [AppendRecord(stream, shard, 0, key, data, now, new_id())
                        for data, key, shard in keyed]
            ops: list[AppendRecord] = []
            for data, key, shard in keyed:
                seq = self._heads.get((stream, shard), 0) + 1
                self._heads[(stream, shard)] = seq
                ops.append(AppendRecord(stream, shard, seq, key, data, now))
            return ops

        def landed() -> None:
            for listener in self._listeners:
                listener(stream, shards)

        if effects is not None:
            effects.add(build=appends, after=landed)
            return [PutResult(shard, None) for _, _, shard in keyed]
        ops = appends()
        sequences = await self._store.append_records(ops)
        landed()
        return [PutResult(op.shard, seq) for op, seq in zip(ops, sequences, strict=True)]

    async def put_from(
        self,
        caller: FunctionConfig | None,
        function: str,
        args: dict[str, Any],
        effects: Effects | None = None,
    ) -> list[PutResult]:
        """``ctx.put_record(s)``: allowed by ``put:<stream>`` in the caller's permissions."""
        stream = str(args.get("stream"))
        if caller is None or not caller.allows("put", stream):
            raise AccessDenied(
                f"function {function!r} may not put records to stream {stream!r}: add"
                f' permissions=["put:{stream}"] to its declaration',
                function=function,
                action="put",
                resource=stream,
            )
        records = args.get("records")
        if not isinstance(records, list):
            raise InvalidInput("records must be a list", field="records")
        return await self.put(
            stream,
            [(bytes(r.get("data") or b"null"), r.get("partition_key")) for r in records],
            batch=bool(args.get("batch")),
            effects=effects,
        )

    async def read(self, stream: str, shard: int, after: int, limit: int) -> list[StreamRecord]:
        self.check_shard(stream, shard)
        return await self._store.read_records(stream, shard, after, limit)

    async def describe(self, stream: str) -> dict[str, Any]:
        """The stream, its shards' bounds, and each consumer's lag per shard."""
        config = self.get(stream)
        await self._store.commit(())  # a barrier: checkpoints waiting for a commit land
        bounds = await self._store.shard_bounds(stream, config.shards)
        heads = await self.heads(stream)
        checkpoints = await self._store.checkpoints(stream)
        now = time.time()
        consumers = []
        for trigger in self._triggers:
            if trigger.stream != stream:
                continue
            for shard in range(config.shards):
                checkpoint = checkpoints.get((trigger.function, shard))
                if checkpoint is None:  # not started yet
                    continue
                position = await self._store.consumer_position(stream, shard, checkpoint)
                oldest = position.oldest_arrival
                consumers.append(
                    {
                        "function": trigger.function,
                        "shard": shard,
                        "checkpoint": checkpoint,
                        "behind": position.behind,
                        "oldest_unprocessed_age_s": None if oldest is None else now - oldest,
                    }
                )
        return {
            "name": config.name,
            "shards": config.shards,
            "retention_s": config.retention_s,
            "declared_by": "app" if stream in self._app else "api",
            "shard_details": [
                {
                    "shard": b.shard,
                    "records": b.records,
                    "first_sequence": b.first_sequence,
                    "last_sequence": b.last_sequence,
                    "head": heads.get(b.shard, 0),
                }
                for b in bounds
            ],
            "consumers": consumers,
        }

    async def trim(self, now: float | None = None) -> None:
        """Delete records past their stream's retention."""
        at = time.time() if now is None else now
        ops: list[Op] = [TrimLog(c.name, at - c.retention_s) for c in self._configs.values()]
        if ops:
            await self._store.commit(ops)

    async def trim_forever(self) -> None:
        while True:
            try:
                await self.trim()
            except Exception:
                log.exception("stream retention trim failed; trying again in a minute")
            await asyncio.sleep(SWEEP_EVERY_S)
