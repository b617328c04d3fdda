"""The quickstart's shell blocks, run literally, in order, as a newcomer would.

They run in a scratch directory laid out like the repository (its docs/, examples/,
Makefile and .venv linked in), so the data they make lands there. Two things differ from a
newcomer's shell, both for the test's sake: the ports the docs use (8787, 8788) become free
ones, and `make run` is expanded with `make -n` and started as the process it would exec.
A ```text block after a block is output its last command must print (read-only commands are
tried again for a while: what events do happens a moment later).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from docs_blocks import ROOT, Block, commands, scenario
from support import NO_CONFIG

DOC_PORTS = ("8787", "8788")
VENV = Path(sys.prefix)  # the venv running the tests stands for the newcomer's .venv


def free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


class Shell:
    """A newcomer's shells: exported variables, servers left running, commands run in turn."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = {port: free_port() for port in DOC_PORTS}
        self.env = {**os.environ, "SQUALL_CONFIG": NO_CONFIG}
        self.env.pop("SQUALL_API_KEY", None)
        self.env.pop("SQUALL_ADMIN_KEY", None)
        self.servers: list[subprocess.Popen[bytes]] = []

    def ported(self, command: str) -> str:
        for doc_port, port in self.ports.items():
            command = re.sub(rf"\b{doc_port}\b", port, command)
        return command

    def run_block(self, block: Block) -> None:
        lines = commands(block)
        for index, line in enumerate(lines):
            expected = block.output if index == len(lines) - 1 else None
            self.run(self.ported(line), expected, block)

    def run(self, command: str, expected: str | None, block: Block) -> None:
        words = shlex.split(command)
        if words[0] == "export":
            name, _, value = command.removeprefix("export ").partition("=")
            self.env[name] = subprocess.run(
                ["bash", "-c", f"printf %s {value}"], capture_output=True, text=True,
                check=True, env=self.env,
            ).stdout
            return
        if words[:2] == ["make", "run"]:
            command = self.expand_make(words)
        if shlex.split(command)[1:2] == ["up"]:
            self.serve(command, block)
            return
        deadline = time.monotonic() + (15 if _read_only(words) else 0)
        while True:
            done = subprocess.run(
                ["bash", "-c", command], cwd=self.workdir, capture_output=True, text=True,
                timeout=60, env=self.env,
            )
            printed = done.stdout + done.stderr
            good = done.returncode == 0 and (
                expected is None or _contains(printed, expected)
            )
            if good:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{block.where()}: `{command}` exited {done.returncode}"
                    + (f", expected output {expected.strip()!r}" if expected else "")
                    + f"; it printed:\n{printed}"
                )
            time.sleep(0.3)

    def expand_make(self, words: list[str]) -> str:
        # A newcomer's shell is no make recipe: drop what an enclosing `make test` passes
        # down (MAKEFLAGS would make this make print "Entering directory" lines).
        env = {k: v for k, v in self.env.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        planned = subprocess.run(
            ["make", "--no-print-directory", "-n", *words[1:], f"PORT={self.ports['8787']}"],
            cwd=self.workdir, capture_output=True, text=True, check=True, env=env,
        ).stdout.strip().splitlines()
        return planned[-1]  # the venv exists already: only the server is left to start

    def serve(self, command: str, block: Block) -> None:
        port = re.search(r"--port (\d+)", command)
        assert port is not None, f"{block.where()}: a server the test cannot reach"
        log = self.workdir / f"server-{len(self.servers)}.log"
        with log.open("wb") as output:
            server = subprocess.Popen(
                ["bash", "-c", f"exec {command}"], cwd=self.workdir, env=self.env,
                stdout=output, stderr=subprocess.STDOUT,
            )
        self.servers.append(server)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port.group(1)}/api/v1/health", timeout=1)
                return
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"{block.where()}: `{command}` did not serve: {log.read_text()}"
                    ) from None
                time.sleep(0.2)

    def stop(self) -> None:
        for server in self.servers:
            server.send_signal(signal.SIGINT)
        for server in self.servers:
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


def _read_only(words: list[str]) -> bool:
    return words[0] != "curl" or not ({"-X", "-d", "--data"} & set(words))


def _contains(printed: str, expected: str) -> bool:
    squeezed = printed.replace(" ", "")
    return all(line.replace(" ", "") in squeezed for line in expected.strip().splitlines())


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    for name in ("docs", "examples", "Makefile", "pyproject.toml"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / ".venv").symlink_to(VENV)
    newcomer = Shell(tmp_path)
    yield newcomer
    newcomer.stop()


def test_the_quickstart_runs_as_written(shell: Shell) -> None:
    names = ("quickstart-setup", "quickstart-orders", "quickstart-first")
    for name in names:
        found = scenario(name)
        assert found, f"the quickstart has no {name} block"
        for block in found:
            shell.run_block(block)
