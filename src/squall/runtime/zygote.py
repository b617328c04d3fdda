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
import traceback
from typing import NoReturn

import msgspec

from squall.app import App, FunctionDef
from squall.errors import ConfigError, SquallError
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
from squall.runtime.worker import serve


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


def start_sandbox(
    fd: int, fdef: FunctionDef, version: str, memory_mb: int, env: dict[str, str]
) -> NoReturn:
    # memory_mb and env come from the platform: the admin API may have changed them.
    os.environ.update(env)
    try:
        apply_memory_limit(memory_mb)
    except (OSError, ValueError) as exc:  # keep serving; the platform's RSS watchdog still applies
        print(f"squall: memory limit not applied: {exc}", file=sys.__stderr__)
    serve(socket.socket(fileno=fd), fdef, version, memory_mb)


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

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    children: set[int] = set()

    def shutdown() -> NoReturn:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        os._exit(0)

    while True:
        for key, _ in selector.select():
            if key.fileobj is control:
                try:
                    data, fds, _flags, _addr = socket.recv_fds(control, 65536, 4)
                except ConnectionError:
                    shutdown()
                if not data:
                    shutdown()
                message = decode_to_zygote(data)
                if isinstance(message, Shutdown):
                    shutdown()
                assert isinstance(message, Fork)
                fdef = app.functions[message.function]
                pid = os.fork()
                if pid == 0:
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    selector.close()
                    for fd in (wake_r, wake_w, *fds[1:]):
                        os.close(fd)
                    control.close()
                    gc.unfreeze()
                    start_sandbox(fds[0], fdef, manifest.version, message.memory_mb, message.env)
                for fd in fds:
                    os.close(fd)
                children.add(pid)
            else:
                try:
                    while os.read(wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
                while children:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                    if pid == 0:
                        break
                    children.discard(pid)
                    control.send(encode(Exited(pid, status)))


def run_single(ref: str, channel_fd: int, request: str) -> NoReturn:
    loaded = _load(ref)
    if isinstance(loaded, dict):
        print(f"squall: {loaded['message']}", file=sys.stderr)
        os._exit(2)
    app, source = loaded
    fork = msgspec.json.decode(request, type=Fork)
    fdef = app.functions[fork.function]
    start_sandbox(channel_fd, fdef, app.manifest(source).version, fork.memory_mb, fork.env)


def main(argv: list[str]) -> NoReturn:
    if argv[:1] == ["zygote"] and len(argv) == 3:
        run_zygote(argv[1], int(argv[2]))
    if argv[:1] == ["serve"] and len(argv) == 4:
        run_single(argv[1], int(argv[2]), argv[3])
    print(__doc__, file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
