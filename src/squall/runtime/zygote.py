"""The zygote: imports the app once, then forks a sandbox per request.

It is single-threaded and holds no event loop, no database handle and no
platform socket but its control channel, so a fork is safe and takes
milliseconds: the sandbox starts with every import already done.

Usage (started by the platform, never by hand):
    python -m squall.runtime.zygote zygote APP CONTROL_FD
    python -m squall.runtime.zygote serve APP CHANNEL_FD FORK_JSON   (spawn fallback)
"""

from __future__ import annotations

import contextlib
import gc
import os
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from typing import NoReturn

import msgspec

from squall.app import App, FunctionDef
from squall.errors import ConfigError, SquallError
from squall.runtime import capture
from squall.runtime.limits import apply_memory_limit
from squall.runtime.loader import load_app
from squall.runtime.protocol import (
    Exited,
    Fork,
    Loaded,
    LoadFailed,
    Shutdown,
    decode_to_zygote,
    encode,
)
from squall.runtime.worker import rehearse, serve


def _load(ref: str) -> tuple[App, bytes] | dict[str, object]:
    try:
        return load_app(ref)
    except SquallError as exc:
        return exc.to_dict()
    except BaseException as exc:
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return ConfigError(
            f"importing {ref!r} failed: {type(exc).__name__}: {exc}", field="app", traceback=detail
        ).to_dict()


SPARE_DELAY_S = 0.02


def start_sandbox(
    fd: int,
    fdef: FunctionDef,
    version: str,
    request: Fork,
    captured: capture.Capture | None = None,
) -> NoReturn:
    # memory_mb and env come from the platform: the admin API may have changed them.
    os.environ.update(request.env)
    try:
        apply_memory_limit(request.memory_mb)
    except (OSError, ValueError) as exc:  # keep serving; the platform's RSS watchdog still applies
        print(f"squall: memory limit not applied: {exc}", file=sys.__stderr__)
    serve(socket.socket(fileno=fd), fdef, version, request.memory_mb, captured, request.secrets)


class Zygote:
    """The zygote's event loop: fork requests in, exit statuses out.

    It keeps ``spares`` pre-forked children parked on a socket. A fork request
    hands its channel to a spare, so a cold start skips the fork and the
    copy-on-write faults of a fresh child; a new spare is forked once the
    request has been answered.
    """

    def __init__(self, app: App, version: str, control: socket.socket, spares: int) -> None:
        self.app = app
        self.version = version
        self.control = control
        self.spare_target = spares
        self.spares: list[tuple[int, socket.socket]] = []
        self.children: set[int] = set()
        self.last_handoff = 0.0
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.selector = selectors.DefaultSelector()
        self.selector.register(control, selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)

    def run(self) -> NoReturn:
        while True:
            timeout = self._spare_timeout()
            events = self.selector.select(timeout)
            if not events and timeout is not None:
                self._fork_spare()
            for key, _ in events:
                if key.fileobj is self.control:
                    self._on_request()
                else:
                    self._reap()

    def _spare_timeout(self) -> float | None:
        """How long to wait before forking a spare; None when there are enough.

        A spare is replaced SPARE_DELAY_S after one was handed out, not at once: a
        fork right away would take the CPU from the sandbox the spare is becoming.
        With no spare left at all, one is forked at once.
        """
        if len(self.spares) >= self.spare_target:
            return None
        if not self.spares:
            return 0.0
        return max(0.0, self.last_handoff + SPARE_DELAY_S - time.monotonic())

    def _on_request(self) -> None:
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.control, 65536, 4)
        except ConnectionError:
            self._shutdown()
        if not data:
            self._shutdown()
        message = decode_to_zygote(data)
        if isinstance(message, Shutdown):
            self._shutdown()
        assert isinstance(message, Fork)
        channel, extra = fds[0], fds[1:]
        for fd in extra:
            os.close(fd)
        while self.spares:
            pid, parked = self.spares.pop()
            try:
                socket.send_fds(parked, [encode(message)], [channel])
            except OSError:  # that spare died; try the next
                parked.close()
                continue
            parked.close()
            os.close(channel)
            self.last_handoff = time.monotonic()
            return
        pid = os.fork()
        if pid == 0:
            self._become_child(keep=channel)
            start_sandbox(channel, self.app.functions[message.function], self.version, message)
        os.close(channel)
        self.children.add(pid)

    def _fork_spare(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            ours.close()
            self._become_child(keep=theirs.fileno())
            captured = capture.install()  # generic set-up, paid before any request
            rehearse()
            data, fds, _flags, _addr = socket.recv_fds(theirs, 65536, 4)
            if not data or not fds:
                os._exit(0)  # the zygote is gone
            theirs.close()
            request = decode_to_zygote(data)
            assert isinstance(request, Fork)
            fdef = self.app.functions[request.function]
            start_sandbox(fds[0], fdef, self.version, request, captured)
        theirs.close()
        self.children.add(pid)
        self.spares.append((pid, ours))

    def _become_child(self, keep: int) -> None:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.selector.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.control.close()
        for _, parked in self.spares:
            if parked.fileno() != keep:
                parked.close()

    def _reap(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wake_r, 4096):
                pass
        while self.children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            self.children.discard(pid)
            for spare in self.spares:
                if spare[0] == pid:
                    self.spares.remove(spare)
                    spare[1].close()
                    break
            try:
                self.control.send(encode(Exited(pid, status)))
            except OSError:  # the platform is gone: so are we
                self._shutdown()

    def _shutdown(self) -> NoReturn:
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        os._exit(0)


def run_zygote(ref: str, control_fd: int) -> NoReturn:
    control = socket.socket(fileno=control_fd)
    loaded = _load(ref)
    if isinstance(loaded, dict):
        control.send(encode(LoadFailed(loaded)))
        os._exit(2)
    app, source = loaded
    try:
        manifest = app.manifest(source)
    except SquallError as exc:
        control.send(encode(LoadFailed(exc.to_dict())))
        os._exit(2)
    control.send(encode(Loaded(manifest, threading.active_count() == 1)))
    gc.freeze()  # keep imported objects out of the collector: fewer copy-on-write pages
    spares = int(os.environ.get("SQUALL_SPARE_SANDBOXES", "2"))
    Zygote(app, manifest.version, control, spares).run()


def run_single(ref: str, channel_fd: int, request: str) -> NoReturn:
    loaded = _load(ref)
    if isinstance(loaded, dict):
        print(f"squall: {loaded['message']}", file=sys.stderr)
        os._exit(2)
    app, source = loaded
    fork = msgspec.json.decode(request, type=Fork)
    fdef = app.functions[fork.function]
    start_sandbox(channel_fd, fdef, app.manifest(source).version, fork)


def main(argv: list[str]) -> NoReturn:
    if argv[:1] == ["zygote"] and len(argv) == 3:
        run_zygote(argv[1], int(argv[2]))
    if argv[:1] == ["serve"] and len(argv) == 4:
        run_single(argv[1], int(argv[2]), argv[3])
    print(__doc__, file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
