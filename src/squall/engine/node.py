"""A cluster node's roles, and the coordinator duties one scheduler node holds at a time.

``squall node --roles gateway,invoker,scheduler`` picks what a process does:

- ``gateway``: serves HTTP (function routes, events ingest, admin API, dashboard) and runs
  sync invocations in its own sandboxes. It keeps no state of its own: any number may run
  behind one load balancer.
- ``invoker``: leases the functions' deliveries from JetStream and runs them. Any number
  share each queue's durable pull consumer.
- ``scheduler``: candidates for the coordinator lease. The holder fires schedule ticks and
  runs every duty that must happen once per cluster — delayed events, rule targets,
  workflow steps, stream and table-change consumers, projections, SQS-like queue
  consumers, sweeps and retention, canaries, budgets, the outbox relay — and gives them up
  when it stops leading (another candidate takes over within the lease's TTL + renewal).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from squall.engine.leader import Leadership
from squall.engine.waiting import wait_woken
from squall.errors import ConfigError

log = logging.getLogger("squall.node")

GATEWAY, INVOKER, SCHEDULER = "gateway", "invoker", "scheduler"
ROLES = (GATEWAY, INVOKER, SCHEDULER)
ALL_ROLES = frozenset(ROLES)


def parse_roles(text: str) -> frozenset[str]:
    """``gateway,invoker`` → the roles; unknown or no roles are a ConfigError."""
    roles = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [role for role in roles if role not in ROLES]
    if unknown:
        raise ConfigError(f"unknown role {unknown[0]!r} (roles: {', '.join(ROLES)})", field="roles")
    if not roles:
        raise ConfigError(f"give at least one role (roles: {', '.join(ROLES)})", field="roles")
    return frozenset(roles)


@dataclass(frozen=True)
class Service:
    """A duty started and stopped as a whole (it manages its own tasks)."""

    start: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]]


class Coordinator:
    """Runs the coordinator duties while ``leadership`` leads, and only then."""

    def __init__(
        self,
        leadership: Leadership,
        take_over: Callable[[], Awaitable[None]],
        services: Sequence[Service],
        loops: Sequence[Callable[[], Coroutine[Any, Any, None]]],
        check_s: float = 0.5,
    ) -> None:
        self._leadership = leadership
        self._take_over = take_over
        self._services = services
        self._loops = loops
        self._check_s = check_s
        self.terms = 0  # times this process became the coordinator
        self._started: list[Service] | None = None  # the services of the term held now
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def leading(self) -> bool:
        return self._leadership.leading

    async def begin(self) -> None:
        """Take up the duties now if this process leads already, so a node that starts as
        the coordinator serves them before its start returns."""
        if self._leadership.leading and self._started is None:
            await self._open_term()

    async def run(self) -> None:
        try:
            while True:
                if self._started is None:
                    await self._leadership.wait_leading()
                    await self._open_term()
                while self._leadership.leading:
                    self._leadership.changed.clear()
                    if not self._leadership.leading:
                        break
                    await wait_woken(self._leadership.changed, self._check_s)
                log.warning(
                    "%s lost the coordinator lease: its duties stop", self._leadership.holder
                )
                await self._close_term()
        finally:
            await self._close_term()

    async def _open_term(self) -> None:
        self.terms += 1
        log.info("%s coordinates the cluster", self._leadership.holder)
        self._started = []
        await self._take_over()
        for service in self._services:
            await service.start()
            self._started.append(service)
        self._tasks = [asyncio.create_task(loop()) for loop in self._loops]

    async def _close_term(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        started, self._started = self._started or [], None
        for service in reversed(started):
            with contextlib.suppress(Exception):
                await service.stop()
