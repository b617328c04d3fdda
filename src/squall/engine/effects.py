"""What one invocation attempt does to platform state, held until the attempt's outcome.

A function's table writes, object puts and deletes, published events, queue sends, stream
puts and async invokes are not applied when it makes them: each call adds its ops to the
attempt's :class:`Effects`, and the platform commits them in the same unit of work as the
attempt's success (its record, the ack of the delivery behind it). A failed, timed-out or
crashed attempt's effects are discarded, so a retry starts from clean state and its success
leaves exactly one of each.

Reads inside the attempt see its own pending writes: a service keeps them in
``effects.state(...)``, an overlay it consults before the store. Ops that must see the
store as it is at commit (a stream record's sequence number) are built then, by ``build``.
Hooks run after the commit (``after``: wake a consumer, unlink a replaced object's file) or
when the attempt's effects are thrown away (``discard``: unlink a staged file).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from squall.storage.protocols import Op, Store

log = logging.getLogger("squall.effects")

T = TypeVar("T")
Hook = Callable[[], None]


class Effects:
    __slots__ = ("_after", "_builders", "_discard", "_states", "closed")

    def __init__(self) -> None:
        self._builders: list[Callable[[], Sequence[Op]]] = []
        self._after: list[Hook] = []
        self._discard: list[Hook] = []
        self._states: dict[str, Any] = {}
        self.closed = False  # committed or discarded: no more effects are taken

    def add(
        self,
        ops: Sequence[Op] = (),
        *,
        build: Callable[[], Sequence[Op]] | None = None,
        after: Hook | None = None,
        discard: Hook | None = None,
    ) -> None:
        """Hold ``ops`` (and those ``build`` makes at commit) for the attempt's outcome."""
        if ops:
            fixed = list(ops)
            self._builders.append(lambda: fixed)
        if build is not None:
            self._builders.append(build)
        if after is not None:
            self._after.append(after)
        if discard is not None:
            self._discard.append(discard)

    def state(self, key: str, factory: Callable[[], T]) -> T:
        """A service's scratch space for this attempt (its overlay of pending writes)."""
        if key not in self._states:
            self._states[key] = factory()
        value: T = self._states[key]
        return value

    def __bool__(self) -> bool:
        return bool(self._builders or self._after or self._discard)

    def ops(self) -> list[Op]:
        """The ops to commit with the attempt's success, built now, in call order."""
        self.closed = True
        built: list[Op] = []
        for build in self._builders:
            built.extend(build())
        return built

    def take(self) -> tuple[list[Op], list[Hook]]:
        """The ops held so far and their after-commit hooks, handed over to be committed
        now (a workflow step's checkpoint); the holder stays open for what follows."""
        taken: list[Op] = []
        for build in self._builders:
            taken.extend(build())
        after = self._after
        self._builders, self._after, self._discard = [], [], []
        return taken, after

    def committed(self) -> None:
        self.closed = True
        _run(self._after, "after commit")

    def discarded(self) -> None:
        self.closed = True
        _run(self._discard, "discarding")


def _run(hooks: list[Hook], when: str) -> None:
    for hook in hooks:
        try:
            hook()
        except Exception:
            log.exception("an effect's hook failed %s", when)


async def commit_or_hold(
    store: Store,
    effects: Effects | None,
    ops: Sequence[Op],
    *,
    build: Callable[[], Sequence[Op]] | None = None,
    after: Hook | None = None,
    discard: Hook | None = None,
) -> None:
    """Commit now (a call from outside any invocation: the admin API, the CLI), or hold
    the ops in the running invocation's ``effects``."""
    if effects is not None:
        effects.add(ops, build=build, after=after, discard=discard)
        return
    now = Effects()
    now.add(ops, build=build, after=after, discard=discard)
    try:
        built = now.ops()
        if built:
            await store.commit(built)
    except BaseException:
        now.discarded()
        raise
    now.committed()
