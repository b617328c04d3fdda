"""The rules of a running platform: the app's own, read-only, and those made through the
admin API, kept in the store so they survive a restart.

A change is validated whole, committed, then applied to the bus's matcher in place: an
invalid rule changes nothing, and no restart is needed. Changes are serialized, so two
units touching one rule never share a group commit (whose op order is canonical, not the
order of submission).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from typing import Any

from squall.engine.bus import Buses
from squall.engine.router.patterns import compile_pattern
from squall.errors import Conflict, InvalidInput, NotFound
from squall.model.rules import DEFAULT_BUS, RuleConfig, check_references
from squall.storage.protocols import DeleteRule, PutRule, Store

log = logging.getLogger("squall.rules")


class RuleBook:
    def __init__(
        self,
        store: Store,
        buses: Buses,
        functions: Callable[[], Collection[str]],
        queues: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self._store = store
        self._buses = buses
        self._functions = functions
        self._queues = queues or frozenset
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Add the stored rules to the buses; the app's rules win a clash of names."""
        for rule in await self._store.list_rules():
            existing = self._buses.rule(rule.name)
            if existing is not None:
                log.warning(
                    "rule %r made through the API is shadowed by the app's rule of that name",
                    rule.name,
                )
                continue
            try:
                check_references(rule, self._functions(), self._bus_names(rule), self._queues())
            except InvalidInput as exc:  # kept: its events are dead-lettered, saying why
                log.warning("stored rule %r: %s", rule.name, exc.message)
            self._buses.put(rule)

    async def refresh(self) -> None:
        """Take in API rules another node made, changed or deleted."""
        async with self._lock:
            stored = {rule.name: rule for rule in await self._store.list_rules()}
            for rule in self._buses.rules():
                if rule.origin != "app" and rule.name not in stored:
                    self._buses.remove(rule.name)
            for rule in stored.values():
                existing = self._buses.rule(rule.name)
                if existing is None or (existing.origin != "app" and existing != rule):
                    self._buses.put(rule)

    # --- reading -------------------------------------------------------------------------

    def rules(self) -> list[RuleConfig]:
        return sorted(self._buses.rules(), key=lambda rule: rule.name)

    def get(self, name: str) -> RuleConfig:
        rule = self._buses.rule(name)
        if rule is None:
            raise NotFound(f"rule {name!r} does not exist", field="name", rule=name)
        return rule

    def buses(self) -> list[dict[str, Any]]:
        counts = {name: [0, 0] for name in self._buses.names}
        for rule in self._buses.rules():
            counts[rule.bus][0] += 1
            counts[rule.bus][1] += rule.enabled
        return [
            {"name": name, "rules": total, "enabled_rules": enabled}
            for name, (total, enabled) in counts.items()
        ]

    # --- changing ------------------------------------------------------------------------

    async def put(self, rule: RuleConfig, *, create: bool = False) -> bool:
        """Create or replace ``rule`` (origin ``api``); True if it is new.

        ``create``: refuse with ``Conflict`` if the name is taken.
        """
        async with self._lock:
            existing = self._buses.rule(rule.name)
            if existing is not None:
                self._writable(existing)
                if create:
                    raise Conflict(
                        f"rule {rule.name!r} already exists: PUT /api/v1/rules/{rule.name}"
                        " replaces it",
                        field="name",
                        rule=rule.name,
                    )
            self.check(rule)
            await self._store.commit([PutRule(rule)])
            self._buses.put(rule)
            return existing is None

    async def delete(self, name: str) -> RuleConfig:
        async with self._lock:
            rule = self._writable(self.get(name))
            await self._store.commit([DeleteRule(name)])
            self._buses.remove(name)
            return rule

    def check(self, rule: RuleConfig) -> None:
        """Everything about ``rule``: its fields, its pattern, what its targets name."""
        rule.validate()
        try:
            compile_pattern(rule.pattern)
        except InvalidInput as exc:
            where = f"pattern.{exc.field}" if exc.field else "pattern"
            raise InvalidInput(
                f"rule {rule.name!r}: the pattern is invalid at {where}: {exc.message}",
                field=where,
            ) from None
        check_references(rule, self._functions(), self._bus_names(rule), self._queues())

    def _bus_names(self, rule: RuleConfig) -> set[str]:
        return {DEFAULT_BUS, rule.bus, *self._buses.names}

    @staticmethod
    def _writable(rule: RuleConfig) -> RuleConfig:
        if rule.origin == "app":
            raise Conflict(
                f"rule {rule.name!r} is declared in the app's code and is read-only through"
                " the API: change it in the app, or make a rule of another name",
                field="name",
                rule=rule.name,
            )
        return rule
