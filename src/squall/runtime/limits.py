"""Resource limits: applied in the sandbox after fork, and read by the platform's watchdog."""

from __future__ import annotations

import os
import resource

MIB = 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE")


def apply_memory_limit(memory_mb: int) -> None:
    """Cap the address space at what the process maps now plus ``memory_mb``.

    The forked sandbox already maps the zygote's imports (which may be large, and
    are shared copy-on-write), so the function's budget is counted on top of them.
    """
    limit = mapped_bytes() + memory_mb * MIB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def mapped_bytes() -> int:
    """Address space this process maps now."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * _PAGE


def rss_kb(pid: int) -> int | None:
    """Resident set size of ``pid`` in KiB, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE // 1024
    except (OSError, IndexError, ValueError):
        return None


def peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
