"""Helpers shared by the benchmark scripts.

Every script prints JSON lines ``{"metric", "value", "unit", ...}`` on stdout and nothing else;
progress and diagnostics go to stderr.
"""

from __future__ import annotations

import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def emit(metric: str, value: float | int, unit: str, **extra: Any) -> None:
    """Print one result line on stdout."""
    if isinstance(value, float):
        value = round(value, 3) if abs(value) >= 1 else round(value, 6)
    line: dict[str, Any] = {"metric": metric, "value": value, "unit": unit}
    line.update(extra)
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def log(message: str) -> None:
    """Progress for humans, on stderr."""
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def percentile(samples: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) by linear interpolation between closest ranks."""
    if not samples:
        return math.nan
    data = sorted(samples)
    k = (len(data) - 1) * p / 100.0
    lo = math.floor(k)
    hi = math.ceil(k)
    if lo == hi:
        return float(data[lo])
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def ratio(numerator: float, denominator: float) -> float:
    if denominator <= 0 or math.isnan(denominator) or math.isnan(numerator):
        return math.nan
    return numerator / denominator


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def emit_machine(script: str) -> None:
    """One line describing where the numbers came from."""
    emit(
        "machine_cpus",
        os.cpu_count() or 0,
        "cores",
        script=script,
        cpu_model=cpu_model(),
        python=platform.python_version(),
        kernel=platform.release(),
    )


def squall_available() -> bool:
    try:
        import squall.engine.platform  # noqa: F401
    except ImportError:
        return False
    return True


def write_file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT) -> None:
    """Ask ``proc`` to stop with ``sig``; kill it if it has not within 20 s."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def squall_up(workdir: Path, app_source: str, admin_key: str) -> Iterator[str]:
    """``squall up`` on ``app_source`` in ``workdir``, on a free port; yields its URL."""
    write_file(workdir / "app.py", app_source)
    out, err = workdir / "up.out", workdir / "up.err"
    squall = str(Path(sys.executable).parent / "squall")
    env = {**os.environ, "SQUALL_ADMIN_KEY": admin_key}
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [squall, "up", "app.py", "--port", "0"],
            cwd=workdir,
            stdout=stdout,
            stderr=stderr,
            env=env,
        )
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"squall up did not start: {err.read_text()[-2000:]}")
            for line in out.read_text().splitlines():
                if line.strip().startswith("gateway"):
                    url = line.split()[-1]
            time.sleep(0.05)
        yield url
    finally:
        stop_process(proc)
