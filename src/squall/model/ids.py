"""Identifiers that sort by creation time, so ``ORDER BY id`` is newest-last."""

from __future__ import annotations

import secrets
import time


def new_id() -> str:
    return f"{time.time_ns() // 1000:014x}{secrets.token_hex(5)}"
