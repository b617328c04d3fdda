"""Bundles: snapshots named by their content, packed for upload, unpacked with care."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from squall.engine.deploy.bundle import pack, snapshot, split_app_ref, unpack
from squall.errors import ConfigError, InvalidInput

APP = "import squall\napp = squall.App('b')\n"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "lib").mkdir(parents=True)
    (root / "app.py").write_text(APP)
    (root / "lib" / "helpers.py").write_text("X = 1\n")
    return root


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_the_hash_is_stable_and_names_the_copy(source: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = snapshot(str(source / "app.py"), data)
    again = snapshot(str(source / "app.py"), data)
    assert first.hash == again.hash
    assert first.app_ref == "app.py"
    assert Path(first.app_path).read_text() == APP
    assert (Path(first.root) / "lib" / "helpers.py").is_file()


def test_a_file_edit_changes_the_hash_and_the_old_snapshot_stays(
    source: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    before = snapshot(str(source / "app.py"), data)
    (source / "lib" / "helpers.py").write_text("X = 2\n")
    after = snapshot(str(source / "app.py"), data)
    assert after.hash != before.hash
    assert (Path(before.root) / "lib" / "helpers.py").read_text() == "X = 1\n"


def test_a_renamed_file_changes_the_hash(source: Path, tmp_path: Path) -> None:
    before = snapshot(str(source / "app.py"), tmp_path / "d1")
    (source / "lib" / "helpers.py").rename(source / "lib" / "other.py")
    assert snapshot(str(source / "app.py"), tmp_path / "d2").hash != before.hash


def test_caches_and_the_data_dir_are_left_out(source: Path) -> None:
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "app.cpython-312.pyc").write_bytes(b"\0")
    (source / "stale.pyc").write_bytes(b"\0")
    data = source / ".squall"
    clean = snapshot(str(source / "app.py"), data)
    snapshot(str(source / "app.py"), data)  # the data dir now holds a bundle: still skipped
    assert snapshot(str(source / "app.py"), data).hash == clean.hash
    files = sorted(p.relative_to(clean.root).as_posix() for p in Path(clean.root).rglob("*"))
    assert files == ["app.py", "lib", "lib/helpers.py"]


def test_pack_then_unpack_gives_the_snapshot_hash(source: Path, tmp_path: Path) -> None:
    local = snapshot(str(source / "app.py"), tmp_path / "local")
    data, inside = pack(str(source / "app.py"))
    remote = unpack(data, inside, tmp_path / "remote")
    assert inside == "app.py"
    assert remote.hash == local.hash
    assert Path(remote.app_path).read_text() == APP


def test_snapshot_over_the_limit_names_the_bundle(source: Path, tmp_path: Path) -> None:
    (source / "data.bin").write_bytes(os.urandom(2048))
    with pytest.raises(InvalidInput) as caught:
        snapshot(str(source / "app.py"), tmp_path / "data", limit=1024)
    assert caught.value.field == "bundle"
    with pytest.raises(InvalidInput):
        pack(str(source / "app.py"), limit=1024)


def test_unpack_refuses_an_upload_over_the_limit(tmp_path: Path) -> None:
    data = _tar(_file("app.py", APP.encode()), _file("big.bin", os.urandom(4096)))
    with pytest.raises(InvalidInput, match="size limit") as caught:
        unpack(data, "app.py", tmp_path, limit=len(data) - 1)
    assert caught.value.field == "bundle"
    # Small compressed, large unpacked: the members' sizes count too.
    zeros = _tar(_file("app.py", APP.encode()), _file("zeros.bin", bytes(100_000)))
    assert len(zeros) < 10_000
    with pytest.raises(InvalidInput, match="unpacked bundle is over"):
        unpack(zeros, "app.py", tmp_path, limit=10_000)


def test_unpack_refuses_paths_that_leave_the_bundle(tmp_path: Path) -> None:
    data = _tar(_file("app.py", APP.encode()), _file("../escape.py", b"X = 1\n"))
    with pytest.raises(InvalidInput) as caught:
        unpack(data, "app.py", tmp_path / "data")
    assert caught.value.field == "bundle"
    assert not (tmp_path / "data" / "escape.py").exists()
    assert not (tmp_path / "escape.py").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_unpack_refuses_links(tmp_path: Path, kind: bytes) -> None:
    link = tarfile.TarInfo("lib.py")
    link.type = kind
    link.linkname = "/etc/passwd"
    data = _tar(_file("app.py", APP.encode()), (link, None))
    with pytest.raises(InvalidInput, match="links and devices are refused"):
        unpack(data, "app.py", tmp_path)


def test_unpack_needs_the_app_file_inside(tmp_path: Path) -> None:
    data = _tar(_file("app.py", APP.encode()))
    with pytest.raises(InvalidInput) as caught:
        unpack(data, "main.py", tmp_path)
    assert caught.value.field == "app"
    with pytest.raises(InvalidInput) as caught:
        unpack(data, "../app.py", tmp_path)
    assert caught.value.field == "app"


def test_unpack_refuses_what_is_not_a_gzipped_tar(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a gzipped tar") as caught:
        unpack(b"PK\x03\x04 not a tar", "app.py", tmp_path)
    assert caught.value.field == "bundle"
    assert list((tmp_path / "bundles").iterdir()) == []  # no staging left behind


def test_a_module_app_or_a_missing_file_cannot_be_bundled(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a module"):
        split_app_ref("shop.app:app")
    with pytest.raises(ConfigError, match="does not exist"):
        split_app_ref(str(tmp_path / "missing.py"))
    (tmp_path / "app.py").write_text(APP)
    assert split_app_ref(f"{tmp_path / 'app.py'}:app") == (tmp_path, "app.py:app")
