"""Capture stdout, stderr and ``logging`` output of user code, per invocation."""

from __future__ import annotations

import io
import logging
import sys
import time

from squall.model.invocation import LogEntry


class Capture:
    """Collects log lines; ``drain()`` hands them over at the end of an invocation."""

    def __init__(self) -> None:
        self.lines: list[LogEntry] = []

    def add(self, level: str, stream: str, message: str) -> None:
        self.lines.append(LogEntry(time.time(), level, stream, message))

    def drain(self) -> list[LogEntry]:
        lines, self.lines = self.lines, []
        return lines


class _Stream(io.TextIOBase):
    """A text stream that turns each written line into a log entry."""

    def __init__(self, capture: Capture, name: str, level: str) -> None:
        self._capture = capture
        self._name = name
        self._level = level
        self._partial = ""

    @property
    def name(self) -> str:
        return f"<{self._name}>"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        data = self._partial + text
        *complete, self._partial = data.split("\n")
        for line in complete:
            self._capture.add(self._level, self._name, line)
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self._capture.add(self._level, self._name, self._partial)
            self._partial = ""


class _Handler(logging.Handler):
    def __init__(self, capture: Capture) -> None:
        super().__init__(logging.DEBUG)
        self._capture = capture
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._capture.add(record.levelname.lower(), record.name, self.format(record))
        except Exception:
            self.handleError(record)


def install() -> Capture:
    """Route sys.stdout, sys.stderr and the root logger into one capture."""
    capture = Capture()
    sys.stdout = _Stream(capture, "stdout", "info")
    sys.stderr = _Stream(capture, "stderr", "error")
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_Handler(capture))
    if root.level == logging.WARNING:  # the untouched default: let info through, as Lambda does
        root.setLevel(logging.INFO)
    return capture


def flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
