"""Bring tables made by an older version up to the current columns.

``CREATE TABLE IF NOT EXISTS`` leaves an existing table as it was, so a column added later
is added here, once, with ``ALTER TABLE … ADD COLUMN`` (nullable: old rows read as NULL).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping


def add_missing_columns(conn: sqlite3.Connection, table: str, columns: Mapping[str, str]) -> None:
    """Add each of ``columns`` (name -> SQL type) that ``table`` does not have yet."""
    present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    for name, decl in columns.items():
        if name not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")
