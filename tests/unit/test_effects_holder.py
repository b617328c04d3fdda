"""Effects: ops held for an attempt's outcome, built in call order when it commits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from squall.engine.effects import Effects, commit_or_hold
from squall.errors import Conflict
from squall.storage.protocols import Ack, TakeDeadLetter
from squall.storage.sqlite.store import SqliteStore


def test_ops_are_built_in_call_order_when_taken() -> None:
    effects = Effects()
    built: list[str] = []
    effects.add([Ack("a")])

    def late() -> list[Ack]:
        built.append("late")
        return [Ack("b")]

    effects.add(build=late)
    effects.add([Ack("c")])
    assert built == [] and not effects.closed
    assert effects.ops() == [Ack("a"), Ack("b"), Ack("c")]
    assert built == ["late"] and effects.closed


def test_hooks_run_on_their_outcome_only() -> None:
    ran: list[str] = []
    kept, dropped = Effects(), Effects()
    for effects in (kept, dropped):
        effects.add(
            [Ack("x")], after=lambda: ran.append("after"), discard=lambda: ran.append("discard")
        )
    kept.committed()
    assert ran == ["after"]
    dropped.discarded()
    assert ran == ["after", "discard"]
    assert not Effects() and kept


def test_a_failing_hook_does_not_stop_the_others() -> None:
    ran: list[str] = []
    effects = Effects()
    effects.add(after=lambda: 1 / 0)  # type: ignore[func-returns-value]
    effects.add(after=lambda: ran.append("second"))
    effects.committed()
    assert ran == ["second"]


def test_state_is_made_once_per_attempt() -> None:
    effects = Effects()
    overlay = effects.state("tables", dict)
    overlay["k"] = 1
    assert effects.state("tables", dict) == {"k": 1}
    assert Effects().state("tables", dict) == {}


async def test_commit_or_hold_commits_outside_an_invocation_and_holds_inside(
    tmp_path: Path,
) -> None:
    store = await SqliteStore.open(tmp_path / "s.db")
    try:
        ran: list[str] = []
        held = Effects()
        missing = [TakeDeadLetter("missing")]
        await commit_or_hold(store, held, missing, after=lambda: ran.append("a"))
        assert ran == []  # nothing applied yet: the missing letter would have failed
        with pytest.raises(Conflict):
            await commit_or_hold(
                store, None, [TakeDeadLetter("missing")], discard=lambda: ran.append("discard")
            )
        assert ran == ["discard"]
        await commit_or_hold(store, None, [], after=lambda: ran.append("nothing to commit"))
        assert ran == ["discard", "nothing to commit"]
    finally:
        await store.close()
        await asyncio.sleep(0)
