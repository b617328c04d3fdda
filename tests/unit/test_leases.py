"""Leases: one holder at a time, renewals keep the token, takeover after expiry bumps it
(on both backends: the ``store`` fixture of tests/conftest.py)."""

from __future__ import annotations

import asyncio

from squall.engine.leader import Leadership
from squall.storage.sqlite.store import SqliteStore


async def test_one_holder_then_takeover_with_a_new_token(store: SqliteStore) -> None:
    first = await store.acquire_lease("scheduler", "a", 0.3)
    assert first == 1
    assert await store.acquire_lease("scheduler", "b", 0.3) is None  # a holds it
    assert await store.acquire_lease("scheduler", "a", 0.3) == 1  # renewal keeps the token
    await asyncio.sleep(0.35)
    assert await store.acquire_lease("scheduler", "b", 0.3) == 2  # expired: b, fenced anew
    assert await store.acquire_lease("scheduler", "a", 0.3) is None
    assert await store.acquire_lease("scheduler", "a", 0.3, force=True) == 3
    await store.release_lease("scheduler", "a")
    assert await store.acquire_lease("scheduler", "b", 0.3) == 4  # released: taken at once


async def test_leadership_moves_when_the_leader_stops(store: SqliteStore) -> None:
    store.exclusive = False  # as on a shared store: no forced takeover
    one = Leadership(store, "scheduler", "one", ttl_s=3.0, renew_s=0.1)
    two = Leadership(store, "scheduler", "two", ttl_s=3.0, renew_s=0.1)
    running = asyncio.create_task(one.run())
    await asyncio.sleep(0.15)
    other = asyncio.create_task(two.run())
    try:
        await asyncio.sleep(0.3)
        assert one.leading and not two.leading
        running.cancel()  # a clean stop releases the lease: the other takes it on its next try
        await asyncio.gather(running, return_exceptions=True)
        await asyncio.wait_for(two.wait_leading(), 5.0)
        assert two.leading and two.token == 2
    finally:
        for task in (running, other):
            task.cancel()
        await asyncio.gather(running, other, return_exceptions=True)


async def test_a_dead_leader_is_replaced_after_its_lease(store: SqliteStore) -> None:
    store.exclusive = False
    assert await store.acquire_lease("scheduler", "dead", 0.4) == 1  # and never renewed
    # The candidate's own lease is long: a slow store call must not look like a lost lease.
    two = Leadership(store, "scheduler", "two", ttl_s=3.0, renew_s=0.05)
    task = asyncio.create_task(two.run())
    try:
        await asyncio.sleep(0.1)
        assert not two.leading  # the dead holder's lease has not run out yet
        await asyncio.wait_for(two.wait_leading(), 5.0)
        assert two.token == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
