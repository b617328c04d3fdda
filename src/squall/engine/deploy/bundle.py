"""Bundles: an app's directory, snapshotted and named by a hash of its files.

A deploy never runs code from the user's working tree: the app's directory (the one holding
``app.py``) is copied into ``<data_dir>/bundles/<hash>/`` and the version's zygote imports from
there, so a version's code is immutable and an old version can start again after its source was
edited. Remote deploys upload the same directory as a gzipped tar; the platform unpacks it,
rejecting links and paths that leave the bundle, and hashes what it unpacked itself. The
nodes of a cluster pass bundles on the same way: one node packs its snapshot (``archive``)
into the shared store, another unpacks it and checks it hashes to the name it was asked for.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import io
import os
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec

from squall.errors import ConfigError, InvalidInput

MAX_BUNDLE_BYTES = 64 * 1024 * 1024
# Never part of the code: environments, caches, VCS metadata.
SKIPPED_DIRS = frozenset(
    {".squall", ".venv", "venv", "__pycache__", ".git", ".hg", ".mypy_cache",
     ".pytest_cache", ".ruff_cache", "node_modules", ".tox"}
)
SKIPPED_SUFFIXES = (".pyc", ".pyo")
HASH_CHARS = 20
IGNORE_FILE = ".squallignore"  # one glob per line (``*.log``, ``data/``), as .gitignore's basics
DEFAULT_IGNORED = ("*.log", "*.pid", "*.sock")


class Ignored:
    """What a bundle leaves out: the skipped dirs and suffixes, plus ``.squallignore``'s globs
    (matched against the path relative to the root and against the name; ``dir/`` matches a
    directory)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        patterns = list(DEFAULT_IGNORED)
        ignore_file = root / IGNORE_FILE
        if ignore_file.is_file():
            for line in ignore_file.read_text(errors="replace").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    patterns.append(line)
        self._dirs = [p.rstrip("/") for p in patterns if p.endswith("/")]
        self._files = [p for p in patterns if not p.endswith("/")]

    def dir(self, rel: str, name: str) -> bool:
        return name in SKIPPED_DIRS or any(
            fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in [*self._dirs, *self._files]
        )

    def file(self, rel: str, name: str) -> bool:
        if name.endswith(SKIPPED_SUFFIXES):
            return True
        parts = rel.split("/")
        if any(self.dir("/".join(parts[: i + 1]), parts[i]) for i in range(len(parts) - 1)):
            return True
        return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in self._files)

    def path(self, path: Path) -> bool:
        """Whether ``path`` (absolute, under the root) is left out of the bundle."""
        try:
            rel = path.relative_to(self.root).as_posix()
        except ValueError:
            return True
        return self.file(rel, path.name)


class Bundle(msgspec.Struct, frozen=True, kw_only=True):
    hash: str
    root: str  # the snapshot's directory
    app_ref: str  # the app file, relative to ``root``

    @property
    def app_path(self) -> str:
        return str(Path(self.root) / self.app_ref)


def split_app_ref(app_ref: str) -> tuple[Path, str]:
    """The directory a file app's bundle is made of, and the app's path inside it."""
    path_part, sep, attr = app_ref.partition(":")
    if not (path_part.endswith((".py", ".yaml", ".yml")) or "/" in path_part):
        raise ConfigError(
            f"app {app_ref!r} is a module: deploys need the app's file (e.g. app.py), so the"
            " directory holding it can be bundled",
            field="app",
        )
    path = Path(path_part).resolve()
    if not path.is_file():
        raise ConfigError(f"app file {path_part!r} does not exist", field="app")
    return path.parent, path.name + sep + attr


def _files(root: Path, skip: list[Path]) -> Iterator[tuple[str, Path]]:
    ignored = Ignored(root)
    for directory, dirs, names in os.walk(root):
        here = Path(directory)
        base = here.relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        dirs[:] = sorted(
            d for d in dirs
            if not ignored.dir(prefix + d, d) and (here / d).resolve() not in skip
        )
        for name in sorted(names):
            path = here / name
            if ignored.file(prefix + name, name) or path.is_symlink() or not path.is_file():
                continue
            yield prefix + name, path


def _listing(root: Path, skip: list[Path], limit: int) -> list[tuple[str, Path]]:
    listing, total = [], 0
    for rel, path in _files(root, skip):
        total += path.stat().st_size
        if total > limit:
            raise InvalidInput(
                f"the bundle of {str(root)!r} is over the size limit of {limit} bytes: keep"
                " data out of the app's directory (or raise it: squall up --max-bundle-bytes)",
                field="bundle",
                limit_bytes=limit,
            )
        listing.append((rel, path))
    return listing


