"""Starting sandboxes: fork from the app's zygote, or spawn a fresh interpreter.

Both launchers hand back one end of a connected socket pair whose other end is
the new sandbox's channel. Spawn is the fallback for apps that start threads at
import time, where forking would copy a process in an unknown state.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
from typing import Protocol

import msgspec

from squall.errors import ConfigError, SquallError
from squall.runtime.protocol import (
    Exited,
    Fork,
    Loaded,
    LoadFailed,
    Shutdown,
    decode_from_zygote,
    encode,
)

log = logging.getLogger("squall.runtime")

ZYGOTE = ["-m", "squall.runtime.zygote"]  # after the interpreter: the platform's or an env's


class Launcher(Protocol):
    def start(self, request: Fork) -> socket.socket: ...

    def exit_status(self, pid: int) -> int | None: ...

    async def close(self) -> None: ...


def describe_exit(status: int | None) -> str:
    if status is None:
        return "the sandbox process died"
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return f"the sandbox process was killed by signal {signal.Signals(number).name}"
    return f"the sandbox process exited with code {os.waitstatus_to_exitcode(status)}"


class ZygoteLauncher:
    """Owns the zygote process and forks sandboxes from it."""

    def __init__(self, process: subprocess.Popen[bytes], control: socket.socket) -> None:
        self._process = process
        self._control = control
        self._exits: dict[int, int] = {}
        asyncio.get_running_loop().add_reader(control.fileno(), self._on_control)

    @classmethod
    async def load(
        cls, app_ref: str, python: str = sys.executable
    ) -> tuple[ZygoteLauncher, Loaded]:
        """Start the zygote with interpreter ``python`` (a dependency environment's, or the
        platform's), wait for it to import the app, return it with the manifest."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = subprocess.Popen(
            [python, *ZYGOTE, "zygote", app_ref, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        ours.setblocking(False)
        data = await asyncio.get_running_loop().sock_recv(ours, 1 << 20)
        if not data:
            process.wait()
            ours.close()
            raise ConfigError(f"loading {app_ref!r} failed: the app's process exited", field="app")
        message = decode_from_zygote(data)
        if isinstance(message, LoadFailed):
            process.wait()
            ours.close()
            raise SquallError.from_dict(message.error)
        assert isinstance(message, Loaded)
        return cls(process, ours), message

    def _on_control(self) -> None:
        try:
            data = self._control.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self._control.fileno())
            return
        message = decode_from_zygote(data)
        if isinstance(message, Exited):
            self._exits[message.pid] = message.status
            if len(self._exits) > 10_000:  # forget the oldest half; crashes are read at once
                for pid in list(self._exits)[:5_000]:
                    del self._exits[pid]

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def start(self, request: Fork) -> socket.socket:
        ours, theirs = socket.socketpair()
        try:
            socket.send_fds(self._control, [encode(request)], [theirs.fileno()])
        finally:
            theirs.close()
        return ours

    def exit_status(self, pid: int) -> int | None:
        return self._exits.get(pid)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            loop.remove_reader(self._control.fileno())
            self._control.send(encode(Shutdown()))
        except OSError:
            pass
        self._control.close()
        await loop.run_in_executor(None, _wait_or_kill, self._process)


class SpawnLauncher:
    """One fresh interpreter per sandbox: slower, but safe for apps that import threads."""

    def __init__(self, app_ref: str, python: str = sys.executable) -> None:
        self._app_ref = app_ref
        self._python = python
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, request: Fork) -> socket.socket:
        ours, theirs = socket.socketpair()
        try:
            child = subprocess.Popen(
                [
                    self._python,
                    *ZYGOTE,
                    "serve",
                    self._app_ref,
                    str(theirs.fileno()),
                    msgspec.json.encode(request).decode(),
                ],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self._children[child.pid] = child
        for pid, proc in list(self._children.items()):
            if proc.poll() is not None and pid != child.pid:
                del self._children[pid]
        return ours

    def exit_status(self, pid: int) -> int | None:
        child = self._children.get(pid)
        if child is None or child.poll() is None:
            return None
        code = child.returncode
        return (-code) & 0x7F if code < 0 else (code & 0xFF) << 8

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for child in self._children.values():
            await loop.run_in_executor(None, _wait_or_kill, child)


def _wait_or_kill(process: subprocess.Popen[bytes]) -> None:
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
