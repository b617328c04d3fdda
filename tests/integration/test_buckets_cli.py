"""`squall buckets` against a real `squall up`: every subcommand, --json, exit code 2 on bad
input, large files streamed both ways."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import SQUALL, client_env, start_squall

APP = """\
import squall

app = squall.App("buckets-cli")
app.bucket("uploads")
"""


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("buckets-cli")
    (workdir / "app.py").write_text(APP)
    proc, url = start_squall(workdir)
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def squall(url: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [SQUALL, "buckets", *args, "--url", url],
        input=stdin,
        capture_output=True,
        env=client_env(),
        timeout=120,
    )


def test_put_get_head_ls_cp_rm(url: str, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    data = os.urandom(12 * 1024 * 1024 + 7)
    source.write_bytes(data)
    put = squall(
        url,
        "put",
        "uploads",
        "files/big.bin",
        str(source),
        "-t",
        "application/x-big",
        "-m",
        "owner=ann",
        "--json",
    )
    assert put.returncode == 0, put.stderr
    assert json.loads(put.stdout)["etag"] == hashlib.md5(data).hexdigest()
    target = tmp_path / "out.bin"
    got = squall(url, "get", "uploads", "files/big.bin", str(target))
    assert got.returncode == 0, got.stderr
    assert target.read_bytes() == data
    assert not (tmp_path / "out.bin.part").exists()
    part = squall(url, "get", "uploads", "files/big.bin", "-", "--range", "0-9")
    assert part.stdout == data[:10]
    head = json.loads(squall(url, "head", "uploads", "files/big.bin", "--json").stdout)
    assert head["size"] == len(data) and head["metadata"] == {"owner": "ann"}
    assert head["content_type"] == "application/x-big"
    piped = squall(url, "put", "uploads", "files/small.txt", "-", stdin=b"from stdin")
    assert piped.returncode == 0, piped.stderr
    listed = json.loads(squall(url, "ls", "uploads", "--prefix", "files/", "--json").stdout)
    assert [o["key"] for o in listed["objects"]] == ["files/big.bin", "files/small.txt"]
    rolled = json.loads(squall(url, "ls", "uploads", "-d", "/", "--json").stdout)
    assert rolled["prefixes"] == ["files/"]
    assert squall(url, "ls", "uploads").returncode == 0
    assert squall(url, "cp", "uploads", "files/small.txt", "copy.txt").returncode == 0
    assert squall(url, "get", "uploads", "copy.txt").stdout == b"from stdin"
    removed = json.loads(squall(url, "rm", "uploads", "copy.txt", "--json").stdout)
    assert removed["deleted"] is True
    missing = squall(url, "get", "uploads", "copy.txt", str(tmp_path / "nope"))
    assert missing.returncode == 2 and b"NotFound" in missing.stderr
    assert not (tmp_path / "nope").exists() and not (tmp_path / "nope.part").exists()


def test_create_list_delete_and_presign(url: str) -> None:
    assert squall(url, "create", "made", "--max-object-bytes", "100").returncode == 0
    listed = json.loads(squall(url, "list", "--json").stdout)["buckets"]
    assert {b["name"] for b in listed} == {"uploads", "made"}
    assert squall(url, "put", "made", "k", "-", stdin=b"x").returncode == 0
    signed = squall(url, "presign", "made", "k", "--method", "GET", "--expires", "60")
    assert signed.returncode == 0
    assert httpx.get(signed.stdout.decode().strip()).content == b"x"
    full = squall(url, "delete", "made", "--yes")
    assert full.returncode == 2 and b"holds 1 objects" in full.stderr
    squall(url, "rm", "made", "k")
    assert squall(url, "delete", "made", "--yes").returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        ("put", "uploads", "a/../b", "-"),
        ("get", "Bad_Bucket", "k"),
        ("get", "uploads", "k", "-", "--range", "x-y"),
        ("presign", "uploads", "k", "--method", "POST"),
        ("put", "uploads", "k", "/no/such/file"),
        ("put", "uploads", "k", "-", "-m", "novalue"),
        ("create", "UPPER"),
        ("head", "nope", "k"),
    ],
)
def test_bad_input_exits_2_with_a_message(url: str, args: tuple[str, ...]) -> None:
    result = squall(url, *args, stdin=b"")
    assert result.returncode == 2, result
    assert result.stderr.startswith(b"error: ")


def test_help(url: str) -> None:
    result = subprocess.run([SQUALL, "buckets", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("list", "create", "delete", "put", "get", "head", "ls", "cp", "rm", "presign"):
        assert command in result.stdout
