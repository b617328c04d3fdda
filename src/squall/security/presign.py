"""Presigned object URLs: HMAC-SHA256 over method, bucket, key and expiry.

    /_squall/buckets/<bucket>/<key>?expires=<epoch s>&signature=<hex>

The gateway serves them without an API key. The signing key comes from
``SQUALL_PRESIGN_KEY`` or ``<data_dir>/presign.key`` (32 random bytes, hex, created on first
use readable by its owner only); replacing it invalidates every URL given out. The method is
signed but not carried: a GET URL sent as a PUT does not verify.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlencode

from squall.errors import Forbidden, InvalidInput

PRESIGN_KEY_ENV = "SQUALL_PRESIGN_KEY"
KEY_FILE = "presign.key"
PATH_PREFIX = "/_squall/buckets"
METHODS = ("GET", "PUT")
MAX_EXPIRES_S = 7 * 24 * 3600  # S3's limit for SigV4 URLs


class Presigner:
    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def load(cls, data_dir: Path, env: Mapping[str, str] | None = None) -> Presigner:
        env = os.environ if env is None else env
        configured = env.get(PRESIGN_KEY_ENV)
        if configured:
            return cls(configured.strip().encode())
        path = data_dir / KEY_FILE
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_hex(32) + "\n")
        return cls(path.read_bytes().strip())

    def _signature(self, method: str, bucket: str, key: str, expires: int) -> str:
        message = f"{method}\n{bucket}\n{key}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def url(
        self, method: str, bucket: str, key: str, expires_s: int, *, now: float | None = None
    ) -> tuple[str, int]:
        """The path and query of a URL for ``method`` on the object, and when it expires."""
        method = check_method(method)
        if (
            isinstance(expires_s, bool)
            or not isinstance(expires_s, int)
            or not (1 <= expires_s <= MAX_EXPIRES_S)
        ):
            raise InvalidInput(
                f"expires_s={expires_s!r} is out of range (allowed 1-{MAX_EXPIRES_S})",
                field="expires_s",
            )
        expires = int(now if now is not None else time.time()) + expires_s
        query = urlencode(
            {"expires": expires, "signature": self._signature(method, bucket, key, expires)}
        )
        return f"{PATH_PREFIX}/{bucket}/{quote(key, safe='/')}?{query}", expires

    def verify(
        self,
        method: str,
        bucket: str,
        key: str,
        expires: str | None,
        signature: str | None,
        *,
        now: float | None = None,
    ) -> None:
        """Refuse (403) a URL not signed by this key for this method and object, or expired."""
        if not expires or not signature or not expires.isdigit() or len(expires) > 12:
            raise Forbidden("the URL is not presigned (expires and signature are required)")
        expected = self._signature(method, bucket, key, int(expires))
        if not hmac.compare_digest(expected, signature):
            raise Forbidden(
                "the URL's signature does not match its method, bucket, key and expiry",
                field="signature",
            )
        if int(expires) < (now if now is not None else time.time()):
            raise Forbidden("the presigned URL has expired", field="expires", expires=int(expires))


def check_method(method: object) -> str:
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise InvalidInput(f"method must be GET or PUT, got {method!r}", field="method")
    return method.upper()
