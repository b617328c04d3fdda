"""Alias names and call qualifiers (``resize:live``, ``resize:7``); see ``model.deploys``."""

from __future__ import annotations

import re

from squall.errors import InvalidInput

ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
LATEST = "latest"  # the qualifier for a function's newest version; no alias may take it
LIVE = "live"  # unqualified invocations go to this alias when a function has one


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
