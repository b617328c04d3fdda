"""The server's heap freeze, each case in a fresh interpreter (freezing this one would keep
pytest's own cycles from ever being collected)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(script: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_refreeze_does_nothing_where_no_server_froze_the_heap() -> None:
    assert run(
        """
        import gc
        from squall.gateway.heap import refreeze
        refreeze()
        print(gc.get_freeze_count())
        """
    ) == "0"


def test_startup_heap_is_frozen_and_a_swap_lets_its_cycles_go() -> None:
    out = run(
        """
        import gc, weakref
        from squall.gateway.heap import freeze_startup, refreeze

        class Node:
            pass

        def cycle():
            a, b = Node(), Node()
            a.other, b.other = b, a
            return weakref.ref(a)

        garbage = cycle()              # unreachable before the freeze: collected by it
        kept = Node(); kept.me = kept  # reachable: frozen
        freeze_startup()
        frozen = gc.get_freeze_count()
        print(garbage() is None, frozen > 0)

        dropped = weakref.ref(kept)
        del kept                       # now a cycle among frozen objects
        gc.collect()
        print(dropped() is not None)   # frozen: the collector does not see it
        refreeze()
        print(dropped() is None, gc.get_freeze_count() > 0)
        """
    )
    assert out.split() == ["True", "True", "True", "True", "True"]
