"""Bundles in the store on each backend: an archive committed with the versions made of it,
kept once per hash, unpacked by a node that lacks it into its own data dir, checked against
its hash; an exclusive (embedded) store keeps none."""

from __future__ import annotations

import asyncio
import io
import tarfile
from pathlib import Path

import pytest

import squall
from squall.engine.deploy.bundle import existing, snapshot
from squall.engine.deploy.stored import StoredBundles
from squall.engine.deploy.versions import VersionBook
from squall.engine.platform import restore
from squall.errors import InvalidInput, SquallError
from squall.model.config import Manifest
from squall.storage.deploys import PutBundle
from squall.storage.sqlite.store import SqliteStore

APP = "import squall\napp = squall.App('stored')\n"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "lib").mkdir(parents=True)
    (root / "app.py").write_text(APP)
    (root / "lib" / "helpers.py").write_text("X = 1\n")
    return root


@pytest.fixture
def shared(store: SqliteStore) -> SqliteStore:
    """The store as the nodes of a cluster open it (``BrokeredStore`` says so)."""
    store.exclusive = False
    return store


def _manifest() -> Manifest:
    app = squall.App("stored")

    @app.function()
    def work(event: object, ctx: squall.Context) -> None:
        return None

    return app.manifest()


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
    }


async def test_an_archive_is_kept_once_per_hash_and_read_back_as_written(
    store: SqliteStore,
) -> None:
    assert not await store.has_bundle("b1")
    assert await store.get_bundle("b1") is None
    data = bytes(range(256)) * 40  # every byte value: BLOB and bytea keep them all
    await store.commit([PutBundle("b1", data, 1.0)])
    assert await store.has_bundle("b1")
    assert await store.get_bundle("b1") == data
    await store.commit([PutBundle("b1", b"other", 2.0)])  # same hash, same files: kept
    assert await store.get_bundle("b1") == data
    assert store._db.read("SELECT size, created_at FROM bundles WHERE hash = ?", ("b1",)) == [
        (len(data), 1.0)
    ]


async def test_a_deploy_commits_its_archive_with_its_versions(
    shared: SqliteStore, source: Path, tmp_path: Path
) -> None:
    gateway = StoredBundles(shared, tmp_path / "gateway")
    bundle = snapshot(str(source / "app.py"), gateway.data_dir)
    book = VersionBook(shared)
    await book.load()
    code = await gateway.keep(bundle)
    assert [type(op) for op in code] == [PutBundle]
    new, deployment = await book.record(_manifest(), bundle.hash, "app.py", "ann", code=code)
    assert [v.bundle for v in new] == [bundle.hash] and deployment is not None
    assert await shared.has_bundle(bundle.hash)
    assert await gateway.keep(bundle) == []  # stored already: nothing packed again


async def test_an_unchanged_deploy_stores_a_missing_archive_alone(
    shared: SqliteStore, source: Path, tmp_path: Path
) -> None:
    """Versions recorded before the store kept archives get theirs at the next start."""
    gateway = StoredBundles(shared, tmp_path / "gateway")
    bundle = snapshot(str(source / "app.py"), gateway.data_dir)
    book = VersionBook(shared)
    await book.load()
    await book.record(_manifest(), bundle.hash, "app.py", "ann")
    assert not await shared.has_bundle(bundle.hash)
    again = await book.record(
        _manifest(), bundle.hash, "app.py", "ann", code=await gateway.keep(bundle)
    )
    assert again == ([], None)
    assert await shared.has_bundle(bundle.hash)
    assert len(await shared.list_deployments()) == 1


async def test_a_node_without_the_bundle_unpacks_it_from_the_store(
    shared: SqliteStore, source: Path, tmp_path: Path
) -> None:
    gateway = StoredBundles(shared, tmp_path / "gateway")
    bundle = snapshot(str(source / "app.py"), gateway.data_dir)
    # The gateway's zygote imported from the snapshot: its bytecode is no part of the code.
    (Path(bundle.root) / "__pycache__").mkdir()
    (Path(bundle.root) / "__pycache__" / "app.cpython-312.pyc").write_bytes(b"\0")
    await shared.commit(await gateway.keep(bundle))
    invoker = StoredBundles(shared, tmp_path / "invoker")
    assert existing(invoker.data_dir, bundle.hash, "app.py") is None
    found = await invoker.find(bundle.hash, "app.py")
    assert found is not None and found.hash == bundle.hash
    assert Path(found.root).parent == invoker.data_dir / "bundles"
    assert _files(Path(found.root)) == _files(source)
    assert [p.name for p in (invoker.data_dir / "bundles").iterdir()] == [bundle.hash]
    assert await invoker.find("0" * 20, "app.py") is None  # in neither place


