"""What each bus did with the events published to it, counted in memory by the platform.

The counters start at zero when the platform starts and are not stored: a restart resets them
(``since`` says when counting began). They count only publishes whose unit of work was
committed, so an event refused or lost to a crash before its acknowledgement is never counted.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence

import msgspec

from squall.engine.bus import Published


class BusCounters(msgspec.Struct, kw_only=True):
    bus: str
    published: int = 0  # events taken in: not duplicates
    duplicates: int = 0  # dropped: their (source, id) was published within the dedup window
    matched: int = 0  # published events that matched at least one rule
    deliveries: int = 0  # deliveries queued: one per target of every rule an event matched
    looped: int = 0  # matched events not delivered, past the hop limit (RecursiveLoop)


class BusStats:
    def __init__(self, buses: Iterable[str]) -> None:
        self.since = time.time()
        self._counters = {bus: BusCounters(bus=bus) for bus in buses}
        self._rules: Counter[tuple[str, str]] = Counter()  # (bus, rule) -> events matched

    def count(self, bus: str, outcomes: Sequence[Published]) -> None:
        """Add what one committed publish to ``bus`` did with its events."""
        counters = self._counters.setdefault(bus, BusCounters(bus=bus))
        for outcome in outcomes:
            if outcome.duplicate:
                counters.duplicates += 1
                continue
            counters.published += 1
            if not outcome.matched:
                continue
            counters.matched += 1
            self._rules.update((bus, rule) for rule in outcome.matched)
            if outcome.looped:
                counters.looped += 1
            else:
                counters.deliveries += outcome.deliveries

    def rule_matches(self) -> dict[tuple[str, str], int]:
        """Events each rule matched, by (bus, rule)."""
        return dict(self._rules)

    def snapshot(self) -> list[BusCounters]:
        """A copy of every bus's counters, by bus name."""
        return [msgspec.structs.replace(self._counters[bus]) for bus in sorted(self._counters)]
