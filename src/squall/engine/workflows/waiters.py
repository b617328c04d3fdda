"""Runs waiting for an event, kept in memory per bus and turned into ops as events publish.

A match adds, to the unit that publishes the event, the end of the waiting step (with the
event as its output) and a wake-up of the run, so an acknowledged publish never loses a
waiting run's event. The first of an event and the wait's timeout to commit wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from squall.engine.router.patterns import Pattern, compile_pattern
from squall.model.cloudevent import CloudEvent
from squall.model.workflows import StepRecord, StepStatus
from squall.storage.protocols import Op, ResolveStep, WakeRun


@dataclass(frozen=True)
class Waiter:
    run_id: str
    seq: int
    event_type: str
    pattern: Pattern | None


class Waiters:
    def __init__(self) -> None:
        self._by_bus: dict[str, dict[tuple[str, int], Waiter]] = {}

    def add(self, step: StepRecord) -> None:
        pattern = None if not step.pattern else compile_pattern(step.pattern)
        waiter = Waiter(step.run_id, step.seq, step.event_type or step.name, pattern)
        self._by_bus.setdefault(step.bus or "default", {})[(step.run_id, step.seq)] = waiter

    def forget(self, run_id: str) -> None:
        for waiters in self._by_bus.values():
            for key in [key for key in waiters if key[0] == run_id]:
                del waiters[key]

    def __len__(self) -> int:
        return sum(len(waiters) for waiters in self._by_bus.values())

    def ops_for(self, bus: str, events: Sequence[CloudEvent], now: float) -> list[Op]:
        waiters = self._by_bus.get(bus)
        if not waiters:
            return []
        ops: list[Op] = []
        for waiter in list(waiters.values()):
            for event in events:
                if event.type != waiter.event_type:
                    continue
                body = event.to_json_dict()
                if waiter.pattern is not None and not waiter.pattern.matches(body):
                    continue
                ops.append(
                    ResolveStep(
                        waiter.run_id,
                        waiter.seq,
                        StepStatus.COMPLETED,
                        output=body,
                        ended_at=now,
                    )
                )
                ops.append(WakeRun(waiter.run_id, now))
                break
        return ops
