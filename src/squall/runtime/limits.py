"""Resource limits: applied in the sandbox after fork, and read by the platform's watchdog."""

from __future__ import annotations

import ctypes
import os
import resource
import threading

MIB = 1024 * 1024
THREAD_STACK = 2 * MIB  # glibc's default is RLIMIT_STACK, 8 MiB
M_ARENA_MAX = -8  # glibc's mallopt parameter
_PAGE = os.sysconf("SC_PAGE_SIZE")


def apply_memory_limit(memory_mb: int) -> None:
    """Cap the address space at what the process maps now plus ``memory_mb``.

    The forked sandbox already maps the zygote's imports (which may be large, and
    are shared copy-on-write), so the function's budget is counted on top of them.
    An address-space limit counts what is reserved, not what is used: each thread's stack
    (8 MiB by default) and each malloc arena glibc makes for a thread (64 MiB), so a
    handler with a few threads would run out of a 128 MB budget having touched almost
    none of it. Threads here get THREAD_STACK stacks and share one malloc arena (CPython
    allocates small objects itself, under the GIL, so the shared arena costs little).
    """
    _share_one_malloc_arena()
    threading.stack_size(THREAD_STACK)
    limit = mapped_bytes() + memory_mb * MIB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _share_one_malloc_arena() -> None:
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: nothing to cap
        return
    mallopt(M_ARENA_MAX, 1)


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
