"""The store backends the contract suite runs against: SQLite always, PostgreSQL when it is
reachable at ``SQUALL_TEST_POSTGRES`` (default: the local test database).

Each PostgreSQL case gets a schema of its own, dropped afterwards. An unreachable server
fails the case when ``CI=true`` (a missing service must not pass for a green run) and skips
it otherwise, with a reason naming the URL and the error.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

BACKENDS = ("sqlite", "postgres")
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("SQUALL_TEST_POSTGRES", DEFAULT_URL)


@functools.cache
def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used (None when it can); asked once per test run."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'squall[cluster]')"
    try:
        with psycopg.connect(postgres_url(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return " ".join(str(exc).split()) or type(exc).__name__  # one line in the summary
    return None


def require_postgres() -> str:
    """The server URL, or fail (CI) / skip (locally) this test when it is unreachable."""
    problem = postgres_problem()
    if problem is not None:
        message = f"PostgreSQL backend at {postgres_url()} unavailable: {problem}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: a missing PostgreSQL is a failure)")
        pytest.skip(f"{message} (set SQUALL_TEST_POSTGRES to run these cases)")
    return postgres_url()


def new_schema_url() -> str:
    """A PostgreSQL store URL naming a schema nobody uses yet (made on first open)."""
    base = require_postgres()
    return f"{base}{'&' if '?' in base else '?'}schema=t_{secrets.token_hex(6)}"


def drop(url: str) -> None:
    from squall.storage.postgres.store import drop_schema

    drop_schema(url)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL store URL with a fresh schema, dropped after the test."""
    url = new_schema_url()
    yield url
    drop(url)


def store_url_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The store URL of ``backend`` for one test (the sqlite file lives in ``tmp_path``)."""
    if backend == "sqlite":
        return str(tmp_path / "data" / "squall.db")
    url: str = request.getfixturevalue("pg_url")
    return url
