"""Helpers shared by the integration tests and the examples' end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

SQUALL = str(Path(sys.executable).parent / "squall")

# `start_squall` bootstraps every platform with this admin key unless told otherwise.
ADMIN_KEY = "sq_test-admin-key-0123456789abcdefghijklmnopqrstuv"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
# A config file that does not exist, so no test reads the developer's `squall login`.
NO_CONFIG = str(Path(tempfile.gettempdir()) / f"squall-tests-{os.getpid()}" / "config.json")


def client_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI subprocess: this one, with the admin key as its API key."""
    return {**os.environ, "SQUALL_API_KEY": ADMIN_KEY, "SQUALL_CONFIG": NO_CONFIG, **extra}


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
    workdir: Path,
    *args: str,
    app: str = "app.py",
    env: dict[str, str] | None = None,
    command: str = "up",
) -> tuple[subprocess.Popen[bytes], str]:
    """Run `squall up` (or ``command``: dev) on a free port; return the process and its URL
    once it serves.

    ``env`` adds to (or overrides) this process's environment for the server; the admin key
    is ``ADMIN_KEY`` unless ``env`` sets ``SQUALL_ADMIN_KEY`` (``""``: let it generate one).
    """
    out, err = workdir / "up.out", workdir / "up.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [SQUALL, command, app, "--port", "0", *args],
            cwd=workdir,
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, "SQUALL_ADMIN_KEY": ADMIN_KEY, **(env or {})},
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


def our_processes(workdir: Path, data: Path, exclude: set[int]) -> dict[int, str]:
    """pid -> cmdline of live squall processes started from ``workdir`` or using ``data``.

    The zygote is ``python -m squall.runtime.zygote zygote app.py FD`` run in the platform's
    working directory; sandboxes are forked from it, so they share its cmdline and cwd.
    """
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in exclude:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if state == "Z":
            continue
        if str(data) in cmdline or ("squall" in cmdline and cwd == str(workdir)):
            found[int(entry)] = cmdline
    return found


def wait_until_gone(workdir: Path, data: Path, exclude: set[int], timeout: float) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while (left := our_processes(workdir, data, exclude)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
