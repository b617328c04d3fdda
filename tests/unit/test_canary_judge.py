"""Canaries: judged on the canary version's own calls, stepped by the clock, resumed or
superseded after a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from conftest import poll

import squall
from squall.engine.deploy.canary import MIN_CALLS, PROMOTED, ROLLED_BACK, Canaries, start_ops
from squall.engine.deploy.versions import VersionBook
from squall.model.cloudevent import CloudEvent
from squall.model.config import Manifest
from squall.model.deploys import Canary, CanaryStatus, RollbackRule
from squall.model.invocation import InvocationRecord, InvocationStatus
from squall.storage import open_store
from squall.storage.protocols import Store

START = 1000.0


def _manifest(memory: int) -> Manifest:
    app = squall.App("canaries")

    @app.function(memory_mb=memory)
    def work(event: object, ctx: squall.Context) -> None:
        return None

    return app.manifest()


class Events:
    def __init__(self) -> None:
        self.published: list[CloudEvent] = []

    async def __call__(self, events: Sequence[CloudEvent]) -> None:
        self.published.extend(events)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(str(tmp_path / "squall.db"))
    yield opened
    await opened.close()


async def _book(store: Store) -> VersionBook:
    book = VersionBook(store)
    await book.load()
    return book


async def _started(store: Store, rules: str = "error_rate>2%", steps: int = 1) -> Canary:
    """Versions 1 and 2 of ``work`` and a canary from 1 to 2 at 10%, committed."""
    book = await _book(store)
    await book.record(_manifest(128), "b1", "app.py", "ann")
    canary = Canary(
        function="work", primary=1, canary=2, start_weight=10, steps=steps, duration_s=600.0,
        rollback_on=RollbackRule.parse(rules), started_at=START,
    )
    await book.record(_manifest(256), "b2", "app.py", "ann", extra=start_ops(canary))
    return canary


async def _canaries(store: Store) -> tuple[Canaries, VersionBook, Events]:
    book = await _book(store)
    events = Events()
    canaries = Canaries(store, book, events)
    await canaries.load()
    return canaries, book, events


def _call(version: int, ok: bool, duration_ms: float = 1.0) -> InvocationRecord:
    return InvocationRecord(
        id=f"i{version}", function="work", version=str(version), trigger="sync",
        status=InvocationStatus.SUCCEEDED if ok else InvocationStatus.FAILED,
        duration_ms=duration_ms,
    )


async def _rolled_back(canaries: Canaries) -> None:
    """Wait for the rollback, which runs as a task of its own."""

    async def ended() -> bool:
        return canaries.running("work") is None

    await poll(ended, timeout=5)


async def _settle() -> None:
    await asyncio.sleep(0.1)  # long enough for a rollback, had one started, to commit


async def test_a_failing_canary_is_judged_after_min_calls_of_its_own(store: Store) -> None:
    await _started(store)
    canaries, book, events = await _canaries(store)
    for _ in range(50):
        canaries.observe(_call(1, ok=False))  # the primary's failures are not the canary's
    for _ in range(MIN_CALLS - 1):
        canaries.observe(_call(2, ok=False))
    await _settle()
    assert canaries.running("work") is not None
    canaries.observe(_call(2, ok=False))
    # The verdict takes the canary out of the split at once; the commit follows.
    assert book.choose("work") == 1 and book.alias("work", "live").canary is None
    await _rolled_back(canaries)
    live = book.alias("work", "live")
    assert (live.version, live.canary, live.previous) == (1, None, 2)
    [event] = events.published
    assert event.type == ROLLED_BACK
    assert event.data["canary_calls"] == MIN_CALLS  # type: ignore[index]
    ended = (await _canaries(store))[0].all()
    assert [(c.status, c.ended_at is not None) for c in ended] == [
        (CanaryStatus.ROLLED_BACK, True)
    ]


async def test_an_error_rate_under_the_threshold_keeps_it_running(store: Store) -> None:
    await _started(store, "error_rate>20%")
    canaries, _, events = await _canaries(store)
    for index in range(50):
        canaries.observe(_call(2, ok=index % 10 != 0))  # 10% fail
    await _settle()
    assert canaries.running("work") is not None and events.published == []


async def test_a_slow_canary_is_rolled_back_on_p99(store: Store) -> None:
    await _started(store, "p99_ms>100")
    canaries, _, events = await _canaries(store)
    for _ in range(MIN_CALLS):
        canaries.observe(_call(2, ok=True, duration_ms=250.0))
    await _rolled_back(canaries)
    assert "p99_ms>100 fired" in events.published[0].data["reason"]  # type: ignore[index]


async def test_steps_follow_the_clock_and_end_in_promotion(store: Store) -> None:
    await _started(store, steps=3)
    canaries, book, events = await _canaries(store)
    assert book.alias("work", "live").weight == 10
    await canaries.step(START + 250.0)
    assert book.alias("work", "live").weight == 40
    await canaries.step(START + 450.0)
    assert book.alias("work", "live").weight == 70
    # A restart resumes from the stored state and the clock.
    resumed, book, events = await _canaries(store)
    assert book.alias("work", "live").weight == 70
    await resumed.step(START + 600.0)
    live = book.alias("work", "live")
    assert (live.version, live.canary, live.previous) == (2, None, 1)
    assert [e.type for e in events.published] == [PROMOTED]
    assert resumed.all()[0].status == CanaryStatus.PROMOTED


async def test_a_deploy_over_a_running_canary_supersedes_it(store: Store) -> None:
    await _started(store)
    book = await _book(store)
    await book.record(_manifest(512), "b3", "app.py", "bob")  # live moves to version 3
    canaries, book, _ = await _canaries(store)
    assert canaries.running("work") is None
    [ended] = canaries.all()
    assert ended.status == CanaryStatus.SUPERSEDED
    await canaries.step(START + 10.0)
    assert book.alias("work", "live").version == 3
    assert book.choose("work") == 3
