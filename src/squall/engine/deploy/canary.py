"""Canary deploys: shift an alias's traffic to a new version in steps, roll back on alarm.

A canary's state (versions, schedule, rules, outcome) is stored, so a restart resumes the
shift where the clock says it is. Its counters — calls and errors of the canary version, their
durations — are this process's own: every finished invocation passes through ``observe``, and
a rule is judged as soon as the canary version has served MIN_CALLS calls, so a failing version
is rolled back after a handful of its calls, not after a polling period.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from squall.engine.deploy.versions import VersionBook
from squall.model.cloudevent import CloudEvent
from squall.model.deploys import Alias, Canary, CanaryStatus
from squall.model.invocation import InvocationRecord, InvocationStatus
from squall.observe.summary import percentile
from squall.storage.deploys import PutAlias, PutCanary
from squall.storage.protocols import Op, Store

log = logging.getLogger("squall.deploy")

MIN_CALLS = 5  # the canary version's calls before a rule is judged
TICK_S = 1.0
EVENT_SOURCE = "squall/deploys"
ROLLED_BACK = "squall.deploy.rolled_back"
PROMOTED = "squall.deploy.promoted"

Publish = Callable[[Sequence[CloudEvent]], Awaitable[Any]]


@dataclass
class _Counts:
    calls: int = 0
    errors: int = 0
    durations: list[float] = field(default_factory=list)


class Canaries:
    def __init__(self, store: Store, book: VersionBook, publish: Publish) -> None:
        self._store = store
        self._book = book
        self._publish = publish
        self._running: dict[str, Canary] = {}  # function -> its running canary
        self._counts: dict[str, _Counts] = {}
        self._settling: set[str] = set()
        self.ended: dict[tuple[str, str], Canary] = {}

    async def load(self) -> None:
        superseded: list[Op] = []
        for canary in await self._store.list_canaries():
            if canary.status == CanaryStatus.RUNNING and not self._shifting(canary):
                canary = msgspec.structs.replace(
                    canary,
                    status=CanaryStatus.SUPERSEDED,
                    reason="a later deploy moved the alias",
                    ended_at=time.time(),
                )
                superseded.append(PutCanary(canary))
            if canary.status == CanaryStatus.RUNNING:
                self._running[canary.function] = canary
                self._counts[canary.function] = _Counts()
            else:
                self.ended[(canary.function, canary.alias)] = canary
        if superseded:
            await self._store.commit(superseded)

    def _shifting(self, canary: Canary) -> bool:
        """Whether ``canary``'s alias still splits traffic to its version (a deploy made
        since may have pointed the alias at a newer version instead)."""
        alias = next((a for a in self._book.aliases(canary.function) if a.name == canary.alias),
                     None)
        return alias is not None and alias.canary == canary.canary

    def all(self) -> list[Canary]:
        ended = [c for key, c in self.ended.items() if key[0] not in self._running]
        return sorted([*self._running.values(), *ended], key=lambda c: c.function)

    def running(self, function: str) -> Canary | None:
        return self._running.get(function)

    def observe(self, record: InvocationRecord) -> None:
        canary = self._running.get(record.function)
        if canary is None or record.version != str(canary.canary):
            return
        counts = self._counts[record.function]
        counts.calls += 1
        if record.status != InvocationStatus.SUCCEEDED:
            counts.errors += 1
        counts.durations.append(record.duration_ms or 0.0)
        reason = self._alarm(canary, counts)
        if reason is not None and canary.function not in self._settling:
            self._settling.add(canary.function)
            # Stop sending calls to the failing version now, not once the rollback commits.
            self._book.remember(_ended_alias(canary, CanaryStatus.ROLLED_BACK, time.time()))
            task = asyncio.get_running_loop().create_task(self.roll_back(canary.function, reason))
            task.add_done_callback(lambda _: self._settling.discard(canary.function))

    def _alarm(self, canary: Canary, counts: _Counts) -> str | None:
        if counts.calls < MIN_CALLS:
            return None
        for rule in canary.rollback_on:
            if rule.metric == "error_rate":
                value = counts.errors / counts.calls
                if value > rule.threshold:
                    return (
                        f"{rule.describe()} fired: version {canary.canary} failed"
                        f" {counts.errors} of {counts.calls} calls ({value:.1%})"
                    )
            elif rule.metric == "p99_ms":
                p99 = percentile(sorted(counts.durations), 99) or 0.0
                if p99 > rule.threshold:
                    return f"{rule.describe()} fired: version {canary.canary} p99 {p99:.1f} ms"
        return None

    async def run(self) -> None:
        while True:
            await self.step()
            await asyncio.sleep(TICK_S)

    async def step(self, now: float | None = None) -> None:
        """Move every running canary's alias to the weight its schedule gives now."""
        now = time.time() if now is None else now
        for function, canary in list(self._running.items()):
            if function in self._settling:
                continue
            weight = canary.weight_at(now)
            if weight >= 100:
                await self._end(canary, CanaryStatus.PROMOTED, "promoted on schedule", now)
                continue
            alias = self._book.aliases(function)
            current = next((a for a in alias if a.name == canary.alias), None)
            if current is None or current.weight != weight:
                await self._commit(
                    [PutAlias(_split(canary, weight, now))], None
                )

    async def roll_back(self, function: str, reason: str) -> Canary | None:
        canary = self._running.get(function)
        if canary is None:
            return None
        log.warning("canary of %s rolled back: %s", function, reason)
        return await self._end(canary, CanaryStatus.ROLLED_BACK, reason, time.time())

    async def _end(self, canary: Canary, status: str, reason: str, now: float) -> Canary:
        alias = _ended_alias(canary, status, now)
        ended = msgspec.structs.replace(canary, status=status, reason=reason, ended_at=now)
        await self._commit([PutAlias(alias), PutCanary(ended)], ended)
        kind = PROMOTED if status == CanaryStatus.PROMOTED else ROLLED_BACK
        counts = self._counts.pop(canary.function, _Counts())
        await self._publish(
            [
                CloudEvent.create(
                    kind,
                    {
                        "function": canary.function,
                        "alias": canary.alias,
                        "primary": canary.primary,
                        "canary": canary.canary,
                        "reason": reason,
                        "canary_calls": counts.calls,
                        "canary_errors": counts.errors,
                    },
                    source=EVENT_SOURCE,
                    subject=canary.function,
                )
            ]
        )
        return ended

    async def _commit(self, ops: list[Op], ended: Canary | None) -> None:
        await self._store.commit(ops)
        for op in ops:
            if isinstance(op, PutAlias):
                self._book.remember(op.alias)
        if ended is not None:
            self._running.pop(ended.function, None)
            self.ended[(ended.function, ended.alias)] = ended


def start_ops(canary: Canary) -> list[Op]:
    """What a deploy commits to start ``canary``: its state and the alias's first split."""
    return [PutCanary(canary), PutAlias(_split(canary, canary.start_weight, canary.started_at))]


def _ended_alias(canary: Canary, status: str, now: float) -> Alias:
    """The alias once ``canary`` ends: all of it to the canary version, or back to the primary."""
    promoted = status == CanaryStatus.PROMOTED
    return Alias(
        function=canary.function,
        name=canary.alias,
        version=canary.canary if promoted else canary.primary,
        previous=canary.primary if promoted else canary.canary,
        updated_at=now,
    )


def _split(canary: Canary, weight: int, now: float) -> Alias:
    return Alias(
        function=canary.function,
        name=canary.alias,
        version=canary.primary,
        canary=canary.canary,
        weight=weight,
        previous=canary.primary,
        updated_at=now,
    )
