"""Table keys as PostgreSQL text that sorts the way SQLite sorts the values themselves.

SQLite keeps a key column untyped: numbers compare numerically, strings by their bytes, and
numbers sort before strings. A PostgreSQL column has one type, so a key is stored as text
in the C collation: ``s`` + the string, or ``n`` + the number's IEEE bits made sortable (16
hex digits) + ``i``/``f`` and its exact spelling, so it reads back as the same int or float.
"""

from __future__ import annotations

import struct

from squall.model.tables import KeyValue

_SIGN = 1 << 63
_ALL = (1 << 64) - 1


class SortableText:
    def encode(self, value: KeyValue) -> str:
        if isinstance(value, str):
            return "s" + value
        (bits,) = struct.unpack(">Q", struct.pack(">d", float(value)))
        bits = bits ^ _ALL if bits & _SIGN else bits | _SIGN
        exact = f"i{value}" if isinstance(value, int) else f"f{value!r}"
        return f"n{bits:016x}{exact}"

    def decode(self, stored: str) -> KeyValue:
        if stored[0] == "s":
            return stored[1:]
        kind, exact = stored[17], stored[18:]
        return int(exact) if kind == "i" else float(exact)
