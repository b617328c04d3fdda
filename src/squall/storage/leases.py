"""Leases: one holder at a time for a named duty (the scheduler), with a fencing token.

A holder takes a free or expired lease, or renews its own, in one statement; each change of
holder bumps the token, so a holder that was paused past its lease and comes back sees a
token that is no longer current. Work the leader commits is fenced besides by what it
commits (a schedule tick is a compare-and-set on the stored next tick), so a stale leader
that slips one commit through still cannot fire a tick twice.
"""

from __future__ import annotations

from typing import Protocol


class LeaseStore(Protocol):
    async def acquire_lease(
        self, name: str, holder: str, ttl_s: float, *, force: bool = False
    ) -> int | None:
        """Take or renew lease ``name`` for ``ttl_s``; its token, or None while another holds
        it. ``force`` takes it whoever holds it (a store only this process can open)."""
        ...

    async def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up now, if ``holder`` has it (a clean stop hands over at once)."""
        ...
