"""Keep a long-running server's startup heap out of the cyclic garbage collector.

Once the platform is up, the modules, the app and the platform's own structures make a heap
that lives as long as the process. The collector's full (oldest-generation) passes walk all
of it, about every few seconds under load, and each pass stops the event loop for tens of
milliseconds: a request's p99 becomes the pause. Frozen objects are still freed when their
last reference goes; only cycles among them wait for the next ``refreeze``.
"""

from __future__ import annotations

import gc

_frozen = False  # only servers freeze: in-process users (tests, scripts) keep the default


def freeze_startup() -> None:
    """Once the server accepts requests: collect what start-up left, freeze the rest."""
    global _frozen
    gc.collect()
    gc.freeze()
    _frozen = True


def refreeze() -> None:
    """After a deploy replaced the platform: let the old one's cycles be collected, then
    freeze the new heap (a no-op where ``freeze_startup`` never ran)."""
    if not _frozen:
        return
    gc.unfreeze()
    gc.collect()
    gc.freeze()
