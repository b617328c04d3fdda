"""A cluster on this machine for the tests: `squall node` processes sharing one PostgreSQL
schema and one NATS JetStream prefix, each with a data dir of its own (beside the app's
directory, not in it: a node's bundle is a snapshot of that directory).

Every node gets ``TEST_NODE=<its name>`` in its environment (its sandboxes inherit it, so
an app can say which node ran it), the suite's admin key and one master key.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from backends import drop, new_schema_url
from nats_service import NATS_URL, fresh_prefix
from support import ADMIN_KEY, AUTH, SQUALL, wait_for

MASTER_KEY = base64.urlsafe_b64encode(b"cluster-test-master-key-32-bytes").decode()


@dataclass
class Node:
    name: str
    roles: str
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path
    url: str = ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False


@dataclass
class Cluster:
    workdir: Path
    store: str
    bus: str
    nodes: dict[str, Node] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # for every node, over the defaults

    @property
    def app_dir(self) -> Path:
        """Where the test writes app.py (made on first use)."""
        path = self.workdir / "app"
        path.mkdir(exist_ok=True)
        return path

    def start(self, name: str, roles: str, *, wait: bool = True) -> Node:
        data = self.workdir / "nodes" / name
        data.mkdir(parents=True, exist_ok=True)
        out, err = data / "node.out", data / "node.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                [SQUALL, "node", "app.py", "--roles", roles, "--port", "0",
                 "--data-dir", str(data), "--store", self.store, "--bus", self.bus],
                cwd=self.app_dir,
                stdout=stdout,
                stderr=stderr,
                env={
                    **os.environ,
                    "SQUALL_ADMIN_KEY": ADMIN_KEY,
                    "SQUALL_MASTER_KEY": MASTER_KEY,
                    "TEST_NODE": name,
                    **self.env,
                },
            )
        node = Node(name, roles, proc, out, err)
        self.nodes[name] = node
        if wait:
            self.wait_up(node)
        return node

    def wait_up(self, node: Node, timeout: float = 60.0) -> None:
        def url() -> str | None:
            if node.proc.poll() is not None:
                raise AssertionError(
                    f"node {node.name} exited {node.proc.returncode}: {node.err.read_text()}"
                )
            for line in node.out.read_text().splitlines():
                words = line.split()
                if words and words[0] in ("gateway", "health"):
                    return words[1].removesuffix("/healthz")
            return None

        node.url = wait_for(url, timeout=timeout)

    def start_all(self, layout: dict[str, str]) -> None:
        """Start every node of ``layout`` (name -> roles) at once, then wait for them."""
        for name, roles in layout.items():
            self.start(name, roles, wait=False)
        for name in layout:
            self.wait_up(self.nodes[name])

    @property
    def gateway(self) -> str:
        for node in self.nodes.values():
            if "gateway" in node.roles and node.alive():
                return node.url
        raise AssertionError("no gateway node is running")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.gateway, headers=AUTH, timeout=30)

    def stop_all(self) -> None:
        for node in self.nodes.values():
            if node.alive():
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            try:
                node.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()

    def logs(self) -> str:
        """Every node's stderr tail, for an assertion's message."""
        return "\n".join(
            f"--- {node.name} ({node.roles}) exit={node.proc.poll()}\n"
            + "\n".join(node.err.read_text().splitlines()[-15:])
            for node in self.nodes.values()
        )


@contextlib.contextmanager
def cluster(workdir: Path, nats_url: str = NATS_URL) -> Iterator[Cluster]:
    """A cluster on a fresh schema and subject prefix, both removed afterwards."""
    store = new_schema_url()
    prefix = fresh_prefix()
    running = Cluster(workdir, store, f"{nats_url}?prefix={prefix}")
    try:
        yield running
    finally:
        running.stop_all()
        drop(store)
        delete_streams(nats_url, prefix)


def delete_streams(nats_url: str, prefix: str) -> None:
    """Drop the work, delay and app-stream streams and the object store of ``prefix``
    (deliveries, records and bucket objects' bytes)."""
    import asyncio

    asyncio.run(remove_streams(nats_url, prefix))


async def remove_streams(nats_url: str, prefix: str) -> None:
    """Delete by name, not through ``JetStreamQueue.open``: that ensures the streams first,
    and refuses streams kept in memory when it would make them on file."""
    from squall.storage.nats import ConnectOptions
    from squall.storage.nats.cleanup import delete_prefix
    from squall.storage.nats.connect import connect

    with contextlib.suppress(Exception):  # a server already gone has nothing left to clean
        nc = await connect(ConnectOptions(url=nats_url, attempts=1))
        try:
            await delete_prefix(nc, prefix)
        finally:
            await nc.close()


def wait_until(
    condition: Callable[[], object], timeout: float, message: Callable[[], str]
) -> None:
    """Poll ``condition()`` (truthy ends it) up to ``timeout`` s, then fail with ``message()``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(message())
