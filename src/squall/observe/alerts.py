"""Alert rules on metrics, evaluated every few seconds.

Each check reads what the rules need once: the stored records of the longest window (error
rate, p99 duration), the dead letters held, the pools' recent throttle times. A rule whose
value goes above its threshold publishes ``squall.alert.fired`` on the default bus; when it
is back at or below it (no data counts as that), ``squall.alert.resolved``. Whether a rule
is firing lives in memory: a restart starts every rule as resolved, so one still above its
threshold fires again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from squall.model.alerts import AlertConfig
from squall.model.cloudevent import CloudEvent
from squall.model.invocation import InvocationRecord, InvocationStatus
from squall.observe.summary import percentile
from squall.storage.protocols import Store

if TYPE_CHECKING:
    from squall.runtime.pool import Pool

log = logging.getLogger("squall.alerts")

CHECK_S = 5.0
EVENT_SOURCE = "squall/alerts"
FIRED = "squall.alert.fired"
RESOLVED = "squall.alert.resolved"

Publish = Callable[[Sequence[CloudEvent]], Awaitable[Any]]


@dataclass
class _Inputs:
    records: list[InvocationRecord]
    dead_letters: dict[str, int]
    now: float


class Alerts:
    def __init__(
        self,
        alerts: Sequence[AlertConfig],
        store: Store,
        pools: Mapping[str, Pool],
        publish: Publish,
    ) -> None:
        self.alerts = list(alerts)
        self._store = store
        self._pools = pools
        self._publish = publish
        self._firing: dict[str, float] = {}  # alert name -> value when it fired

    def __bool__(self) -> bool:
        return bool(self.alerts)

    def value(self, alert: AlertConfig, inputs: _Inputs) -> float | None:
        """The metric over the alert's window; None when there is nothing to measure."""
        since = inputs.now - alert.window_s
        if alert.metric == "dlq_depth":
            counts = inputs.dead_letters
            if alert.function is not None:
                return float(counts.get(alert.function, 0))
            return float(sum(n for name, n in counts.items() if not name.startswith("rule:")))
        if alert.metric == "throttles":
            pools = [self._pools[alert.function]] if alert.function else self._pools.values()
            return float(sum(1 for pool in pools for at in pool.throttled_at if at >= since))
        records = [
            r
            for r in inputs.records
            if r.created_at >= since and (alert.function is None or r.function == alert.function)
        ]
        if alert.metric == "error_rate":
            if not records:
                return None
            failed = sum(1 for r in records if r.status != InvocationStatus.SUCCEEDED)
            return failed / len(records)
        durations = sorted(r.duration_ms for r in records if r.duration_ms is not None)
        return percentile(durations, 99)

    async def check(self, now: float | None = None) -> list[CloudEvent]:
        """Evaluate every rule once; the fired and resolved events it published."""
        now = time.time() if now is None else now
        windowed = [a for a in self.alerts if a.metric in ("error_rate", "p99_ms")]
        records: list[InvocationRecord] = []
        if windowed:
            await self._store.commit(())  # lazily committed records of sync calls land first
            since = now - max(a.window_s for a in windowed)
            records = await self._store.finished_invocations(since)
        dead = {}
        if any(a.metric == "dlq_depth" for a in self.alerts):
            dead = await self._store.dead_letter_counts()
        inputs = _Inputs(records, dead, now)
        events = []
        for alert in self.alerts:
            value = self.value(alert, inputs)
            breached = value is not None and value > alert.threshold
            firing = alert.name in self._firing
            if breached == firing:
                continue
            if breached:
                assert value is not None
                self._firing[alert.name] = value
                kind = FIRED
            else:
                del self._firing[alert.name]
                kind = RESOLVED
            log.warning(
                "alert %s %s: %s of %s is %s (threshold %s)",
                alert.name,
                "fired" if breached else "resolved",
                alert.metric,
                alert.function or "all functions",
                value,
                alert.threshold,
            )
            events.append(_event(kind, alert, value, now))
        if events:
            await self._publish(events)
        return events

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "name": alert.name,
                "metric": alert.metric,
                "function": alert.function,
                "threshold": alert.threshold,
                "window_s": alert.window_s,
                "firing": alert.name in self._firing,
            }
            for alert in self.alerts
        ]

    async def run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_S)
            try:
                await self.check()
            except Exception:
                log.exception("evaluating alerts failed; trying again in %s s", CHECK_S)


def _event(kind: str, alert: AlertConfig, value: float | None, now: float) -> CloudEvent:
    return CloudEvent.create(
        kind,
        {
            "alert": alert.name,
            "metric": alert.metric,
            "function": alert.function,
            "threshold": alert.threshold,
            "window_s": alert.window_s,
            "value": value,
            "at": now,
        },
        source=EVENT_SOURCE,
        subject=alert.name,
    )
