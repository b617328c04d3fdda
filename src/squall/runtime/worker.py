"""The sandbox main loop: run init once, then serve invocations over the channel.

This module runs in the sandbox process only (forked from the zygote, or spawned).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import logging
import os
import re
import socket
import threading
import time
import traceback
from typing import Any, NoReturn

import msgspec

from squall.app import FunctionDef
from squall.errors import (
    FunctionError,
    InitError,
    OutOfMemory,
    ResultNotSerializable,
    SquallError,
)
from squall.model.http import HttpRequest
from squall.request import Request
from squall.response import Response
from squall.runtime import capture
from squall.runtime.context import Context
from squall.runtime.limits import mapped_bytes, peak_rss_kb, rss_kb
from squall.runtime.protocol import (
    HEADER,
    Call,
    CallReply,
    Invoke,
    Ready,
    Result,
    Shutdown,
    Started,
    ToSandbox,
    decode_to_sandbox,
    frame,
)
from squall.runtime.spans import reseed

_UNSUPPORTED = re.compile(r"type (\S+) is unsupported")
_json_encode = msgspec.json.encode
_json_decode = msgspec.json.decode
_decode_request = msgspec.json.Decoder(HttpRequest).decode


class Link:
    """Blocking side of the sandbox channel."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._rfile = sock.makefile("rb", buffering=256 * 1024)
        self._next_call = 0
        # Invocations the platform queued in the channel (it pipelines them) that arrived
        # while the running one waited for a call's reply: served next, in order.
        self._queued: collections.deque[Invoke] = collections.deque()
        # Calls may come from several threads at once (a workflow's wf.map and wf.gather):
        # one of them reads the channel at a time and hands each reply to its caller.
        self._calls = threading.Condition()
        self._replies: dict[int, CallReply] = {}
        self._reading = False
        self._sending = threading.Lock()

    def send(self, message: msgspec.Struct) -> None:
        data = frame(message)
        try:
            with self._sending:
                self._sock.sendall(data)
        except OSError:
            os._exit(0)  # the platform closed the channel: nothing left to serve

    def linger(self, timeout_s: float = 5.0) -> None:
        """Close the sending side and read until the platform closes the channel.

        Exiting at once could make a write of the platform (an invocation sent as the init
        hook failed) hit a closed socket, and a failed write drops what it had not yet read
        — the Ready that says why the sandbox is going away.
        """
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)
            self._sock.settimeout(timeout_s)
            while self._sock.recv(65536):
                pass

    def recv(self) -> ToSandbox:
        if self._queued:
            return self._queued.popleft()
        return self._read()

    def _read(self) -> ToSandbox:
        header = self._rfile.read(4)
        if len(header) < 4:
            os._exit(0)  # the platform closed the channel: nothing left to serve
        (size,) = HEADER.unpack(header)
        body = self._rfile.read(size)
        if len(body) < size:
            os._exit(0)
        message: ToSandbox = decode_to_sandbox(body)
        if isinstance(message, Shutdown):
            os._exit(0)
        return message

    def call(self, op: str, args: dict[str, Any]) -> bytes | None:
        with self._calls:
            self._next_call += 1
            call_id = self._next_call
            self.send(Call(call_id, op, args))
            while call_id not in self._replies:
                if self._reading:  # another caller reads: it hands this reply over
                    self._calls.wait()
                    continue
                self._reading = True
                self._calls.release()
                try:
                    message = self._read()
                finally:
                    self._calls.acquire()
                    self._reading = False
                    self._calls.notify_all()
                if isinstance(message, Invoke):
                    self._queued.append(message)
                elif isinstance(message, CallReply):
                    self._replies[message.call_id] = message
            reply = self._replies.pop(call_id)
        if reply.error is not None:
            raise SquallError.from_dict(reply.error)
        return reply.value


def describe(exc: BaseException, kind: type[SquallError]) -> dict[str, Any]:
    """A handler's exception as a structured error, traceback trimmed to user frames."""
    if isinstance(exc, SquallError) and not isinstance(exc, ResultNotSerializable):
        error_type = exc.type
    else:
        error_type = type(exc).__name__
    tb = exc.__traceback__.tb_next if exc.__traceback__ else None
    lines = traceback.format_exception(type(exc), exc, tb)
    return kind(
        f"{error_type}: {exc}", error_type=error_type, traceback="".join(lines)
    ).to_dict()


def encode_result(result: Any) -> tuple[bytes, dict[str, Any] | None]:
    if isinstance(result, Response):
        headers = {k.lower(): str(v) for k, v in result.headers.items()}
        body = result.body
        if isinstance(body, bytes | bytearray | memoryview):
            content_type, data = "application/octet-stream", bytes(body)
        elif isinstance(body, str):
            content_type, data = "text/plain; charset=utf-8", body.encode()
        else:
            content_type, data = "application/json", _encode_json(body)
        content_type = headers.pop("content-type", content_type)
        meta: dict[str, Any] = {
            "status": result.status,
            "headers": headers,
            "content_type": content_type,
        }
        if result.cookies:
            meta["cookies"] = list(result.cookies)
        return data, meta
    return _encode_json(result), None


