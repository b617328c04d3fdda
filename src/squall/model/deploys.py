"""Deployed code: immutable function versions, the aliases that point at them, deployments.

A deploy snapshots the app's directory into a content-addressed bundle. Each function whose
code or config changed since its latest version gets a new version, numbered per function; an
alias names a version, or splits traffic between two (``weight`` percent to ``canary``).
"""

from __future__ import annotations

import re

import msgspec

from squall.errors import InvalidInput
from squall.model.config import FunctionConfig, Manifest

ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
LATEST = "latest"  # the qualifier for a function's newest version; no alias may take it
LIVE = "live"  # unqualified invocations go to this alias when a function has one


class FunctionVersion(msgspec.Struct, frozen=True, kw_only=True):
    function: str
    number: int
    hash: str  # of the bundle's files and the function's config: equal hashes, equal code
    bundle: str  # the bundle's content hash: where the code lives
    app_ref: str  # the app inside the bundle, relative to its root
    config: FunctionConfig
    deployed_at: float
    deployed_by: str


class Alias(msgspec.Struct, frozen=True, kw_only=True):
    function: str
    name: str
    version: int
    canary: int | None = None  # a second version taking ``weight`` percent of the traffic
    weight: int = 0
    updated_at: float = 0.0

    def pick(self, draw: float) -> int:
        """The version serving a call whose uniform draw in [0, 1) is ``draw``."""
        if self.canary is not None and draw * 100 < self.weight:
            return self.canary
        return self.version

    def describe(self) -> str:
        if self.canary is None or self.weight == 0:
            return f"{self.version}"
        return f"{self.version} ({100 - self.weight}%) + {self.canary} ({self.weight}%)"


class Deployment(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    bundle: str
    app_ref: str
    manifest: Manifest
    deployed_at: float
    deployed_by: str
    versions: dict[str, int]  # function -> the version this deploy made its latest


def check_alias_name(name: str) -> None:
    if not ALIAS_RE.match(name) or name == LATEST:
        raise InvalidInput(
            f"alias name {name!r} is invalid: use 1-64 lowercase letters, digits, '-' or '_',"
            f" starting with a letter (and not {LATEST!r}, which always means the newest version)",
            field="alias",
        )


def check_weight(weight: int) -> None:
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
        raise InvalidInput(
            f"weight={weight!r} is out of range: give the canary's share in percent, 0-100",
            field="weight",
        )


def split_qualifier(ref: str) -> tuple[str, str | None]:
    """``"resize:live"`` -> ``("resize", "live")``; ``"resize"`` -> ``("resize", None)``."""
    name, sep, qualifier = ref.partition(":")
    return (name, qualifier) if sep else (name, None)
