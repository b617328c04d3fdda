"""``squall buckets``: buckets and their objects, presigned URLs.

Puts and gets stream: a file is sent and received in chunks, with a progress bar (on stderr)
for objects over 8 MiB.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Annotated

import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from squall.cli.common import JsonOption, KeyOption, UrlOption, console, fail, print_json, session
from squall.cli.render import clock
from squall.errors import InvalidInput
from squall.model.buckets import MAX_LIST, check_bucket_name, check_key

buckets = typer.Typer(help="Buckets: object storage.", no_args_is_help=True)

BucketArgument = Annotated[str, typer.Argument(help="The bucket's name.")]
KeyArgument = Annotated[str, typer.Argument(help="The object's key.")]
CHUNK = 1024 * 1024
PROGRESS_FROM = 8 * 1024 * 1024
_RANGE = re.compile(r"(\d*)-(\d*)")


def _checked(bucket: str, *keys: str) -> None:
    try:
        check_bucket_name(bucket)
        for key in keys:
            check_key(key)
    except InvalidInput as exc:
        fail(exc.message, 2)


def _progress(total: int | None) -> Progress:
    return Progress(
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=total is None or total < PROGRESS_FROM,
    )


@buckets.command("list")
def list_(as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None) -> None:
    """List the buckets with their object counts and bytes."""
    with session(url, key) as client:
        found = client.buckets()
    if as_json:
        print_json({"buckets": found})
        return
    if not found:
        console.print("no buckets")
        return
    table = Table("name", "objects", "bytes", "max object", "declared by", box=box.SIMPLE_HEAD)
    for row in found:
        table.add_row(
            row["name"],
            str(row["objects"]),
            str(row["bytes"]),
            str(row["max_object_bytes"]),
            row["declared_by"],
        )
    console.print(table)


@buckets.command()
def create(
    name: BucketArgument,
    max_object_bytes: Annotated[
        int | None, typer.Option("--max-object-bytes", min=1, help="Largest object, bytes.")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Create a bucket (the app's own are declared in its code)."""
    _checked(name)
    with session(url, key) as client:
        created = client.create_bucket(name, max_object_bytes=max_object_bytes)
    if as_json:
        print_json(created)
    else:
        console.print(f"bucket {created['name']} created", markup=False)


