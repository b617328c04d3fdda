"""A zygote per dependency environment, and the launcher that routes each function to its own.

A function runs in the environment of its app's requirements plus its own; functions that
ask for nothing extra share the app's. Every environment the app needs is built and its
zygote started when the platform starts, not at a function's first call: a build takes
seconds to minutes, and an error in it (pip's, naming the package) belongs to the deploy,
which then fails and leaves the version that was serving in place, instead of surfacing as
a cold start that times out.

The app's own requirements must be known before it is imported, since its top-level
imports may need them: they are read from ``requirements.txt`` beside the app file. What
``App(requirements=…)`` adds is only known after an import, so when it names something the
file does not, the app is imported a second time, in the right environment.
"""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

from squall.errors import ConfigError
from squall.model.config import Manifest
from squall.model.requirements import FILE, normalize, read_file
from squall.runtime.envs import EnvCache
from squall.runtime.launcher import Launcher, SpawnLauncher, ZygoteLauncher
from squall.runtime.protocol import Fork, Loaded

log = logging.getLogger("squall")

Requirements = tuple[str, ...]


class EnvLaunchers:
    """One launcher per environment behind the single ``Launcher`` the platform holds."""

    def __init__(self, routes: dict[str, Launcher], launchers: list[Launcher]) -> None:
        self._routes = routes  # function name -> the launcher of its environment
        self._launchers = launchers

    def start(self, request: Fork) -> socket.socket:
        return self._routes[request.function].start(request)

    def exit_status(self, pid: int) -> int | None:
        for launcher in self._launchers:  # pids are unique across the zygotes' children
            status = launcher.exit_status(pid)
            if status is not None:
                return status
        return None

    async def close(self) -> None:
        for launcher in self._launchers:
            await launcher.close()


def environments(manifest: Manifest) -> dict[str, Requirements]:
    """Each function's full requirement set: the app's, then its own (both normalized)."""
    base = Path("/")  # the manifest's paths are absolute already
    return {
        fn.name: normalize((*manifest.requirements, *fn.requirements), base)
        for fn in manifest.functions
    }


def file_requirements(app_ref: str) -> Requirements:
    """``requirements.txt`` beside the app file, read without importing the app."""
    path = _app_file(app_ref)
    if path is None or not (path.parent / FILE).is_file():
        return ()
    return normalize(read_file(path.parent / FILE), path.parent)


def _app_file(app_ref: str) -> Path | None:
    module_ref = app_ref.partition(":")[0]
    if module_ref.endswith(".py") or "/" in module_ref:
        return Path(module_ref).resolve()
    # A module is imported with the working directory first on sys.path (see loader).
    where = Path.cwd().joinpath(*module_ref.split("."))
    for candidate in (where.with_suffix(".py"), where / "__init__.py"):
        if candidate.is_file():
            return candidate.resolve()
    return None


async def start_launchers(app_ref: str, data_dir: Path) -> tuple[Launcher, Loaded]:
    """Build every environment the app needs and start a zygote in each."""
    cache = EnvCache(data_dir / "envs")
    first = file_requirements(app_ref)
    owned: list[Launcher] = []  # closed again if the start fails part-way
    try:
        python = await _python(cache, first)
        zygote, loaded = await ZygoteLauncher.load(app_ref, python)
        owned.append(zygote)
        needed = environments(loaded.manifest)
        started: dict[Requirements, Launcher] = {}
        if first in needed.values() or not needed:
            started[first] = owned[-1] = await _usable(zygote, loaded, app_ref, python)
        else:  # this zygote only told what the app needs: every function runs elsewhere
            if normalize(loaded.manifest.requirements, Path("/")) != first:
                log.info(
                    "App(requirements=...) names packages requirements.txt does not: importing"
                    " %s again in its environment (list them in requirements.txt to import"
                    " once)",
                    app_ref,
                )
            await zygote.close()
            owned.pop()
        for requirements in sorted(set(needed.values()) - set(started)):
            python = await _python(cache, requirements)
            other, again = await ZygoteLauncher.load(app_ref, python)
            owned.append(other)
            _check_same(loaded.manifest, again.manifest, requirements)
            started[requirements] = owned[-1] = await _usable(other, again, app_ref, python)
    except BaseException:
        for launcher in owned:
            await launcher.close()
        raise
    if len(started) == 1:
        return next(iter(started.values())), loaded
    routes = {name: started[requirements] for name, requirements in needed.items()}
    return EnvLaunchers(routes, list(started.values())), loaded


async def _python(cache: EnvCache, requirements: Requirements) -> str:
    """The interpreter of an environment; the platform's own when nothing is required."""
    return (await cache.ensure(requirements)).python if requirements else sys.executable


async def _usable(
    zygote: ZygoteLauncher, loaded: Loaded, app_ref: str, python: str
) -> Launcher:
    if loaded.fork_safe:
        return zygote
    log.warning(
        "%s starts threads at import time; forking it is unsafe, so each sandbox"
        " is a fresh interpreter (slower cold starts)",
        app_ref,
    )
    await zygote.close()
    return SpawnLauncher(app_ref, python)


def _check_same(first: Manifest, again: Manifest, requirements: Requirements) -> None:
    if again.version != first.version:
        raise ConfigError(
            f"app {first.app!r} declares something else when imported with"
            f" {', '.join(requirements)} installed: its module must import the same way"
            " without a function's requirements (import them in the handler or init)",
            field="requirements",
            requirements=list(requirements),
        )
