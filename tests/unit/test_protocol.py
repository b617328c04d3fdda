"""The sandbox wire protocol: framing and message round trips."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from squall.model.config import FunctionConfig, Manifest
from squall.model.invocation import LogEntry
from squall.runtime import protocol
from squall.runtime.protocol import (
    HEADER,
    MAX_FRAME,
    Call,
    CallReply,
    Exited,
    Fork,
    FrameBuffer,
    Invoke,
    Loaded,
    LoadFailed,
    Ready,
    Result,
    Shutdown,
    Started,
    frame,
)

LOG = LogEntry(1_700_000_000.25, "info", "stdout", "hello ✓")

TO_SANDBOX = [
    Invoke("inv1", b'{"a": 1}', 2, 30.0, "async"),
    CallReply(7, b"[1,2]", None),
    CallReply(8, None, {"type": "NotFound", "message": "no such function", "field": "function"}),
    Shutdown(),
]
FROM_SANDBOX = [
    Started(1234, 20480),
    Ready(3.5, None, [LOG]),
    Ready(0.1, {"type": "InitError", "message": "boom"}, []),
    Result("inv1", b'{"ok":true}', None, 1.25, 30000, [LOG, LOG]),
    Result(
        "inv2",
        b"\x00\xff",
        None,
        0.5,
        1,
        [],
        {"status": 201, "headers": {"x-a": "b"}, "content_type": "application/octet-stream"},
        True,
    ),
    Result("inv3", None, {"type": "FunctionError", "message": "x"}, 2.0, 1, []),
    Call(1, "invoke", {"function": "f", "payload": b"null", "async": True}),
]
MANIFEST = Manifest(
    app="shop",
    version="abc123",
    functions=[FunctionConfig(name="a", env={"K": "V"}, on_success="b"), FunctionConfig(name="b")],
)
TO_ZYGOTE = [Fork("resize", 256, {"A": "1"}), Shutdown()]
FROM_ZYGOTE = [
    Loaded(MANIFEST, True),
    LoadFailed({"type": "ConfigError", "message": "bad", "field": "app"}),
    Exited(99, 9),
]


def unframe(data: bytes) -> bytes:
    (size,) = HEADER.unpack_from(data)
    assert size == len(data) - 4
    return data[4:]


@pytest.mark.parametrize("message", TO_SANDBOX, ids=lambda m: type(m).__name__)
def test_to_sandbox_round_trip(message: msgspec.Struct) -> None:
    decoded = protocol.decode_to_sandbox(unframe(frame(message)))
    assert type(decoded) is type(message)
    assert decoded == message


@pytest.mark.parametrize("message", FROM_SANDBOX, ids=lambda m: type(m).__name__)
def test_from_sandbox_round_trip(message: msgspec.Struct) -> None:
    decoded = protocol.decode_from_sandbox(unframe(frame(message)))
    assert type(decoded) is type(message)
    assert decoded == message


@pytest.mark.parametrize("message", TO_ZYGOTE, ids=lambda m: type(m).__name__)
def test_to_zygote_round_trip(message: msgspec.Struct) -> None:
    decoded = protocol.decode_to_zygote(protocol.encode(message))
    assert decoded == message


@pytest.mark.parametrize("message", FROM_ZYGOTE, ids=lambda m: type(m).__name__)
def test_from_zygote_round_trip(message: msgspec.Struct) -> None:
    decoded = protocol.decode_from_zygote(protocol.encode(message))
    assert type(decoded) is type(message)
    assert decoded == message


def test_result_defaults_survive_round_trip() -> None:
    decoded = protocol.decode_from_sandbox(unframe(frame(Result("i", b"1", None, 1.0, 1, []))))
    assert isinstance(decoded, Result)
    assert decoded.response is None
    assert decoded.recycle is False


def test_decoder_rejects_a_message_of_the_other_direction() -> None:
    with pytest.raises(msgspec.ValidationError):
        protocol.decode_to_sandbox(unframe(frame(Started(1, 1))))


MESSAGES = [*TO_SANDBOX, *FROM_SANDBOX]


@given(
    st.lists(st.sampled_from(range(len(MESSAGES))), min_size=1, max_size=12),
    st.data(),
)
def test_frames_reassemble_across_arbitrary_splits(indexes: list[int], data: st.DataObject) -> None:
    messages = [MESSAGES[i] for i in indexes]
    stream = b"".join(frame(m) for m in messages)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=40)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    buffer = FrameBuffer()
    bodies: list[bytes] = []
    for chunk in chunks:
        bodies += buffer.feed(chunk)
    assert bodies == [unframe(frame(m)) for m in messages]
    decoded = [
        protocol.decode_to_sandbox(b)
        if isinstance(m, Invoke | CallReply | Shutdown)
        else protocol.decode_from_sandbox(b)
        for m, b in zip(messages, bodies, strict=True)
    ]
    assert decoded == messages
    assert buffer.feed(b"") == []


def test_byte_at_a_time() -> None:
    message = Result("inv", b"x" * 1000, None, 1.0, 1, [LOG] * 10)
    data = frame(message) * 3
    buffer = FrameBuffer()
    bodies = [body for i in range(len(data)) for body in buffer.feed(data[i : i + 1])]
    assert len(bodies) == 3
    assert all(protocol.decode_from_sandbox(b) == message for b in bodies)


def test_empty_body_frame() -> None:
    assert FrameBuffer().feed(HEADER.pack(0) + HEADER.pack(1) + b"z") == [b"", b"z"]


def test_oversize_frame_rejected() -> None:
    buffer = FrameBuffer()
    with pytest.raises(ValueError, match=str(MAX_FRAME)):
        buffer.feed(HEADER.pack(MAX_FRAME + 1))


def test_oversize_frame_rejected_after_split_header() -> None:
    buffer = FrameBuffer()
    header = HEADER.pack(MAX_FRAME + 1)
    assert buffer.feed(header[:2]) == []
    with pytest.raises(ValueError):
        buffer.feed(header[2:])


def test_frame_at_the_limit_is_accepted_header() -> None:
    buffer = FrameBuffer()
    assert buffer.feed(HEADER.pack(MAX_FRAME) + b"partial") == []