async def test_a_node_started_without_an_app_restores_the_last_deployment_from_the_store(
    shared: SqliteStore, source: Path, tmp_path: Path
) -> None:
    """``squall node`` with no APP on a fresh data dir serves what was deployed last."""
    gateway = StoredBundles(shared, tmp_path / "gateway")
    bundle = snapshot(str(source / "app.py"), gateway.data_dir)
    made = VersionBook(shared)
    await made.load()
    await made.record(_manifest(), bundle.hash, "app.py", "ann", code=await gateway.keep(bundle))
    book = VersionBook(shared)
    await book.load()
    fresh = StoredBundles(shared, tmp_path / "fresh")
    prepared = await restore(book, fresh)
    try:
        assert prepared.bundle.hash == bundle.hash
        assert Path(prepared.bundle.root).parent == fresh.data_dir / "bundles"
        assert [f.name for f in prepared.manifest.functions] == ["work"]
    finally:
        await prepared.launcher.close()


async def test_an_archive_that_does_not_hash_to_its_name_is_refused(
    shared: SqliteStore, tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("app.py")
        info.size = len(APP)
        tar.addfile(info, io.BytesIO(APP.encode()))
    await shared.commit([PutBundle("f" * 20, buffer.getvalue(), 1.0)])
    invoker = StoredBundles(shared, tmp_path / "invoker")
    with pytest.raises(InvalidInput, match=f"bundle {'f' * 20} unpacks to files that hash"):
        await invoker.find("f" * 20, "app.py")
    assert list((invoker.data_dir / "bundles").iterdir()) == []  # nothing put in place


async def test_a_bundle_that_cannot_be_unpacked_fails_as_a_squall_error(
    shared: SqliteStore, source: Path, tmp_path: Path
) -> None:
    """The dispatcher fails (and retries) the calls that needed it, naming the bundle."""
    gateway = StoredBundles(shared, tmp_path / "gateway")
    bundle = snapshot(str(source / "app.py"), gateway.data_dir)
    await shared.commit(await gateway.keep(bundle))
    invoker = StoredBundles(shared, tmp_path / "invoker")
    invoker.data_dir.mkdir()
    (invoker.data_dir / "bundles").write_text("a file where the directory goes")
    with pytest.raises(SquallError, match=f"bundle {bundle.hash} could not be fetched"):
        await invoker.find(bundle.hash, "app.py")


async def test_prefetch_unpacks_missing_bundles_in_the_background(
    shared: SqliteStore, source: Path, tmp_path: Path
) -> None:
    gateway = StoredBundles(shared, tmp_path / "gateway")
    bundle = snapshot(str(source / "app.py"), gateway.data_dir)
    await shared.commit(await gateway.keep(bundle))
    invoker = StoredBundles(shared, tmp_path / "invoker")
    invoker.prefetch([(bundle.hash, "app.py"), (bundle.hash, "app.py")])
    for _ in range(200):
        if existing(invoker.data_dir, bundle.hash, "app.py") is not None:
            break
        await asyncio.sleep(0.01)
    assert existing(invoker.data_dir, bundle.hash, "app.py") is not None
    await invoker.close()


async def test_an_exclusive_store_keeps_no_archives(
    store: SqliteStore, source: Path, tmp_path: Path
) -> None:
    """The embedded store lives beside bundles/ in the one data dir: nothing to share."""
    local = StoredBundles(store, tmp_path / "data")
    bundle = snapshot(str(source / "app.py"), local.data_dir)
    assert not local.shared and await local.keep(bundle) == []
    await store.commit([PutBundle(bundle.hash, b"not read", 1.0)])
    assert await StoredBundles(store, tmp_path / "elsewhere").find(bundle.hash, "app.py") is None
