"""The sandbox side of the channel keeps invocations that arrive while a call waits."""

from __future__ import annotations

import socket

from squall.runtime.protocol import (
    Call,
    CallReply,
    FrameBuffer,
    Invoke,
    decode_from_sandbox,
    frame,
)
from squall.runtime.worker import Link


def test_an_invocation_pipelined_during_a_call_is_served_after_it() -> None:
    platform, sandbox = socket.socketpair()
    try:
        link = Link(sandbox)
        queued = Invoke("second", b"{}", 1, 5.0, "async")
        # The platform pipelines the next invocation before it answers the running one's call.
        platform.sendall(frame(queued) + frame(CallReply(1, b'"ok"', None)))
        assert link.call("publish", {"type": "t"}) == b'"ok"'
        assert link.recv() == queued
        [sent] = FrameBuffer().feed(platform.recv(65536))
        assert decode_from_sandbox(sent) == Call(1, "publish", {"type": "t"})
    finally:
        platform.close()
        sandbox.close()