def _encode_json(value: Any) -> bytes:
    try:
        return _json_encode(value)
    except (TypeError, msgspec.EncodeError) as exc:
        match = _UNSUPPORTED.search(str(exc))
        type_name = match.group(1) if match else type(value).__name__
        raise ResultNotSerializable(
            f"the handler returned a value of type {type_name} that cannot be encoded as JSON"
            " (return dicts, lists, strings, numbers, bools, None, or a squall.Response)",
            value_type=type_name,
        ) from None


def rehearse() -> None:
    """Walk a spare through a sandbox's start-up and one invocation, on a scratch channel.

    A forked child pays a copy-on-write fault for every page it first writes; doing
    it here, before the spare is handed a function, keeps it off the cold start.
    """
    ours, theirs = socket.socketpair()
    try:
        link = Link(ours)
        link.send(Started(os.getpid(), rss_kb(os.getpid()) or 0))
        link.send(Ready(0.0, None, []))
        theirs.sendall(frame(Invoke("rehearsal", b"{}", 1, 1.0, "sync")))
        message = link.recv()
        assert isinstance(message, Invoke)
        value, _ = encode_result(_json_decode(message.payload))
        link.send(Result(message.id, value, None, 0.0, peak_rss_kb(), [], None, False))
        theirs.recv(65536)
        mapped_bytes()
        logging.getLogger("squall.rehearsal")
        Context(link=link, function_name="", version="", memory_mb=0, logger=logging.getLogger())
    finally:
        ours.close()
        theirs.close()


def serve(
    sock: socket.socket,
    fdef: FunctionDef,
    version: str,
    memory_mb: int,
    captured: capture.Capture | None = None,
    secrets: dict[str, str] | None = None,
) -> NoReturn:
    link = Link(sock)
    link.send(Started(os.getpid(), rss_kb(os.getpid()) or 0))
    reseed()  # a forked sandbox must not draw the span ids its siblings draw
    if captured is None:
        captured = capture.install()
    config = fdef.config
    ctx = Context(
        link=link,
        function_name=config.name,
        version=version,
        memory_mb=memory_mb,
        logger=logging.getLogger(config.name),
        secrets=secrets,
        capture=captured,
    )
    started = time.perf_counter()
    init_error = None
    if fdef.init is not None:
        try:
            ctx.state = fdef.init(ctx)
        except BaseException as exc:
            init_error = describe(exc, InitError)
    capture.flush_streams()
    init_ms = (time.perf_counter() - started) * 1000
    link.send(Ready(init_ms, init_error, captured.drain(), time.time()))
    if init_error is not None:
        link.linger()
        os._exit(3)
    _loop(link, fdef, ctx, captured)


def _loop(link: Link, fdef: FunctionDef, ctx: Context, captured: capture.Capture) -> NoReturn:
    handler = fdef.handler
    spans = captured.spans
    is_async = inspect.iscoroutinefunction(handler)
    loop = asyncio.new_event_loop() if is_async else None
    while True:
        message = link.recv()
        if not isinstance(message, Invoke):
            continue
        ctx._begin(
            message.id, message.attempt, message.trigger, time.monotonic() + message.timeout_s
        )
        spans.begin(message.traceparent)
        value: bytes | None = None
        error: dict[str, Any] | None = None
        response: dict[str, Any] | None = None
        recycle = False
        started = time.perf_counter()
        try:
            if message.kind == "http":
                event = Request(_decode_request(message.payload))
            else:
                event = _json_decode(message.payload)
            result = handler(event, ctx)
            if loop is not None:
                result = loop.run_until_complete(result)
            value, response = encode_result(result)
        except MemoryError:
            error = OutOfMemory(
                f"the handler went past its memory limit of {ctx.memory_mb} MB",
                memory_mb=ctx.memory_mb,
            ).to_dict()
            recycle = True
        except ResultNotSerializable as exc:
            error = exc.to_dict()
        except SystemExit as exc:
            error = describe(exc, FunctionError)
            recycle = True
        except BaseException as exc:
            error = describe(exc, FunctionError)
        duration = (time.perf_counter() - started) * 1000
        capture.flush_streams()
        user_spans, attributes = spans.drain()
        link.send(
            Result(
                message.id,
                value,
                error,
                duration,
                peak_rss_kb(),
                captured.drain(),
                response,
                recycle,
                user_spans,
                attributes,
            )
        )
        if recycle:
            os._exit(0)
