"""Projections: read models built from the global event order, exactly once per event.

Each projection generation has one runner: it reads the events after its checkpoint (of
the streams the projection reads, up to the head it saw first), invokes the projection's
function synchronously with them (trigger ``projection``) and commits the checkpoint's
advance *in the invocation's own unit*, beside the table writes the function made — so a
SIGKILL anywhere leaves either the batch's writes and its checkpoint or neither, and no
event is applied twice. The checkpoint op expects the position the batch was read after,
so two runners of one generation could never both apply a batch. A failed batch is retried
with backoff; the projection waits on it (its order matters).

A rebuild starts a new generation from position 0 writing into a fresh physical table
(``name@N``) while the live one keeps serving; once it has caught up, the live runner is
stopped, the new one catches up the last events, and one unit points the read model at the
new generation and drops the old table. Readers resolve the read model's name to the live
generation (``Tables.set_generation``) and never see a partial table. A rebuild interrupted
by a restart resumes from its checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from squall.engine.retry import backoff_delay
from squall.engine.waiting import wait_woken
from squall.errors import Conflict, NotFound, SquallError, TooManyRequests
from squall.model.event_store import ProjectionConfig, RecordedEvent, physical_table
from squall.model.invocation import InvocationRecord, InvocationStatus
from squall.storage.event_store import PutProjectionCheckpoint, SwapReadModel
from squall.storage.protocols import Op, Store
from squall.storage.tables import DropTable

log = logging.getLogger("squall.projections")

Also = Callable[[InvocationRecord], Sequence[Op]]
Invoke = Callable[[str, bytes, Also], Awaitable[InvocationRecord]]
POLL_S = 1.0
PAYLOAD_MARGIN = 64 * 1024


@dataclass
class ProjectionSettings:
    invoke: Invoke
    # Open a generation's table to the projection (live=True: the read model's name too).
    set_generation: Callable[..., None]
    max_payload: int
    retry_base_s: float = 1.0
    retry_cap_s: float = 300.0


class Runner:
    """One generation of one projection, fed batches in global order."""

    def __init__(
        self, config: ProjectionConfig, generation: int, store: Store,
        settings: ProjectionSettings,
    ) -> None:
        self.config = config
        self.generation = generation
        self.table = physical_table(config.table, generation)
        self._store = store
        self._settings = settings
        self._wakeup = asyncio.Event()
        self._rng = random.Random()
        self.checkpoint = 0
        self.busy = False
        self.stopping = False
        self.last_error: dict[str, Any] | None = None
        self.caught_up = asyncio.Event()  # set whenever a read found nothing left
        self.task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wakeup.set()

    @property
    def woken(self) -> bool:
        return self._wakeup.is_set() and not self.stopping

    def start(self, checkpoint: int) -> None:
        self.checkpoint = checkpoint
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Let the batch in flight finish, then end the loop."""
        self.stopping = True
        self.wake()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)

    async def _run(self) -> None:
        while not self.stopping:
            try:
                self.busy = True
                self._wakeup.clear()
                applied = await self.step()
                self.busy = False
                if not applied:
                    self.caught_up.set()
                    await wait_woken(self._wakeup, POLL_S)
            except asyncio.CancelledError:
                raise
            except Exception:  # a read failed: try again from the checkpoint
                log.exception("projection %s failed", self.config.name)
                await asyncio.sleep(POLL_S)
            finally:
                self.busy = False

    async def step(self) -> bool:
        """Apply the next batch; False when there was nothing to apply."""
        head = await self._store.es_head()
        if head <= self.checkpoint:
            return False
        self.caught_up.clear()
        config = self.config
        read = await self._store.es_read_all(
            after=self.checkpoint, limit=config.batch_size, prefixes=config.from_streams,
            until=head,
        )
        events = self._within_payload(read)
        # Fewer than a batch: every event this projection reads up to ``head`` is here, so
        # the checkpoint may move to ``head`` past the streams it does not read.
        whole = len(read) < config.batch_size and len(events) == len(read)
        end = head if whole else events[-1].position
        if not events:
            await self._commit([self._advance(end)])
            return True
        while not await self._apply(events, end):
            if self.stopping:
                return True
        return True

    def _within_payload(self, events: list[RecordedEvent]) -> list[RecordedEvent]:
        budget = self._settings.max_payload - PAYLOAD_MARGIN
        size = 0
        for index, event in enumerate(events):
            size += len(event.data) + len(event.metadata) + 256
            if size > budget and index > 0:
                return events[:index]
        return events

    def _advance(self, position: int) -> PutProjectionCheckpoint:
        return PutProjectionCheckpoint(
            name=self.config.name, generation=self.generation, position=position,
            expect=self.checkpoint,
        )

    async def _apply(self, events: list[RecordedEvent], end: int) -> bool:
        payload = msgspec.json.encode({
            "projection": self.config.name,
            "table": self.table,
            "generation": self.generation,
            "events": [_event(e) for e in events],
        })
        advance = self._advance(end)

        def checkpoint(record: InvocationRecord) -> list[Op]:
            ok = record.status == InvocationStatus.SUCCEEDED and record.error is None
            return [advance] if ok else []

        failures = 0
        while True:
            try:
                record = await self._settings.invoke(self.config.function, payload, checkpoint)
            except TooManyRequests:
                await asyncio.sleep(self._rng.uniform(0.01, 0.05))
                continue
            except SquallError as exc:
                record = None
                self.last_error = exc.to_dict()
            if record is not None:
                if record.status == InvocationStatus.SUCCEEDED and record.error is None:
                    self.checkpoint = end
                    self.last_error = None
                    return True
                self.last_error = record.error
            failures += 1
            log.warning(
                "projection %s: the batch at positions %d-%d failed (attempt %d): %s",
                self.config.name, events[0].position, events[-1].position, failures,
                (self.last_error or {}).get("message"),
            )
            if self.stopping:
                return False
            await asyncio.sleep(backoff_delay(
                failures, self._settings.retry_base_s, self._settings.retry_cap_s, self._rng
            ))

    async def _commit(self, ops: list[Op]) -> None:
        await self._store.commit(ops)
        for op in ops:
            if isinstance(op, PutProjectionCheckpoint):
                self.checkpoint = op.position


