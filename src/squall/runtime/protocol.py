"""The wire protocol between the platform and its sandboxes.

Sandbox channel: a stream socket carrying length-prefixed msgpack frames
(4-byte big-endian length, then one tagged message). Zygote control channel: a
SOCK_SEQPACKET socket, one message per packet, so a fork request can carry the
sandbox's socket as an SCM_RIGHTS file descriptor.
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

from squall.model.config import Manifest
from squall.model.invocation import LogEntry
from squall.model.traces import UserSpan

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024


# --- platform -> sandbox -------------------------------------------------------------


class Invoke(msgspec.Struct, tag=True, array_like=True):
    id: str
    payload: bytes  # JSON
    attempt: int
    timeout_s: float  # the handler's deadline, counted from when the sandbox reads this
    trigger: str
    kind: str = "json"  # "json": payload is the event; "http": a JSON-encoded HttpRequest
    traceparent: str = ""  # the invocation's span (W3C trace context); "" when not traced


class CallReply(msgspec.Struct, tag=True, array_like=True):
    call_id: int
    value: bytes | None  # JSON
    error: dict[str, Any] | None


class Shutdown(msgspec.Struct, tag=True, array_like=True):
    pass


# --- sandbox -> platform -------------------------------------------------------------


class Started(msgspec.Struct, tag=True, array_like=True):
    pid: int
    rss_kb: int  # before init: the baseline the memory watchdog counts from


class Ready(msgspec.Struct, tag=True, array_like=True):
    init_ms: float
    error: dict[str, Any] | None
    logs: list[LogEntry]
    ended_at: float = 0.0  # epoch s when init ended, by the sandbox's clock (0: unknown)


class Result(msgspec.Struct, tag=True, array_like=True):
    id: str
    value: bytes | None  # response body; JSON unless `response` says otherwise
    error: dict[str, Any] | None
    duration_ms: float
    peak_rss_kb: int
    logs: list[LogEntry]
    response: dict[str, Any] | None = None  # status, headers, content_type of a squall.Response
    recycle: bool = False  # the sandbox exits after this result (e.g. after MemoryError)
    spans: list[UserSpan] = []  # made with ctx.span, finished during the invocation
    attributes: dict[str, Any] | None = None  # ctx.set_attribute outside any user span


class Call(msgspec.Struct, tag=True, array_like=True):
    """User code calling back into the platform (``ctx.invoke`` and, later, publish…)."""

    call_id: int
    op: str
    args: dict[str, Any]


ToSandbox = Invoke | CallReply | Shutdown
FromSandbox = Started | Ready | Result | Call

# --- zygote control channel ----------------------------------------------------------


class Fork(msgspec.Struct, tag=True, array_like=True):
    function: str
    memory_mb: int
    env: dict[str, str]
    secrets: dict[str, str] = {}  # only those the function declares; never logged


class Loaded(msgspec.Struct, tag=True, array_like=True):
    manifest: Manifest
    fork_safe: bool  # False when the app started threads at import time


class LoadFailed(msgspec.Struct, tag=True, array_like=True):
    error: dict[str, Any]


class Exited(msgspec.Struct, tag=True, array_like=True):
    pid: int
    status: int  # raw waitpid status


ToZygote = Fork | Shutdown
FromZygote = Loaded | LoadFailed | Exited

_encoder = msgspec.msgpack.Encoder()
encode = _encoder.encode
decode_from_sandbox = msgspec.msgpack.Decoder(FromSandbox).decode
decode_to_sandbox = msgspec.msgpack.Decoder(ToSandbox).decode
decode_from_zygote = msgspec.msgpack.Decoder(FromZygote).decode
decode_to_zygote = msgspec.msgpack.Decoder(ToZygote).decode


def frame(message: msgspec.Struct) -> bytes:
    body = _encoder.encode(message)
    return HEADER.pack(len(body)) + body


class FrameBuffer:
    """Accumulates stream bytes and yields whole frame bodies."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        offset = 0
        end = len(buf)
        while end - offset >= 4:
            (size,) = HEADER.unpack_from(buf, offset)
            if size > MAX_FRAME:
                raise ValueError(f"frame of {size} bytes exceeds the {MAX_FRAME}-byte limit")
            if end - offset - 4 < size:
                break
            frames.append(bytes(buf[offset + 4 : offset + 4 + size]))
            offset += 4 + size
        if offset:
            del buf[:offset]
        return frames
