"""Helpers shared by the integration tests and the examples' end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

SQUALL = str(Path(sys.executable).parent / "squall")


def wait_for(probe: Callable[[], T | None], timeout: float = 15.0) -> T:
    """Poll ``probe`` until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


def start_squall(
    workdir: Path, *args: str, app: str = "app.py", env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Run `squall up` on a free port; return the process and its URL once it serves.

    ``env`` adds to (or overrides) this process's environment for the server.
    """
    out, err = workdir / "up.out", workdir / "up.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [SQUALL, "up", app, "--port", "0", *args],
            cwd=workdir,
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, **(env or {})},
        )

    def url() -> str | None:
        if proc.poll() is not None:
            raise AssertionError(f"squall up exited {proc.returncode}: {err.read_text()}")
        for line in out.read_text().splitlines():
            if line.strip().startswith("gateway"):
                return line.split()[-1]
        return None

    try:
        return proc, wait_for(url, timeout=30)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
