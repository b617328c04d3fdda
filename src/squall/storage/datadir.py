"""One platform process per data directory, enforced with an advisory lock.

Two processes on one embedded store would both release each other's leases at start
and deliver the same work twice; the second one is refused instead.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from squall.errors import ConfigError


class DataDirLock:
    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._file = (path / "squall.lock").open("a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "unknown"
            self._file.close()
            raise ConfigError(
                f"data dir '{path}' is in use by another Squall process (pid {holder}):"
                " stop it, or give this one its own --data-dir",
                field="data_dir",
                pid=holder,
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()

    def release(self) -> None:
        if not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
