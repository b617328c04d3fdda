"""What the platform knows about itself: metrics, usage summaries, cost and budgets.

The platform builds one ``Observability`` and gives ``observe`` to its invoker, which calls
it once per finished invocation attempt.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from squall.errors import InvalidInput
from squall.model.alerts import AlertConfig
from squall.model.budgets import BudgetConfig
from squall.model.invocation import InvocationRecord
from squall.observe.alerts import Alerts
from squall.observe.budgets import Budgets, Publish, Stop
from squall.observe.cost import PriceTable, check_by, cost_report
from squall.observe.metrics import Metrics, StateSnapshot
from squall.observe.series import check_step, series
from squall.observe.summary import summarize
from squall.storage.protocols import Store

if TYPE_CHECKING:
    from squall.engine.bus_stats import BusStats
    from squall.engine.queues.book import QueueBook
    from squall.engine.streams.log import Streams
    from squall.runtime.pool import Pool


async def _none() -> list[dict[str, Any]]:
    return []


class Observability:
    def __init__(
        self,
        store: Store,
        pools: Mapping[str, Pool],
        bus_stats: BusStats,
        queues: QueueBook,
        streams: Streams,
        *,
        prices: PriceTable,
        budgets: Sequence[BudgetConfig],
        alerts: Sequence[AlertConfig] = (),
        functions: Callable[[], Sequence[str]],
        publish: Publish,
        stop: Stop,
    ) -> None:
        self._store = store
        self._pools = pools
        self._queues = queues
        self._streams = streams
        self._functions = functions
        self.prices = prices
        self.metrics = Metrics(pools, bus_stats)
        self.budgets = Budgets(
            budgets, store, prices, functions=functions, publish=publish, stop=stop
        )
        self.alerts = Alerts(alerts, store, pools, publish)
        self.metrics.registry.register(_GuardCollector(self.budgets, self.alerts))
        # Projections are built after this hub; the platform points this at their status.
        self.projection_status: Callable[[], Awaitable[list[dict[str, Any]]]] = _none
        self.observe: Callable[[InvocationRecord], None] = (
            self._observe_all if self.budgets else self.metrics.observe
        )

    def _observe_all(self, record: InvocationRecord) -> None:
        self.metrics.observe(record)
        self.budgets.observe(record)

    def tasks(self) -> list[Coroutine[Any, Any, None]]:
        """The background loops the platform runs: budget and alert checks, when declared."""
        return [loop() for loop in self.loops()]

    def loops(self) -> list[Callable[[], Coroutine[Any, Any, None]]]:
        """What ``tasks`` runs, not yet started (a cluster's coordinator starts them)."""
        loops: list[Callable[[], Coroutine[Any, Any, None]]] = []
        if self.budgets:
            loops.append(self.budgets.run)
        if self.alerts:
            loops.append(self.alerts.run)
        return loops

    async def scrape(self) -> bytes:
        """``GET /metrics``: the Prometheus text, with store state read now."""
        await self._store.commit(())  # a barrier: committed sends and checkpoints are seen
        snapshot = StateSnapshot(taken_at=time.time())
        for queue in self._queues.all():
            snapshot.queues.append((queue.name, await self._store.queue_stats(queue.name)))
        for stream in self._streams.all():
            snapshot.streams.append(await self._streams.describe(stream.name))
        snapshot.dead_letters = await self._store.dead_letter_counts()
        snapshot.workflow_runs, snapshot.workflow_steps = await self._store.workflow_counts()
        snapshot.projections = await self.projection_status()
        return self.metrics.render(snapshot)

    async def _records(self, since: float, until: float) -> list[InvocationRecord]:
        _check_window(since, until)
        await self._store.commit(())  # lazily committed records of sync calls land first
        return await self._store.finished_invocations(since, until)

    async def summary(self, since: float, until: float | None = None) -> dict[str, Any]:
        until = time.time() if until is None else until
        records = await self._records(since, until)
        throttles = {
            name: sum(1 for at in pool.throttled_at if since <= at < until)
            for name, pool in self._pools.items()
        }
        return summarize(records, self._functions(), throttles, since=since, until=until)

    async def series(
        self, since: float, until: float, step: float, function: str | None = None
    ) -> dict[str, Any]:
        """``GET /api/v1/metrics/series``: the dashboard's charts over ``[since, until)``."""
        check_step(since, until, step)  # before reading a window too fine to chart
        records = await self._records(since, until)
        return series(
            records, since=since, until=until, step=step, prices=self.prices, function=function
        )

    async def cost(self, by: object, since: float, until: float | None = None) -> dict[str, Any]:
        grouping = check_by(by)
        until = time.time() if until is None else until
        records = await self._records(since, until)
        report = cost_report(records, by=grouping, since=since, until=until, prices=self.prices)
        report["budgets"] = self.budgets.describe()
        return report


class _GuardCollector(Collector):
    """Budgets (spend against limit) and alert rules (firing or not), when declared."""

    def __init__(self, budgets: Budgets, alerts: Alerts) -> None:
        self._budgets = budgets
        self._alerts = alerts

    def describe(self) -> Sequence[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        labels = ("function", "period")
        spend = GaugeMetricFamily(
            "squall_budget_spend_usd", "Spend this period (function * is the app).", labels=labels
        )
        limit = GaugeMetricFamily("squall_budget_usd", "A budget's limit.", labels=labels)
        for budget in self._budgets.describe():
            key = (budget["function"] or "*", budget["period"])
            spend.add_metric(key, budget["spend_usd"])
            limit.add_metric(key, budget["usd"])
        firing = GaugeMetricFamily(
            "squall_alert_firing", "1 while an alert rule fires.", labels=("alert", "metric")
        )
        for alert in self._alerts.describe():
            firing.add_metric((alert["name"], alert["metric"]), 1.0 if alert["firing"] else 0.0)
        yield from (spend, limit, firing)


def _check_window(since: float, until: float) -> None:
    if since > until:
        raise InvalidInput(f"since={since!r} is after until={until!r}", field="since")