@buckets.command()
def delete(
    name: BucketArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Delete an empty bucket made through the API."""
    _checked(name)
    if not yes:
        if not sys.stdin.isatty():
            fail(f"delete would remove bucket {name!r}: pass --yes", 2)
        typer.confirm(f"Delete bucket {name!r}?", abort=True)
    with session(url, key) as client:
        client.delete_bucket(name)
    console.print(f"deleted bucket {name}", markup=False)


@buckets.command()
def put(
    bucket: BucketArgument,
    object_key: KeyArgument,
    source: Annotated[str, typer.Argument(metavar="FILE", help="A file, or - for stdin.")],
    content_type: Annotated[
        str | None, typer.Option("--content-type", "-t", help="Default: octet-stream.")
    ] = None,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", "-m", help="NAME=VALUE metadata; repeat it.")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Store FILE as the object at KEY, streamed."""
    _checked(bucket, object_key)
    metadata: dict[str, str] = {}
    for item in meta or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            fail(f"--meta {item!r} is not NAME=VALUE", 2)
        metadata[name] = value
    size: int | None = None
    if source != "-":
        path = Path(source)
        if not path.is_file():
            fail(f"{source}: no such file", 2)
        size = path.stat().st_size
    with ExitStack() as stack:
        stream = sys.stdin.buffer if source == "-" else stack.enter_context(path.open("rb"))
        progress = stack.enter_context(_progress(size))
        client = stack.enter_context(session(url, key))
        task = progress.add_task("put", total=size)

        def chunks() -> Iterator[bytes]:
            while chunk := stream.read(CHUNK):
                progress.advance(task, len(chunk))
                yield chunk

        info = client.put_object(
            bucket,
            object_key,
            chunks(),
            size=size,
            content_type=content_type,
            metadata=metadata,
        )
    if as_json:
        print_json(info)
    else:
        console.print(
            f"{bucket}/{object_key}: {info['size']} bytes, etag {info['etag']}", markup=False
        )


@buckets.command()
def get(
    bucket: BucketArgument,
    object_key: KeyArgument,
    target: Annotated[
        str, typer.Argument(metavar="FILE", help="Where to write it; - for stdout.")
    ] = "-",
    byte_range: Annotated[
        str | None, typer.Option("--range", "-r", help="START-END, START- or -COUNT bytes.")
    ] = None,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Read the object at KEY (or a byte range of it), streamed to FILE or stdout."""
    _checked(bucket, object_key)
    if byte_range is not None and (not _RANGE.fullmatch(byte_range) or byte_range == "-"):
        fail(f"--range {byte_range!r} is not START-END, START- or -COUNT", 2)
    with ExitStack() as stack:
        if target == "-":
            out: IO[bytes] = sys.stdout.buffer
        else:  # written beside the target and renamed over it once complete
            partial = Path(f"{target}.part")
            out = stack.enter_context(partial.open("wb"))
            stack.callback(partial.unlink, missing_ok=True)
        client = stack.enter_context(session(url, key))
        response = stack.enter_context(
            client.get_object(
                bucket, object_key, range=f"bytes={byte_range}" if byte_range else None
            )
        )
        size = int(response.headers.get("content-length", 0)) or None
        with _progress(size) as progress:
            task = progress.add_task("get", total=size)
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)
                progress.advance(task, len(chunk))
        out.flush()
        if target != "-":
            out.close()
            os.replace(partial, target)


@buckets.command()
def head(
    bucket: BucketArgument,
    object_key: KeyArgument,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Show the object's size, ETag, content type and metadata."""
    _checked(bucket, object_key)
    with session(url, key) as client:
        headers = client.head_object(bucket, object_key)
    view = {
        "bucket": bucket,
        "key": object_key,
        "size": int(headers.get("content-length", 0)),
        "etag": headers.get("etag", "").strip('"'),
        "content_type": headers.get("content-type"),
        "version": headers.get("x-squall-version"),
        "last_modified": headers.get("last-modified"),
        "metadata": {
            k.removeprefix("x-squall-meta-"): v
            for k, v in headers.items()
            if k.startswith("x-squall-meta-")
        },
    }
    if as_json:
        print_json(view)
        return
    for name, value in view.items():
        console.print(f"{name:<14} {value}", markup=False)


@buckets.command("ls")
def list_objects(
    bucket: BucketArgument,
    prefix: Annotated[str, typer.Option("--prefix", "-p", help="Only keys starting so.")] = "",
    delimiter: Annotated[
        str | None, typer.Option("--delimiter", "-d", help="Roll keys up at this, e.g. /.")
    ] = None,
    cursor: Annotated[str | None, typer.Option(help="Page: the cursor printed before.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_LIST, help="At most this many.")] = 100,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """List objects by key, a page at a time."""
    _checked(bucket)
    with session(url, key) as client:
        page = client.list_objects(
            bucket, prefix=prefix, delimiter=delimiter, cursor=cursor, limit=limit
        )
    if as_json:
        print_json(page)
        return
    table = Table("key", "size", "modified", "etag", box=box.SIMPLE_HEAD)
    for common in page["prefixes"]:
        table.add_row(common, "-", "-", "-")
    for row in page["objects"]:
        table.add_row(
            row["key"], str(row["size"]), clock(row["created_at"], date=True), row["etag"]
        )
    console.print(table)
    if page["next_cursor"] is not None:
        console.print(f"more: --cursor {page['next_cursor']}", markup=False, soft_wrap=True)


@buckets.command("cp")
def copy(
    bucket: BucketArgument,
    source_key: Annotated[str, typer.Argument(metavar="KEY", help="The object to copy.")],
    target_key: Annotated[str, typer.Argument(metavar="TO_KEY", help="Its copy's key.")],
    to_bucket: Annotated[
        str | None, typer.Option("--to-bucket", help="Copy into this bucket instead.")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Copy an object to another key (or bucket)."""
    _checked(to_bucket or bucket, target_key)
    _checked(bucket, source_key)
    with session(url, key) as client:
        info = client.copy_object(bucket, source_key, target_key, to_bucket=to_bucket)
    if as_json:
        print_json(info)
    else:
        console.print(f"copied to {info['bucket']}/{info['key']}", markup=False)


@buckets.command("rm")
def remove(
    bucket: BucketArgument,
    object_key: KeyArgument,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Delete the object at KEY."""
    _checked(bucket, object_key)
    with session(url, key) as client:
        outcome = client.delete_object(bucket, object_key)
    if as_json:
        print_json(outcome)
    else:
        what = "deleted" if outcome["deleted"] else "no such object:"
        console.print(f"{what} {bucket}/{object_key}", markup=False)


@buckets.command()
def presign(
    bucket: BucketArgument,
    object_key: KeyArgument,
    method: Annotated[str, typer.Option("--method", help="GET or PUT.")] = "GET",
    expires: Annotated[
        int, typer.Option("--expires", min=1, max=7 * 86400, help="Seconds it stays valid.")
    ] = 3600,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Print a URL that GETs (or PUTs) the object without an API key until it expires."""
    _checked(bucket, object_key)
    if method.upper() not in ("GET", "PUT"):
        fail(f"--method must be GET or PUT, got {method!r}", 2)
    with session(url, key) as client:
        signed = client.presign(bucket, object_key, method=method.upper(), expires_s=expires)
    if as_json:
        print_json(signed)
    else:
        print(signed["url"], flush=True)
