"""The control store on SQLite and on PostgreSQL: keys hashed, revocation, bootstrap,
secrets encrypted at rest."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from backends import store_url_for
from cryptography.fernet import Fernet

from squall.errors import ConfigError, InvalidInput, NotFound, SquallError
from squall.security.cipher import load_cipher
from squall.security.keys import bootstrap_admin_key, hash_key
from squall.storage.control import ControlStore, open_control_store
from squall.storage.postgres.url import parse_url


class Where:
    """Where a control store of one backend keeps its rows, read and written around it."""

    def __init__(self, path: Path, url: str | None) -> None:
        self.path = path
        self.url = url  # None: the SQLite file at ``path``

    async def open(self) -> ControlStore:
        return await open_control_store(self.path, self.url)

    def dump(self) -> bytes:
        """Every byte the backend holds for the control tables (SQLite: the file and WAL)."""
        if self.url is None:
            data = self.path.read_bytes()
            wal = self.path.with_name(self.path.name + "-wal")
            return data + (wal.read_bytes() if wal.exists() else b"")
        parts: list[bytes] = []
        with self._pg() as conn:
            for table in ("api_keys", "secrets"):
                for row in conn.execute(f"SELECT * FROM {table}").fetchall():
                    parts += [v if isinstance(v, bytes) else str(v).encode() for v in row]
        return b"\n".join(parts)

    def execute(self, sql: str) -> None:
        """Run ``sql`` on the tables directly, behind the store's back."""
        if self.url is None:
            with sqlite3.connect(self.path) as conn:
                conn.execute(sql)
            return
        with self._pg() as conn:
            conn.execute(sql.encode())

    def _pg(self) -> psycopg.Connection[Any]:
        assert self.url is not None
        return psycopg.connect(parse_url(self.url).conninfo, autocommit=True)


@pytest.fixture
def where(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Where:
    url = None if backend == "sqlite" else store_url_for(backend, tmp_path, request)
    return Where(tmp_path / "squall.db", url)


@pytest.fixture
async def store(where: Where, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ControlStore]:
    monkeypatch.delenv("SQUALL_MASTER_KEY", raising=False)
    control = await where.open()
    yield control
    await control.close()


async def test_keys_are_stored_hashed_and_authenticate(store: ControlStore, where: Where) -> None:
    key, text = await store.create_key("ci", ["invoke", "read"])
    assert text.startswith("sq_") and len(text) > 40
    assert key.prefix == text[:10] and key.scopes == ("invoke", "read")
    assert text.encode() not in where.dump()
    assert hash_key(text).encode() in where.dump()
    found = await store.authenticate(text)
    assert found is not None and found.id == key.id
    assert await store.authenticate(text + "x") is None
    listed = await store.list_keys()
    assert [k.id for k in listed] == [key.id]
    assert listed[0].last_used_at is not None


async def test_revoked_keys_stop_authenticating(store: ControlStore) -> None:
    key, text = await store.create_key("ci", ["read"])
    revoked = await store.revoke_key(key.id)
    assert revoked.revoked_at is not None
    assert await store.authenticate(text) is None
    assert (await store.revoke_key(key.id)).revoked_at == revoked.revoked_at
    with pytest.raises(NotFound):
        await store.revoke_key("key_nope")


async def test_keys_survive_a_reopen(where: Where, store: ControlStore) -> None:
    _, text = await store.create_key("ci", ["read"])
    again = await where.open()
    try:
        assert await again.authenticate(text) is not None
    finally:
        await again.close()


async def test_bad_scopes_and_names_are_refused(store: ControlStore) -> None:
    with pytest.raises(InvalidInput) as info:
        await store.create_key("ci", ["root"])
    assert "'root'" in info.value.message
    with pytest.raises(InvalidInput):
        await store.create_key("", ["read"])


async def test_bootstrap_creates_one_admin_key_once(store: ControlStore) -> None:
    first = await bootstrap_admin_key(store, {})
    assert first is not None
    admin = await store.authenticate(first)
    assert admin is not None and admin.allows("admin") and admin.allows("invoke")
    assert await bootstrap_admin_key(store, {}) is None
    assert len(await store.list_keys()) == 1


async def test_bootstrap_from_the_environment(store: ControlStore) -> None:
    chosen = "sq_chosen-by-the-operator-123456"
    assert await bootstrap_admin_key(store, {"SQUALL_ADMIN_KEY": chosen}) is None
    assert await store.authenticate(chosen) is not None


async def test_a_short_environment_key_is_a_config_error(store: ControlStore) -> None:
    with pytest.raises(ConfigError) as info:
        await bootstrap_admin_key(store, {"SQUALL_ADMIN_KEY": "short"})
    assert info.value.field == "SQUALL_ADMIN_KEY"
    assert not await store.has_keys()


async def test_secrets_are_encrypted_at_rest(store: ControlStore, where: Where) -> None:
    value = "hunter2-correct-horse-battery-staple"
    info = await store.set_secret("DB_PASSWORD", value)
    assert info.name == "DB_PASSWORD"
    assert value.encode() not in where.dump()
    assert await store.secret_values(["DB_PASSWORD", "MISSING"]) == {"DB_PASSWORD": value}
    await store.set_secret("DB_PASSWORD", "rotated")
    assert await store.secret_values(["DB_PASSWORD"]) == {"DB_PASSWORD": "rotated"}
    assert [s.name for s in await store.list_secrets()] == ["DB_PASSWORD"]
    await store.delete_secret("DB_PASSWORD")
    assert await store.list_secrets() == []
    with pytest.raises(NotFound):
        await store.delete_secret("DB_PASSWORD")


async def test_a_token_moved_to_another_name_is_refused(
    store: ControlStore, where: Where
) -> None:
    await store.set_secret("A", "alpha")
    await store.set_secret("B", "beta")
    where.execute(
        "UPDATE secrets SET value = (SELECT value FROM secrets WHERE name = 'A') WHERE name = 'B'"
    )
    with pytest.raises(SquallError) as info:
        await store.secret_values(["B"])
    assert "alpha" not in str(info.value.to_dict())


@pytest.mark.parametrize("name", ["1BAD", "has space", "semi;colon", ""])
async def test_bad_secret_names_are_refused(store: ControlStore, name: str) -> None:
    with pytest.raises(InvalidInput):
        await store.set_secret(name, "v")


def test_the_master_key_file_is_created_owner_only(tmp_path: Path) -> None:
    load_cipher(tmp_path, {})
    mode = stat.S_IMODE((tmp_path / "master.key").stat().st_mode)
    assert mode == 0o600
    first = (tmp_path / "master.key").read_bytes()
    load_cipher(tmp_path, {})
    assert (tmp_path / "master.key").read_bytes() == first


def test_the_master_key_from_the_environment(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    cipher = load_cipher(tmp_path, {"SQUALL_MASTER_KEY": key.decode()})
    assert Fernet(key).decrypt(cipher.encrypt(b"x")) == b"x"
    assert not (tmp_path / "master.key").exists()
    with pytest.raises(ConfigError) as info:
        load_cipher(tmp_path, {"SQUALL_MASTER_KEY": "not-a-key"})
    assert "SQUALL_MASTER_KEY" in info.value.message
