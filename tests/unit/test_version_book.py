"""The version book: numbered versions by content, qualifiers, aliases and rollback targets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import squall
from squall.engine.deploy.versions import VersionBook
from squall.errors import Conflict, InvalidInput, NotFound
from squall.model.config import Manifest
from squall.model.deploys import Alias
from squall.storage import open_store
from squall.storage.deploys import PutAlias
from squall.storage.protocols import Store


def _manifest(memory: int = 128) -> Manifest:
    app = squall.App("book")

    @app.function(memory_mb=memory)
    def work(event: object, ctx: squall.Context) -> None:
        return None

    @app.function()
    def other(event: object, ctx: squall.Context) -> None:
        return None

    return app.manifest()


class Draws:
    """A draw function returning the values it is given, in turn."""

    def __init__(self) -> None:
        self.next = 0.0

    def __call__(self) -> float:
        return self.next


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(str(tmp_path / "squall.db"))
    yield opened
    await opened.close()


@pytest.fixture
def draws() -> Draws:
    return Draws()


@pytest.fixture
async def book(store: Store, draws: Draws) -> VersionBook:
    """A book with versions 1, 2, 3 of ``work`` (and version 1 of ``other``)."""
    made = VersionBook(store, draws)
    await made.load()
    for memory, bundle in ((128, "b1"), (256, "b2"), (512, "b3")):
        await made.record(_manifest(memory), bundle, "app.py", "ann")
    return made


async def test_only_changed_functions_get_versions(store: Store) -> None:
    book = VersionBook(store)
    await book.load()
    new, deployment = await book.record(_manifest(), "b1", "app.py", "ann")
    assert [(v.function, v.number) for v in new] == [("work", 1), ("other", 1)]
    assert deployment is not None and deployment.versions == {"work": 1, "other": 1}
    # The same code and config again: nothing at all.
    assert await book.record(_manifest(), "b1", "app.py", "bob") == ([], None)
    # A config change of one function versions that function; a new bundle versions both.
    new, _ = await book.record(_manifest(256), "b1", "app.py", "bob")
    assert [(v.function, v.number, v.deployed_by) for v in new] == [("work", 2, "bob")]
    new, deployment = await book.record(_manifest(256), "b2", "app.py", "cy")
    assert [(v.function, v.number) for v in new] == [("work", 3), ("other", 2)]
    assert deployment is not None and deployment.seq == 3


async def test_versions_are_immutable_and_survive_a_reload(
    book: VersionBook, store: Store
) -> None:
    work = book.versions("work")
    assert [v.number for v in work] == [1, 2, 3]
    assert len({v.hash for v in work}) == 3
    assert [v.config.memory_mb for v in work] == [128, 256, 512]
    with pytest.raises(AttributeError):
        work[0].number = 9  # type: ignore[misc]
    reloaded = VersionBook(store)
    await reloaded.load()
    assert reloaded.versions("work") == work
    assert reloaded.deployments == 3


async def test_a_kept_function_serves_the_version_it_had(book: VersionBook) -> None:
    new, serving = book.changes(_manifest(1024), "b4", "app.py", "ann", frozenset({"other"}))
    assert [(v.function, v.number) for v in new] == [("work", 4)]
    assert serving == {"work": 4, "other": 3}


async def test_choose_by_qualifier(book: VersionBook, draws: Draws) -> None:
    assert book.choose("work") == 3  # no live alias: the newest
    assert book.choose("work", "latest") == 3
    assert book.choose("work", "2") == 2
    await book.set_alias("work", "beta", 1)
    assert book.choose("work", "beta") == 1
    await book.set_alias("work", "live", 2, canary=3, weight=10)
    draws.next = 0.05
    assert book.choose("work") == 3
    draws.next = 0.10
    assert book.choose("work") == 2  # the canary takes [0, weight%) of the draws
    assert book.choose("work", "latest") == 3


async def test_choose_names_what_is_unknown(book: VersionBook) -> None:
    with pytest.raises(NotFound, match=r"no version 9 \(versions: 1, 2, 3\)"):
        book.choose("work", "9")
    with pytest.raises(NotFound, match="no alias 'gamma'"):
        book.choose("work", "gamma")
    with pytest.raises(NotFound, match="has no version"):
        book.choose("missing")


async def test_check_alias_refuses_bad_settings(book: VersionBook) -> None:
    cases: list[tuple[tuple[str, int, int | None, int], type[Exception], str | None]] = [
        (("live", 7, None, 0), NotFound, None),
        (("live", 1, 7, 10), NotFound, None),
        (("live", 1, 2, 101), InvalidInput, "weight"),
        (("live", 1, 2, -1), InvalidInput, "weight"),
        (("live", 1, 1, 10), InvalidInput, "canary"),
        (("live", 1, None, 10), InvalidInput, "weight"),
        (("Live", 1, None, 0), InvalidInput, "alias"),
        (("latest", 1, None, 0), InvalidInput, "alias"),
    ]
    for (name, version, canary, weight), error, field in cases:
        with pytest.raises(error) as caught:
            book.check_alias("work", name, version, canary, weight)
        if field is not None:
            assert isinstance(caught.value, InvalidInput)
            assert caught.value.field == field, (name, version, canary, weight)
    assert book.aliases("work") == []  # checking commits nothing


async def test_an_alias_remembers_the_version_it_left(book: VersionBook, store: Store) -> None:
    first = await book.set_alias("work", "live", 1)
    assert first.previous == 3  # unqualified calls were served by the newest version
    assert (await book.set_alias("work", "beta", 1)).previous is None
    moved = await book.set_alias("work", "live", 3)
    assert moved.previous == 1
    split = await book.set_alias("work", "live", 3, canary=2, weight=50)
    assert split.previous == 1  # the primary did not move
    reloaded = VersionBook(store)
    await reloaded.load()
    assert reloaded.alias("work", "live") == split


async def test_rollback_target(book: VersionBook) -> None:
    # No alias: the version before the one serving.
    assert book.rollback_target("work", "live") == 2
    # Blue/green: live switched away from the newest version goes back to it.
    await book.set_alias("work", "live", 2)
    assert book.rollback_target("work", "live") == 3
    await book.set_alias("work", "live", 1)
    assert book.rollback_target("work", "live") == 2
    # A split rolls back to its primary.
    await book.set_alias("work", "live", 3, canary=1, weight=30)
    assert book.rollback_target("work", "live") == 3


async def test_rollback_with_nothing_to_go_back_to(book: VersionBook) -> None:
    await book.set_alias("work", "beta", 2)
    with pytest.raises(Conflict, match="pointed only at version 2") as caught:
        book.rollback_target("work", "beta")
    assert caught.value.field == "alias"
    await book.set_alias("work", "live", 3)  # what served already: nothing to go back to
    with pytest.raises(Conflict, match="pointed only at version 3"):
        book.rollback_target("work", "live")


async def test_rollback_of_a_function_with_one_version(store: Store) -> None:
    book = VersionBook(store)
    await book.load()
    await book.record(_manifest(), "b1", "app.py", "ann")
    with pytest.raises(Conflict, match="has one version") as caught:
        book.rollback_target("work", "live")
    assert caught.value.field == "function"


async def test_delete_alias(book: VersionBook) -> None:
    await book.set_alias("work", "beta", 1)
    await book.delete_alias("work", "beta")
    assert book.aliases("work") == []
    with pytest.raises(NotFound):
        await book.delete_alias("work", "beta")


def test_pick_and_describe() -> None:
    alias = Alias(function="f", name="live", version=7, canary=8, weight=10)
    assert [alias.pick(d) for d in (0.0, 0.0999, 0.1, 0.99)] == [8, 8, 7, 7]
    assert alias.describe() == "7 (90%) + 8 (10%)"
    plain = Alias(function="f", name="live", version=7)
    assert plain.pick(0.0) == 7 and plain.describe() == "7"


async def test_a_deploy_moves_the_live_alias_to_its_new_version(book: VersionBook) -> None:
    await book.set_alias("work", "live", 1)
    await book.set_alias("work", "beta", 1)
    new, _ = await book.record(_manifest(1024), "b4", "app.py", "ann")
    assert [(v.function, v.number) for v in new] == [("work", 4), ("other", 4)]
    live = book.alias("work", "live")
    assert (live.version, live.previous, live.canary) == (4, 1, None)
    assert book.alias("work", "beta").version == 1  # other aliases stay where they were
    assert book.aliases("other") == []  # no live alias: the newest serves anyway
    assert book.choose("work") == 4
    assert book.rollback_target("work", "live") == 1


async def test_a_deploy_that_sets_the_live_alias_itself_keeps_it(
    book: VersionBook, store: Store
) -> None:
    await book.set_alias("work", "live", 3)
    split = Alias(function="work", name="live", version=3, canary=4, weight=10, previous=3)
    await book.record(_manifest(1024), "b4", "app.py", "ann", extra=[PutAlias(split)])
    assert book.alias("work", "live") == split
    reloaded = VersionBook(store)
    await reloaded.load()
    assert reloaded.alias("work", "live") == split
