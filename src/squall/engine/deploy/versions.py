"""The version book: every function's versions and aliases, and which version serves a call.

Kept in memory (loaded at start, updated after each commit) because every invocation asks it.
A call names a function and optionally a qualifier: a version number, an alias, or ``latest``.
Unqualified calls go to the function's ``live`` alias when it has one, else to its newest
version, so a canary set on ``live`` shifts every trigger of the function at once.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence

import msgspec

from squall.errors import Conflict, InvalidInput, NotFound
from squall.model.config import FunctionConfig, Manifest
from squall.model.deploys import (
    LATEST,
    LIVE,
    Alias,
    Deployment,
    FunctionVersion,
    check_alias_name,
    check_weight,
)
from squall.storage.deploys import DeleteAlias, PutAlias, PutDeployment, PutVersion
from squall.storage.protocols import Op, Store


def version_hash(bundle: str, config: FunctionConfig) -> str:
    digest = hashlib.sha256(bundle.encode())
    digest.update(msgspec.json.encode(config))
    return digest.hexdigest()[:20]


class VersionBook:
    def __init__(self, store: Store, draw: Callable[[], float] = random.random) -> None:
        self._store = store
        self._draw = draw
        self._versions: dict[str, list[FunctionVersion]] = {}
        self._aliases: dict[tuple[str, str], Alias] = {}
        self.deployments = 0  # the last deployment's seq
        self.last: Deployment | None = None

    async def load(self) -> None:
        self._versions = {}
        for version in await self._store.list_versions():
            self._versions.setdefault(version.function, []).append(version)
        self._aliases = {(a.function, a.name): a for a in await self._store.list_aliases()}
        latest = await self._store.list_deployments(limit=1)
        self.last = latest[0] if latest else None
        self.deployments = self.last.seq if self.last else 0

    # --- reads ---------------------------------------------------------------------------

    def superseded(self, bundle: str) -> bool:
        """``bundle`` was deployed before and a later deployment serves other code."""
        if self.last is None or self.last.bundle == bundle:
            return False
        return any(v.bundle == bundle for versions in self._versions.values() for v in versions)

    def versions(self, function: str) -> list[FunctionVersion]:
        return list(self._versions.get(function, []))

    def latest(self, function: str) -> FunctionVersion | None:
        versions = self._versions.get(function)
        return versions[-1] if versions else None

    def get(self, function: str, number: int) -> FunctionVersion:
        for version in self._versions.get(function, []):
            if version.number == number:
                return version
        known = ", ".join(str(v.number) for v in self._versions.get(function, [])) or "none"
        raise NotFound(
            f"function {function!r} has no version {number} (versions: {known})",
            function=function,
            version=number,
        )

    def reachable(self) -> list[FunctionVersion]:
        """The versions calls can reach without naming a number: each function's newest
        and those its aliases (and their canaries) point at."""
        found = [versions[-1] for versions in self._versions.values() if versions]
        for alias in self._aliases.values():
            named = (alias.version, alias.canary)
            found += [v for v in self._versions.get(alias.function, []) if v.number in named]
        return found

    def aliases(self, function: str | None = None) -> list[Alias]:
        return [a for (fn, _), a in sorted(self._aliases.items()) if function in (None, fn)]

    def alias(self, function: str, name: str) -> Alias:
        found = self._aliases.get((function, name))
        if found is None:
            known = ", ".join(a.name for a in self.aliases(function)) or "none"
            raise NotFound(
                f"function {function!r} has no alias {name!r} (aliases: {known})",
                function=function,
                alias=name,
            )
        return found

    def choose(self, function: str, qualifier: str | None = None) -> int:
        """The version number that serves one call of ``function`` named with ``qualifier``."""
        if qualifier is None:
            live = self._aliases.get((function, LIVE))
            if live is not None:
                return live.pick(self._draw())
            qualifier = LATEST
        if qualifier == LATEST:
            latest = self.latest(function)
            if latest is None:
                raise NotFound(f"function {function!r} has no version", function=function)
            return latest.number
        if qualifier.isdigit():
            return self.get(function, int(qualifier)).number
        return self.alias(function, qualifier).pick(self._draw())

    # --- deploys -------------------------------------------------------------------------

    def changes(
        self,
        manifest: Manifest,
        bundle: str,
        app_ref: str,
        who: str,
        kept: frozenset[str] = frozenset(),
    ) -> tuple[list[FunctionVersion], dict[str, int]]:
        """The versions a deploy of ``manifest`` makes, and the version each function serves
        after it (a ``kept`` function, not in the deploy's bundle, keeps the one it had)."""
        now = time.time()
        new: list[FunctionVersion] = []
        serving: dict[str, int] = {}
        for config in manifest.functions:
            if config.name in kept:
                serving[config.name] = self._served(config.name)
                continue
            digest = version_hash(bundle, config)
            latest = self.latest(config.name)
            if latest is not None and latest.hash == digest:
                serving[config.name] = latest.number
                continue
            version = FunctionVersion(
                function=config.name,
                number=(latest.number + 1) if latest else 1,
                hash=digest,
                bundle=bundle,
                app_ref=app_ref,
                config=config,
                deployed_at=now,
                deployed_by=who,
            )
            new.append(version)
            serving[config.name] = version.number
        return new, serving

    def _served(self, function: str) -> int:
        """The version the last deployment served ``function`` with."""
        if self.last is not None and function in self.last.versions:
            return self.last.versions[function]
        latest = self.latest(function)
        if latest is None:
            raise NotFound(f"function {function!r} has no version to keep", function=function)
        return latest.number

    async def record(
        self,
        manifest: Manifest,
        bundle: str,
        app_ref: str,
        who: str,
        kept: frozenset[str] = frozenset(),
        extra: Sequence[Op] = (),
        code: Sequence[Op] = (),
    ) -> tuple[list[FunctionVersion], Deployment | None]:
        """Commit the versions and the deployment a deploy makes; nothing when unchanged.

        ``code`` stores the bundle's archive for other nodes (see ``stored``): committed
        with the versions that need it, or alone when the deploy changes nothing (versions
        recorded before the store kept archives get theirs this way)."""
        new, serving = self.changes(manifest, bundle, app_ref, who, kept)
        unchanged = (
            not new
            and not extra
            and self.last is not None
            and self.last.bundle == bundle
            and self.last.versions == serving
            and self.last.manifest == _unversioned(manifest)
        )
        if unchanged:
            if code:
                await self._store.commit(code)
            return [], None
        deployment = Deployment(
            seq=self.deployments + 1,
            bundle=bundle,
            app_ref=app_ref,
            manifest=_unversioned(manifest),
            deployed_at=time.time(),
            deployed_by=who,
            versions=serving,
        )
        ops: list[Op] = [*code, *(PutVersion(v) for v in new)]
        ops += [PutDeployment(deployment), *extra, *self._follow(new, extra)]
        await self._store.commit(ops)
        for version in new:
            self._versions.setdefault(version.function, []).append(version)
        for op in ops:
            if isinstance(op, PutAlias):
                self.remember(op.alias)
        self.last, self.deployments = deployment, deployment.seq
        return new, deployment

    def _follow(self, new: list[FunctionVersion], extra: Sequence[Op]) -> list[PutAlias]:
        """A deploy's new versions take over their functions' ``live`` aliases, so the code
        it deployed serves (and a rollback returns to the version before), unless the
        deploy's own ops set the alias (a canary)."""
        set_by_deploy = {
            (op.alias.function, op.alias.name) for op in extra if isinstance(op, PutAlias)
        }
        moved = []
        for version in new:
            live = self._aliases.get((version.function, LIVE))
            if live is None or (version.function, LIVE) in set_by_deploy:
                continue
            alias = Alias(
                function=version.function,
                name=LIVE,
                version=version.number,
                previous=live.version,
                updated_at=version.deployed_at,
            )
            moved.append(PutAlias(alias))
        return moved

    # --- aliases -------------------------------------------------------------------------

    def check_alias(
        self, function: str, name: str, version: int, canary: int | None, weight: int
    ) -> Alias:
        """The alias these settings make, or InvalidInput/NotFound naming what is wrong."""
        check_alias_name(name)
        check_weight(weight)
        self.get(function, version)
        if canary is not None:
            self.get(function, canary)
            if canary == version:
                raise InvalidInput(
                    f"alias {name!r}: the canary is version {canary}, the same as the primary",
                    field="canary",
                )
        elif weight:
            raise InvalidInput(
                f"alias {name!r}: weight={weight} needs a canary version to send it to",
                field="weight",
            )
        before = self._aliases.get((function, name))
        previous = before.previous if before is not None else None
        if before is not None and before.version != version:
            previous = before.version
        elif before is None and name == LIVE:
            # Unqualified calls went to the newest version until now: a rollback returns there.
            latest = self.latest(function)
            if latest is not None and latest.number != version:
                previous = latest.number
        return Alias(
            function=function,
            name=name,
            version=version,
            canary=canary,
            weight=weight,
            previous=previous,
            updated_at=time.time(),
        )

    def rollback_target(self, function: str, name: str) -> int:
        """The version a rollback of alias ``name`` goes to: the one it pointed at before,
        or (no alias yet) the version before the newest."""
        alias = self._aliases.get((function, name))
        if alias is not None:
            if alias.canary is not None and alias.weight:
                return alias.version  # a split: all traffic back to the primary
            if alias.previous is not None:
                return alias.previous
            raise Conflict(
                f"alias {name!r} of {function!r} has pointed only at version {alias.version}:"
                " there is nothing to roll back to (set it with squall alias set)",
                field="alias",
            )
        versions = self._versions.get(function, [])
        if len(versions) < 2:
            raise Conflict(
                f"function {function!r} has one version: there is nothing to roll back to",
                field="function",
            )
        current = self.choose(function)
        older = [v.number for v in versions if v.number < current]
        if not older:
            raise Conflict(
                f"function {function!r} serves its first version {current}: there is nothing"
                " older to roll back to",
                field="function",
            )
        return older[-1]

    async def set_alias(
        self, function: str, name: str, version: int, canary: int | None = None, weight: int = 0
    ) -> Alias:
        alias = self.check_alias(function, name, version, canary, weight)
        await self._store.commit([PutAlias(alias)])
        self._aliases[(function, name)] = alias
        return alias

    def remember(self, alias: Alias) -> None:
        """``alias`` was committed by someone else's unit: serve it from now on."""
        self._aliases[(alias.function, alias.name)] = alias

    async def delete_alias(self, function: str, name: str) -> None:
        self.alias(function, name)
        await self._store.commit([DeleteAlias(function, name)])
        del self._aliases[(function, name)]


def _unversioned(manifest: Manifest) -> Manifest:
    """Deployments compare manifests without the app version (a hash of the source too)."""
    return msgspec.structs.replace(manifest, version="")
