"""Event buses: match published events against rules and turn matches into deliveries.

Every enabled rule of a bus sits in one compiled matcher, updated in place as rules come,
change and go. A published event becomes, in one unit of work, a delivery per target of
every matching rule (see ``targets.routing``) plus a note of its id for deduplication.
A bus exists while it is the default, or a rule is on it or targets it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from squall.engine.router.matcher import Matcher
from squall.engine.targets.routing import Routed, deliver
from squall.model.cloudevent import CloudEvent
from squall.model.rules import DEFAULT_BUS, RuleConfig
from squall.model.targets import BusTarget
from squall.storage.protocols import Op, RememberEvent

DEDUP_WINDOW_S = 24 * 3600


@dataclass
class Published:
    """What publishing did with one event."""

    id: str
    duplicate: bool = False
    matched: list[str] = field(default_factory=list)  # rule names
    looped: bool = False
    deliveries: int = 0  # targets the event was queued for


class Buses:
    def __init__(
        self,
        rules: Sequence[RuleConfig],
        version: str,
        functions: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        self._version = version
        self._functions = functions
        self._rules: dict[str, RuleConfig] = {}
        self._matchers: dict[str, Matcher] = {DEFAULT_BUS: Matcher()}
        self._refs: Counter[str] = Counter()  # bus -> rules on it or targeting it
        for rule in rules:
            self.put(rule)
        for matcher in self._matchers.values():
            matcher.rebalance()

    @property
    def names(self) -> list[str]:
        return sorted({DEFAULT_BUS, *self._refs})

    def rules(self) -> list[RuleConfig]:
        return list(self._rules.values())

    def rule(self, name: str) -> RuleConfig | None:
        return self._rules.get(name)

    def knows(self, bus: str) -> bool:
        return bus == DEFAULT_BUS or self._refs[bus] > 0

    def put(self, rule: RuleConfig) -> None:
        """Add or replace a rule (its pattern must be valid); the matcher changes in place."""
        self.remove(rule.name)
        self._rules[rule.name] = rule
        self._refs.update(_buses_of(rule))
        if rule.enabled:
            self._matchers.setdefault(rule.bus, Matcher()).add(rule.name, rule.pattern)

    def remove(self, name: str) -> None:
        rule = self._rules.pop(name, None)
        if rule is None:
            return
        self._refs.subtract(_buses_of(rule))
        self._refs = +self._refs  # drop buses nothing names any more
        matcher = self._matchers.get(rule.bus)
        if matcher is not None:
            matcher.remove(name)
            if not len(matcher) and rule.bus != DEFAULT_BUS:
                del self._matchers[rule.bus]

    def route(
        self, bus: str, events: Sequence[CloudEvent], seen: set[tuple[str, str]]
    ) -> tuple[list[Op], list[Published], set[str]]:
        """Ops that deliver ``events`` (those not in ``seen``), what happened, queues with work."""
        now = time.time()
        ops: list[Op] = []
        outcomes: list[Published] = []
        queues: set[str] = set()
        matcher = self._matchers.get(bus)
        functions = self._functions()
        for event in events:
            outcome = Published(event.id)
            outcomes.append(outcome)
            key = (event.source, event.id)
            if key in seen:
                outcome.duplicate = True
                continue
            seen.add(key)  # a second copy in the same batch is a duplicate too
            ops.append(RememberEvent(event.source, event.id, now + DEDUP_WINDOW_S))
            document = event.to_json_dict()
            routed = Routed(event, document, event.to_json(), now, self._version)
            outcome.looped = routed.looped
            for name in sorted(matcher.match(document)) if matcher is not None else ():
                rule = self._rules[name]
                outcome.matched.append(name)
                for target in rule.targets:
                    target_ops, queue = deliver(rule, target, routed, functions)
                    ops += target_ops
                    if queue is not None:
                        queues.add(queue)
                        outcome.deliveries += 1
        return ops, outcomes, queues


def _buses_of(rule: RuleConfig) -> list[str]:
    return [rule.bus, *(t.bus for t in rule.targets if isinstance(t, BusTarget))]
