"""Dependency environments: one virtualenv per distinct requirement set, built once, cached.

The cache lives at ``<data_dir>/envs/<key>/`` where the key hashes the normalized set and
the Python version (``env_key``), so every version of an app that asks
for the same set reuses one environment. A build is crash-safe: it happens in a temporary
directory that is renamed into place only once complete, and an ``fcntl`` lock per key
keeps two builds of one set (two platforms, or two functions) from racing. A built key is
recognised by its marker file alone: asking again runs no installer at all.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlparse

import msgspec

from squall.errors import DependencyError
from squall.model.requirements import PATH_OPTIONS

log = logging.getLogger("squall")

READY = ".squall-env-ready"  # written last: an env without it was never finished
RUNTIME_DIR = "squall-runtime"  # links to squall and its runtime deps, after site-packages
STDERR_LINES = 40  # how much of the installer's error an exception carries


@dataclass(frozen=True)
class Env:
    key: str
    path: Path
    requirements: tuple[str, ...]

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")


class EnvCache:
    """Builds and finds environments under ``root`` (``<data_dir>/envs``)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()  # interpreters are started by absolute path

    def find(self, requirements: tuple[str, ...]) -> Env | None:
        """The built environment of ``requirements``, or None; never builds."""
        env = self._env(requirements)
        return env if (env.path / READY).is_file() else None

    async def ensure(self, requirements: tuple[str, ...]) -> Env:
        """The environment of ``requirements``, built first if needed (off the event loop)."""
        built = self.find(requirements)
        return built if built is not None else await asyncio.to_thread(self.build, requirements)

    def build(self, requirements: tuple[str, ...]) -> Env:
        """Build the environment unless a concurrent builder already did; blocking."""
        env = self._env(requirements)
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked(env.key):
            if (env.path / READY).is_file():
                return env
            staging = self.root / f".building-{env.key}"
            for stale in (staging, env.path):  # left by a build that died; we hold the lock
                shutil.rmtree(stale, ignore_errors=True)
            started = time.monotonic()
            log.info("building environment %s for %s", env.key[:12], ", ".join(requirements))
            try:
                _create(staging, requirements)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            # The rename is the commit: the key's directory is complete or absent. A venv
            # survives it (its prefix is found from pyvenv.cfg beside bin/); only console
            # scripts keep the staging path in their shebang, and sandboxes never run them.
            (staging / READY).write_text(f"{time.time()}\n")
            os.rename(staging, env.path)
            log.info("environment %s built in %.1f s", env.key[:12], time.monotonic() - started)
            return env

    def _env(self, requirements: tuple[str, ...]) -> Env:
        key = env_key(requirements)
        return Env(key, self.root / key, requirements)

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        with (self.root / f".{key}.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _create(path: Path, requirements: tuple[str, ...]) -> None:
    """A virtualenv at ``path`` with ``requirements`` installed and squall importable."""
    listing = path / "requirements.txt"
    uv = shutil.which("uv")
    if uv:
        _run("uv venv", [uv, "venv", "--quiet", "--python", sys.executable, str(path)],
             requirements)
        listing.write_text("\n".join(requirements) + "\n")
        python = str(path / "bin" / "python")
        _run("uv pip", [uv, "pip", "install", "--python", python, "-r", str(listing)],
             requirements)
    else:
        # No pip inside the env: the platform's pip installs into it (``--python``), which
        # saves the seconds ensurepip takes per environment.
        _run("venv", [sys.executable, "-m", "venv", "--without-pip", str(path)], requirements)
        listing.write_text("\n".join(requirements) + "\n")
        python = str(path / "bin" / "python")
        command = [sys.executable, "-m", "pip", "--python", python, "install"]
        _run("pip", [*command, "--disable-pip-version-check", "-r", str(listing)], requirements)
    _link_runtime(path)


def _run(step: str, command: list[str], requirements: tuple[str, ...]) -> None:
    """Run one build step, logging its output as progress; its stderr tail on failure."""
    with tempfile.TemporaryFile("w+") as errors, subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith(("Collecting", "Processing", "Installing", "Successfully")):
                log.info("  %s", line.rstrip())
        if process.wait() == 0:
            return
        errors.seek(0)
        tail = "\n".join(errors.read().splitlines()[-STDERR_LINES:])
    raise DependencyError(
        f"installing {', '.join(requirements)} failed ({step} exited with code"
        f" {process.returncode}):\n{tail}",
        field="requirements",
        requirements=list(requirements),
        stderr=tail,
    )


def _link_runtime(path: Path) -> None:
    """Make squall (and only what its sandboxes import) importable in the env at ``path``.

    The env is a plain virtualenv of the base interpreter, so it sees none of the platform's
    site-packages. The worker needs squall and its runtime dependencies (msgspec, …): they
    are symlinked into one directory that a ``.pth`` file appends to ``sys.path`` *after*
    the env's own site-packages. A version the user pins in the env therefore wins over the
    platform's, and nothing else of the platform (its web server, test tools) leaks in.
    The ``.pth`` line is relative to site-packages, so the env survives its rename.
    """
    site = Path(
        sysconfig.get_path("purelib", vars={"base": str(path), "platbase": str(path)})
    )
    links = site.parent / RUNTIME_DIR
    links.mkdir()
    for module in runtime_modules():
        (links / Path(module).name).symlink_to(module)
    (site / "_squall_runtime.pth").write_text(f"../{RUNTIME_DIR}\n")


WORKER_IMPORTS = """
import json, site, sys, sysconfig
import squall.runtime.zygote, squall.runtime.worker
base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}
stdlib = tuple(sysconfig.get_path(p, vars=base) for p in ("stdlib", "platstdlib"))
sites = tuple(site.getsitepackages()) + (sysconfig.get_path("purelib"),)
found = set()
for name, module in list(sys.modules.items()):
    file = getattr(module, "__file__", None)
    if "." in name or not file or name.startswith(("_distutils", "__editable__")):
        continue
    if file.startswith(stdlib) and not file.startswith(sites):
        continue
    found.add(module.__path__[0] if hasattr(module, "__path__") else file)
print(json.dumps(sorted(found)))
"""


@cache
def runtime_modules() -> tuple[str, ...]:
    """Paths of the top-level packages a sandbox imports from outside the standard library.

    Asked of a fresh interpreter, so it lists what the zygote and the worker import, not
    what this (platform) process happens to have loaded.
    """
    out = subprocess.run(
        [sys.executable, "-c", WORKER_IMPORTS], check=True, capture_output=True, timeout=120
    ).stdout
    return tuple(msgspec.json.decode(out, type=list[str]))


def env_key(requirements: tuple[str, ...]) -> str:
    """The cache key of an environment: the normalized set and the Python that runs it.

    A local path counts by its content, not its location: each deploy's code lives in a bundle
    of its own, so a wheel shipped beside the app has a new path every version; keyed by what
    is there, an unchanged wheel reuses the environment and a rebuilt one gets a new one.
    """
    digest = hashlib.sha256(f"{sys.implementation.cache_tag} {sys.version}\n".encode())
    digest.update("\n".join(_by_content(line) for line in requirements).encode())
    return digest.hexdigest()[:32]


def _by_content(line: str) -> str:
    option, space, value = line.partition(" ")
    if space and option in PATH_OPTIONS:
        return f"{option} {_by_content(value.strip())}"
    name, at, target = line.partition(" @ ")
    path = target if at else line
    if path.startswith("file://"):
        path = unquote(urlparse(path).path)
    if not path.startswith("/") or not os.path.exists(path):
        return line
    content = f"sha256:{_tree_digest(Path(path))}"
    return f"{name} @ {content}" if at else content


def _tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if "__pycache__" in file.parts or file.suffix == ".pyc":
            continue
        digest.update(f"{file.relative_to(path) if file != path else file.name}\0".encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()
