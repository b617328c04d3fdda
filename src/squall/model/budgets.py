"""Spending budgets an app declares (``app.budget``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import msgspec

from squall.errors import ConfigError

PERIODS = ("day", "month")


class BudgetConfig(msgspec.Struct, frozen=True, kw_only=True):
    """At most ``usd`` per calendar ``period`` (UTC) for ``function``, or the whole app when
    None. Crossing it publishes ``squall.budget.exceeded`` once per period; with ``stop``,
    the function (every function, for an app budget) is set to concurrency 0."""

    usd: float
    period: str = "month"
    function: str | None = None
    stop: bool = False

    @property
    def name(self) -> str:
        return f"{self.function or '*'}/{self.period}"

    def validate(self) -> None:
        usd = self.usd
        if isinstance(usd, bool) or not isinstance(usd, (int, float)) or not usd > 0:
            raise ConfigError(f"budget: usd={usd!r} must be a number > 0", field="usd")
        if self.period not in PERIODS:
            raise ConfigError(
                f"budget: period={self.period!r} is not one of {', '.join(PERIODS)}",
                field="period",
            )
        if not isinstance(self.stop, bool):
            raise ConfigError(f"budget: stop={self.stop!r} must be true or false", field="stop")


def check_budgets(budgets: Sequence[BudgetConfig], functions: Collection[str]) -> None:
    seen: set[str] = set()
    for budget in budgets:
        budget.validate()
        if budget.function is not None and budget.function not in functions:
            raise ConfigError(
                f"budget: function={budget.function!r} names no function of the app"
                f" (functions: {', '.join(sorted(functions))})",
                field="function",
            )
        if budget.name in seen:
            raise ConfigError(
                f"budget for {budget.function or 'the app'} per {budget.period} is declared twice",
                field="period",
            )
        seen.add(budget.name)
