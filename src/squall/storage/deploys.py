"""Stored deployments, function versions and aliases (see ``model.deploys``).

Versions and deployments are append-only; an alias is one row per (function, name) that a
deploy, a canary step or an operator rewrites. Where nodes share the store, a bundle's
archive (its files as a gzipped tar, named by the bundle's content hash) is kept beside the
versions made of it, committed in the same unit, so a node without the bundle can unpack
it into its own data dir (see ``engine.deploy.stored``).
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from squall.model.deploys import Alias, Canary, Deployment, FunctionVersion


class PutVersion(msgspec.Struct, frozen=True):
    version: FunctionVersion


class PutDeployment(msgspec.Struct, frozen=True):
    deployment: Deployment


class PutAlias(msgspec.Struct, frozen=True):
    alias: Alias


class DeleteAlias(msgspec.Struct, frozen=True):
    function: str
    name: str


class PutCanary(msgspec.Struct, frozen=True):
    canary: Canary


class PutBundle(msgspec.Struct, frozen=True):
    """A bundle's archive; one already stored under ``hash`` is kept (same hash, same files)."""

    hash: str
    archive: bytes
    created_at: float


DeployOp = PutVersion | PutDeployment | PutAlias | DeleteAlias | PutCanary | PutBundle


class DeployStore(Protocol):
    async def list_versions(self, function: str | None = None) -> list[FunctionVersion]:
        """Versions oldest first (by function, then number)."""
        ...

    async def list_aliases(self) -> list[Alias]: ...

    async def list_deployments(self, limit: int = 50) -> list[Deployment]:
        """Deployments newest first."""
        ...

    async def list_canaries(self) -> list[Canary]:
        """The last canary of each (function, alias), running or ended."""
        ...

    async def has_bundle(self, content: str) -> bool:
        """Whether the archive of bundle ``content`` is stored."""
        ...

    async def get_bundle(self, content: str) -> bytes | None:
        """The archive of bundle ``content`` (read off the event loop: it may be large)."""
        ...