def _digest(listing: list[tuple[str, Path]]) -> str:
    digest = hashlib.sha256()
    for rel, path in listing:
        data = path.read_bytes()
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:HASH_CHARS]


def bundles_dir(data_dir: Path) -> Path:
    return data_dir / "bundles"


def snapshot(app_ref: str, data_dir: Path, limit: int = MAX_BUNDLE_BYTES) -> Bundle:
    """Copy the app's directory into the data dir's bundles (once per distinct content)."""
    root, rel = split_app_ref(app_ref)
    listing = _listing(root, [data_dir.resolve()], limit)
    # Hash the copy, not the source: a file edited mid-copy must not get the old hash.
    with _staging(data_dir) as staging:
        for name, path in listing:
            dest = staging / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
        content = _digest(_listing(staging, [], limit))
        target = bundles_dir(data_dir) / content
        if not target.is_dir():
            _publish(staging, target)
    return Bundle(hash=content, root=str(target), app_ref=rel)


def pack(app_ref: str, limit: int = MAX_BUNDLE_BYTES) -> tuple[bytes, str]:
    """The app's directory as a gzipped tar, and the app's path inside it (for upload)."""
    root, rel = split_app_ref(app_ref)
    return _tar(_listing(root, [(root / ".squall").resolve()], limit)), rel


def archive(bundle: Bundle) -> bytes:
    """A snapshot's files as a gzipped tar, for nodes that do not have it (``unpack``)."""
    # A snapshot was under the limit when it was taken; the zygote's __pycache__ is skipped.
    return _tar(_listing(Path(bundle.root), [], sys.maxsize))


def _tar(listing: list[tuple[str, Path]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, path in listing:
            tar.add(path, arcname=name, recursive=False)
    return buffer.getvalue()


def unpack(
    data: bytes,
    app_ref: str,
    data_dir: Path,
    limit: int = MAX_BUNDLE_BYTES,
    *,
    expect: str | None = None,
) -> Bundle:
    """Unpack an uploaded bundle into the data dir's bundles; check it holds ``app_ref``
    (and, given ``expect``, that its files hash to that name before it is put in place)."""
    if len(data) > limit:
        raise InvalidInput(
            f"the bundle is {len(data)} bytes, over the size limit of {limit} bytes",
            field="bundle",
            limit_bytes=limit,
        )
    with _staging(data_dir) as staging:
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                members = tar.getmembers()
                total = 0
                for member in members:
                    if not (member.isfile() or member.isdir()):
                        raise InvalidInput(
                            f"bundle entry {member.name!r} is not a file or directory"
                            " (links and devices are refused)",
                            field="bundle",
                        )
                    total += member.size
                    if total > limit:
                        raise InvalidInput(
                            f"the unpacked bundle is over the size limit of {limit} bytes",
                            field="bundle",
                            limit_bytes=limit,
                        )
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise InvalidInput(
                f"the bundle is not a gzipped tar of the app's directory: {exc}", field="bundle"
            ) from None
        path_part = app_ref.partition(":")[0]
        inside = (staging / path_part).resolve()
        if not inside.is_relative_to(staging.resolve()) or not inside.is_file():
            raise InvalidInput(
                f"app {app_ref!r} is not a file in the bundle", field="app", app=app_ref
            )
        content = _digest(_listing(staging, [], limit))
        if expect is not None and content != expect:
            raise InvalidInput(
                f"the archive of bundle {expect} unpacks to files that hash to {content}",
                field="bundle",
                bundle=expect,
            )
        target = bundles_dir(data_dir) / content
        if not target.is_dir():
            _publish(staging, target)
    return Bundle(hash=content, root=str(target), app_ref=app_ref)


def existing(data_dir: Path, content: str, app_ref: str) -> Bundle | None:
    root = bundles_dir(data_dir) / content
    return Bundle(hash=content, root=str(root), app_ref=app_ref) if root.is_dir() else None


@contextlib.contextmanager
def _staging(data_dir: Path) -> Iterator[Path]:
    parent = bundles_dir(data_dir)
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish(staging: Path, target: Path) -> None:
    """Move a complete snapshot into place; a concurrent twin that won the race is kept."""
    try:
        staging.rename(target)
    except OSError:
        if not target.is_dir():
            raise
