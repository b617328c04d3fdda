"""Puts in parts from sandboxes (``bucket.begin``, ``bucket.part``, ``bucket.complete``): the
uploads open on one platform, each streaming into its own staging file."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from squall.engine.buckets.files import StagedFile
from squall.errors import Conflict, NotFound

MAX_UPLOADS = 64  # open uploads per function
# An upload with no part for this long was left by a sandbox that died or gave up (the
# longest invocation runs 900 s): its staging file is removed.
ABANDONED_S = 960.0


@dataclass
class Upload:
    function: str
    bucket: str
    key: str
    content_type: str
    metadata: dict[str, str]
    staged: StagedFile
    touched: float = field(default_factory=time.monotonic)


class Uploads:
    """The uploads open on one platform, by id."""

    def __init__(self) -> None:
        self._open: dict[str, Upload] = {}

    def begin(self, upload: Upload) -> str:
        self.expire()
        if sum(1 for u in self._open.values() if u.function == upload.function) >= MAX_UPLOADS:
            upload.staged.abort()
            raise Conflict(
                f"function {upload.function!r} has {MAX_UPLOADS} uploads open", field="upload"
            )
        upload_id = secrets.token_hex(12)
        self._open[upload_id] = upload
        return upload_id

    def get(self, args: dict[str, Any], function: str) -> Upload:
        upload = self._open.get(str(args.get("upload")))
        if upload is None or upload.function != function:
            raise NotFound(f"upload {args.get('upload')!r} is not open", field="upload")
        upload.touched = time.monotonic()
        return upload

    def close(self, args: dict[str, Any]) -> None:
        self._open.pop(str(args.get("upload")), None)

    def expire(self, now: float | None = None) -> int:
        cutoff = (time.monotonic() if now is None else now) - ABANDONED_S
        stale = [key for key, upload in self._open.items() if upload.touched < cutoff]
        for key in stale:
            self._open.pop(key).staged.abort()
        return len(stale)