class Projections:
    """Every projection of the app: its live runner and, during a rebuild, the next one."""

    def __init__(
        self, store: Store, configs: Sequence[ProjectionConfig], settings: ProjectionSettings
    ) -> None:
        self._store = store
        self._configs = {config.name: config for config in configs}
        self._settings = settings
        self._live: dict[str, Runner] = {}
        self._rebuilding: dict[str, Runner] = {}
        self._swaps: dict[str, asyncio.Task[None]] = {}

    @property
    def busy(self) -> bool:
        """A batch is in flight or new events woke a runner (for ``wait_idle``)."""
        runners = [*self._live.values(), *self._rebuilding.values()]
        return any(r.busy or r.woken for r in runners) or bool(self._swaps)

    def all(self) -> list[ProjectionConfig]:
        return sorted(self._configs.values(), key=lambda c: c.name)

    def get(self, name: str) -> ProjectionConfig:
        config = self._configs.get(name)
        if config is None:
            known = ", ".join(sorted(self._configs)) or "none"
            raise NotFound(
                f"projection {name!r} does not exist (projections: {known})",
                field="name", projection=name,
            )
        return config

    async def start(self) -> None:
        """Resume every projection from its checkpoint, and a rebuild left unfinished."""
        live = await self._store.es_read_models()
        checkpoints = await self._store.es_checkpoints()
        for config in self._configs.values():
            generation = live.get(config.name, 1)
            self._settings.set_generation(config.table, generation)
            runner = Runner(config, generation, self._store, self._settings)
            runner.start(checkpoints.get((config.name, generation), 0))
            self._live[config.name] = runner
            newer = [g for (n, g) in checkpoints if n == config.name and g > generation]
            if newer:
                self._begin_rebuild(config, max(newer), checkpoints[(config.name, max(newer))])

    async def stop(self) -> None:
        for task in self._swaps.values():
            task.cancel()
        await asyncio.gather(*self._swaps.values(), return_exceptions=True)
        for runner in [*self._live.values(), *self._rebuilding.values()]:
            if runner.task is not None:
                runner.task.cancel()
        await asyncio.gather(
            *(r.task for r in [*self._live.values(), *self._rebuilding.values()] if r.task),
            return_exceptions=True,
        )

    def wake(self) -> None:
        for runner in [*self._live.values(), *self._rebuilding.values()]:
            runner.wake()

    async def rebuild(self, name: str) -> dict[str, Any]:
        """Replay every event into a fresh table; swap it in once it has caught up."""
        config = self.get(name)
        if name in self._rebuilding:
            raise Conflict(
                f"projection {name!r} is already being rebuilt (generation"
                f" {self._rebuilding[name].generation})",
                field="name", projection=name,
            )
        live = self._live[name]
        checkpoints = await self._store.es_checkpoints()
        used = [g for (n, g) in checkpoints if n == name] + [live.generation]
        generation = max(used) + 1
        # The first checkpoint makes the rebuild durable: a restart resumes it.
        await self._store.commit([
            DropTable(physical_table(config.table, generation)),
            PutProjectionCheckpoint(name=name, generation=generation, position=0, expect=0),
        ])
        self._begin_rebuild(config, generation, 0)
        status: dict[str, Any] = await self.status(name)
        return status

    def _begin_rebuild(self, config: ProjectionConfig, generation: int, checkpoint: int) -> None:
        self._settings.set_generation(config.table, generation, live=False)
        runner = Runner(config, generation, self._store, self._settings)
        runner.start(checkpoint)
        self._rebuilding[config.name] = runner
        task = asyncio.create_task(self._swap_when_caught_up(config.name))
        self._swaps[config.name] = task
        task.add_done_callback(lambda _: self._swaps.pop(config.name, None))

    async def _swap_when_caught_up(self, name: str) -> None:
        fresh = self._rebuilding[name]
        old = self._live[name]
        while True:
            await fresh.caught_up.wait()
            # The live generation stops between batches; the fresh one takes the last
            # events in, then one unit makes it the read model and drops the old table.
            await old.stop()
            await fresh.stop()
            while await fresh.step():
                pass
            config = fresh.config
            self._settings.set_generation(config.table, fresh.generation)
            try:
                await self._store.commit([
                    SwapReadModel(name=name, generation=fresh.generation,
                                  retired=old.generation),
                    DropTable(old.table),
                ])
            except Exception:
                log.exception("projection %s: swapping in generation %d failed", name,
                              fresh.generation)
                self._settings.set_generation(config.table, old.generation)
                self._settings.set_generation(config.table, fresh.generation, live=False)
                old = self._restart(old)
                fresh = self._restart(fresh)
                self._rebuilding[name] = fresh
                self._live[name] = old
                await asyncio.sleep(POLL_S)
                continue
            log.info("projection %s: generation %d is live", name, fresh.generation)
            self._live[name] = self._restart(fresh)
            del self._rebuilding[name]
            return

    def _restart(self, runner: Runner) -> Runner:
        again = Runner(runner.config, runner.generation, self._store, self._settings)
        again.start(runner.checkpoint)
        return again

    async def status(self, name: str | None = None) -> Any:
        """Checkpoint, head and lag (head - checkpoint) per projection."""
        await self._store.commit(())
        head = await self._store.es_head()
        configs = [self.get(name)] if name is not None else self.all()
        found = [self._status(config, head) for config in configs]
        return found[0] if name is not None else found

    def _status(self, config: ProjectionConfig, head: int) -> dict[str, Any]:
        live = self._live.get(config.name)
        fresh = self._rebuilding.get(config.name)
        return {
            "name": config.name,
            "function": config.function,
            "table": config.table,
            "from_streams": list(config.from_streams),
            "generation": live.generation if live else 1,
            "checkpoint": live.checkpoint if live else 0,
            "head": head,
            "lag": head - (live.checkpoint if live else 0),
            "last_error": live.last_error if live else None,
            "rebuild": None if fresh is None else {
                "generation": fresh.generation,
                "checkpoint": fresh.checkpoint,
                "lag": head - fresh.checkpoint,
                "last_error": fresh.last_error,
            },
        }


def _event(event: RecordedEvent) -> dict[str, Any]:
    return {
        "stream": event.stream,
        "version": event.version,
        "position": event.position,
        "id": event.id,
        "type": event.type,
        "schema_version": event.schema_version,
        "data": event.data,
        "metadata": event.metadata,
        "recorded_at": event.recorded_at,
    }
