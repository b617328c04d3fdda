"""API keys and secrets in PostgreSQL: the embedded control store's code on the adapter.

The tables sit beside the store's (same schema); the master key that seals secrets stays
with the data dir (``SQUALL_MASTER_KEY`` or ``master.key``), never in the database.
"""

from __future__ import annotations

import sqlite3
from typing import cast

from cryptography.fernet import Fernet

from squall.storage.postgres.connection import PgConnection
from squall.storage.postgres.dialect import schema_keys
from squall.storage.postgres.store import prepare_schema, refused
from squall.storage.postgres.url import parse_url
from squall.storage.sqlite.control import SCHEMA, SqliteControlStore


def open_postgres_control(url: str, cipher: Fernet) -> SqliteControlStore:
    parsed = parse_url(url)
    with refused(url):
        prepare_schema(parsed, SCHEMA, {})
        conn = PgConnection(parsed.conninfo, schema_keys(SCHEMA))
    try:
        # The adapter speaks the subset of sqlite3.Connection the control store uses.
        return SqliteControlStore(cast(sqlite3.Connection, conn), cipher)
    except BaseException:
        conn.close()
        raise
