"""Budgets: spend per function (or app) per UTC day or month, checked every few seconds.

Spend starts from the stored records of the current period (so a restart keeps it) and
grows with every invocation attempt the invoker finishes (``observe``, a float addition per
attempt, only when budgets are declared). A budget crossed publishes one
``squall.budget.exceeded`` event on the default bus per period and platform run (a restart
within the period announces it once more); with ``stop`` it sets concurrency to 0.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from squall.model.budgets import BudgetConfig
from squall.model.cloudevent import CloudEvent
from squall.model.invocation import InvocationRecord
from squall.observe.cost import PriceTable, invocation_cost
from squall.storage.protocols import UsageStore

log = logging.getLogger("squall.budgets")

CHECK_S = 2.0
EVENT_SOURCE = "squall/budgets"
EXCEEDED = "squall.budget.exceeded"

Publish = Callable[[Sequence[CloudEvent]], Awaitable[Any]]
Stop = Callable[[str], Awaitable[None]]


def period_start(period: str, now: float) -> float:
    """The start (epoch s) of the UTC day or month ``now`` falls in."""
    t = time.gmtime(now)
    if period == "day":
        return float(calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0)))
    return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)))


class Budgets:
    def __init__(
        self,
        budgets: Sequence[BudgetConfig],
        store: UsageStore,
        prices: PriceTable,
        *,
        functions: Callable[[], Sequence[str]],
        publish: Publish,
        stop: Stop,
    ) -> None:
        self.budgets = list(budgets)
        self._store = store
        self._prices = prices
        self._functions = functions
        self._publish = publish
        self._stop = stop
        self._spend: dict[str, float] = {}  # function -> USD since the earliest period start
        self._starts: dict[str, float] = {}  # period -> its current start
        self._base: dict[tuple[str, str], float] = {}  # (period, function) -> USD at load
        self._fired: set[tuple[str, float]] = set()  # (budget name, period start)

    def __bool__(self) -> bool:
        return bool(self.budgets)

    async def load(self, now: float | None = None) -> None:
        """Spend so far in each period with a budget, from the stored records."""
        now = time.time() if now is None else now
        self._spend = {}
        self._base = {}
        for period in sorted({budget.period for budget in self.budgets}):
            start = period_start(period, now)
            self._starts[period] = start
            for record in await self._store.finished_invocations(start):
                key = (period, record.function)
                self._base[key] = self._base.get(key, 0.0) + invocation_cost(record, self._prices)

    def observe(self, record: InvocationRecord) -> None:
        """Add one finished attempt's cost (the invoker's hook; cheap)."""
        function = record.function
        self._spend[function] = self._spend.get(function, 0.0) + invocation_cost(
            record, self._prices
        )

    def spend(self, budget: BudgetConfig) -> float:
        names = [budget.function] if budget.function is not None else self._all_names()
        return sum(
            self._base.get((budget.period, name), 0.0) + self._spend.get(name, 0.0)
            for name in names
        )

    def _all_names(self) -> set[str]:
        return {*self._functions(), *self._spend, *(name for _, name in self._base)}

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "function": budget.function,
                "period": budget.period,
                "usd": budget.usd,
                "stop": budget.stop,
                "spend_usd": self.spend(budget),
                "period_start": self._starts.get(budget.period),
                "exceeded": (budget.name, self._starts.get(budget.period)) in self._fired,
            }
            for budget in self.budgets
        ]

    async def check(self, now: float | None = None) -> list[BudgetConfig]:
        """Announce (and enforce) every budget crossed this period; the ones newly crossed."""
        now = time.time() if now is None else now
        if any(period_start(p, now) != start for p, start in self._starts.items()):
            await self.load(now)  # a new day or month: spend starts again from the records
        crossed = []
        for budget in self.budgets:
            start = self._starts[budget.period]
            spend = self.spend(budget)
            if spend < budget.usd or (budget.name, start) in self._fired:
                continue
            self._fired.add((budget.name, start))
            crossed.append(budget)
            event = CloudEvent.create(
                EXCEEDED,
                {
                    "function": budget.function,
                    "period": budget.period,
                    "period_start": start,
                    "budget_usd": budget.usd,
                    "spend_usd": spend,
                    "stopped": budget.stop,
                },
                source=EVENT_SOURCE,
                subject=budget.function or "*",
            )
            log.warning(
                "budget of %s USD per %s for %s crossed: %s USD spent%s",
                budget.usd,
                budget.period,
                budget.function or "the app",
                f"{spend:.6f}",
                "; stopping it (concurrency 0)" if budget.stop else "",
            )
            if budget.stop:
                for name in [budget.function] if budget.function else sorted(self._functions()):
                    await self._stop(name)
            await self._publish([event])
        return crossed

    async def run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_S)
            try:
                await self.check()
            except Exception:
                log.exception("checking budgets failed; trying again in %s s", CHECK_S)
