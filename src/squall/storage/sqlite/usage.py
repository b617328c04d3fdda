"""The embedded backend's usage reads: finished invocation records over a window, dead-letter
depths (see ``UsageStore``)."""

from __future__ import annotations

from typing import Any

import msgspec

from squall.model.invocation import FINISHED, InvocationRecord
from squall.storage.sqlite.db import Database

_unpack_record = msgspec.msgpack.Decoder(InvocationRecord).decode
_FINISHED = tuple(sorted(str(status) for status in FINISHED))


class UsageReads:
    """The ``UsageStore`` reads, for ``SqliteStore``."""

    _db: Database[Any]

    async def finished_invocations(
        self, since: float, until: float | None = None, function: str | None = None
    ) -> list[InvocationRecord]:
        clauses = ["created_at >= ?", f"status IN ({', '.join('?' * len(_FINISHED))})"]
        params: list[Any] = [since, *_FINISHED]
        if until is not None:
            clauses.append("created_at < ?")
            params.append(until)
        if function is not None:
            clauses.append("function = ?")
            params.append(function)
        rows = self._db.read(
            f"SELECT record FROM invocations WHERE {' AND '.join(clauses)} ORDER BY id", params
        )
        return [_unpack_record(row[0]) for row in rows]

    async def dead_letter_counts(self) -> dict[str, int]:
        rows = self._db.read("SELECT function, COUNT(*) FROM dead_letters GROUP BY function")
        return {str(row[0]): int(row[1]) for row in rows}
