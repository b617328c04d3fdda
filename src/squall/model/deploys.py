"""Deployed code: immutable function versions, the aliases that point at them, deployments.

A deploy snapshots the app's directory into a content-addressed bundle. Each function whose
code or config changed since its latest version gets a new version, numbered per function; an
alias names a version, or splits traffic between two (``weight`` percent to ``canary``).
"""

from __future__ import annotations

import re

import msgspec

from squall.errors import InvalidInput
from squall.model.aliases import (
    ALIAS_RE,
    LATEST,
    LIVE,
    check_alias_name,
    check_weight,
    split_qualifier,
)
from squall.model.config import FunctionConfig, Manifest

__all__ = [
    "ALIAS_RE",
    "LATEST",
    "LIVE",
    "check_alias_name",
    "check_weight",
    "split_qualifier",
]

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
    previous: int | None = None  # the version it pointed at before: what a rollback restores
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


ROLLBACK_RE = re.compile(r"^\s*(error_rate|p99_ms)\s*>\s*([0-9]+(?:\.[0-9]+)?)\s*(%?)\s*$")


class RollbackRule(msgspec.Struct, frozen=True):
    """Roll a canary back when its version's ``metric`` goes above ``threshold``
    (error_rate: a fraction, 0.02 for 2%; p99_ms: milliseconds)."""

    metric: str
    threshold: float

    @staticmethod
    def parse(text: str) -> list[RollbackRule]:
        """``"error_rate>2%"``, ``"p99_ms>800"``, or several joined by commas."""
        rules = []
        for part in text.split(","):
            found = ROLLBACK_RE.match(part)
            if found is None:
                raise InvalidInput(
                    f"rollback condition {part.strip()!r} is not understood: write"
                    " error_rate>N% or p99_ms>N (several joined by commas)",
                    field="rollback_on",
                )
            metric, number, percent = found.groups()
            value = float(number)
            if metric == "error_rate":
                value = value / 100 if percent else value
                if not 0 <= value < 1:
                    raise InvalidInput(
                        f"rollback condition {part.strip()!r}: an error rate is 0-100%",
                        field="rollback_on",
                    )
            elif percent:
                raise InvalidInput(
                    f"rollback condition {part.strip()!r}: p99_ms takes milliseconds, not %",
                    field="rollback_on",
                )
            rules.append(RollbackRule(metric, value))
        return rules

    def describe(self) -> str:
        if self.metric == "error_rate":
            return f"error_rate>{self.threshold * 100:g}%"
        return f"{self.metric}>{self.threshold:g}"


class CanaryStatus:
    RUNNING = "running"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    SUPERSEDED = "superseded"  # a later deploy moved its alias: the shift stopped there


class Canary(msgspec.Struct, frozen=True, kw_only=True):
    """Traffic shifting from ``primary`` to ``canary`` on an alias: ``start_weight`` percent
    first, then up in ``steps`` equal steps to all of it after ``duration_s``, unless a
    ``rollback_on`` rule fires first."""

    function: str
    alias: str = LIVE
    primary: int
    canary: int
    start_weight: int
    steps: int = 1
    duration_s: float
    rollback_on: list[RollbackRule] = []
    started_at: float
    status: str = CanaryStatus.RUNNING
    reason: str = ""
    ended_at: float | None = None
    deployment: int = 0

    def weight_at(self, now: float) -> int:
        """The canary's share at ``now``: the start weight, then ``steps`` equal steps."""
        elapsed = max(0.0, now - self.started_at)
        if elapsed >= self.duration_s:
            return 100
        step = int(elapsed / (self.duration_s / self.steps))
        return round(self.start_weight + (100 - self.start_weight) * step / self.steps)


def check_canary_options(weight: int, duration_s: float, steps: int) -> None:
    if not 0 < weight < 100:
        raise InvalidInput(
            f"canary={weight}%: a canary takes part of the traffic, 1-99%", field="canary"
        )
    if not 0 < duration_s <= 7 * 86400:
        raise InvalidInput(
            f"for={duration_s:g}s is out of range: a canary lasts 1 s to 7 days", field="for"
        )
    if not 1 <= steps <= 100:
        raise InvalidInput(f"steps={steps} is out of range (allowed 1-100)", field="steps")
