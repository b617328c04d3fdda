"""Async workers queue invocations in a sandbox's channel; a fault must not spill over.

An invocation queued behind one that crashed or timed out never ran: it is sent
again elsewhere, and that costs it no attempt.
"""

from __future__ import annotations

import asyncio

import msgspec

APP = """
import os
import time

import squall

app = squall.App("pipeline")


@app.function(concurrency=1, timeout_s=1, retries=0)
def mixed(event, ctx):
    if event["mode"] == "crash":
        os._exit(9)
    if event["mode"] == "hang":
        time.sleep(30)
    return {"n": event["n"], "attempt": ctx.attempt}
"""


async def test_faults_do_not_cost_queued_invocations_an_attempt(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    modes = ["ok", "crash", "ok", "ok", "hang", "ok", "ok", "crash", "ok"]
    queued = await asyncio.gather(
        *(
            p.invoke_async("mixed", msgspec.json.encode({"mode": mode, "n": n}))
            for n, mode in enumerate(modes)
        )
    )
    await p.wait_idle(timeout=30)
    for n, (mode, accepted) in enumerate(zip(modes, queued, strict=True)):
        record = await p.get_invocation(accepted.id)
        assert record.attempt == 1, (n, mode, record.attempt)
        if mode == "ok":
            assert record.status == "succeeded", (n, record.error)
            assert msgspec.json.decode(record.result or b"") == {"n": n, "attempt": 1}
        else:
            assert record.status == "dead_lettered"
            assert record.error is not None
            expected = "SandboxCrashed" if mode == "crash" else "Timeout"
            assert record.error["type"] == expected, record.error
    letters = await p.list_dead_letters(function="mixed")
    assert len(letters) == 3
