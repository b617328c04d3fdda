"""What a deploy changes: a diff of two manifests, and the manifest that is served after it.

Every resource of a manifest has a kind and a key (functions by name, routes by method and
path, triggers by what they connect). A deploy adds what is new, changes what differs, and
removes what its app no longer declares only when asked to (``prune``); otherwise those are
kept, with their functions serving the versions they had.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from squall.model.config import Manifest

Key = Callable[[Any], str]

# Manifest field -> how one of its items is named in a plan.
KINDS: dict[str, Key] = {
    "functions": lambda f: f.name,
    "routes": lambda r: f"{r.method} {r.path}",
    "rules": lambda r: r.name,
    "schedules": lambda s: s.name,
    "queues": lambda q: q.name,
    "queue_triggers": lambda t: f"{t.queue} -> {t.function}",
    "streams": lambda s: s.name,
    "stream_triggers": lambda t: f"{t.stream} -> {t.function}",
    "tables": lambda t: t.name,
    "change_triggers": lambda t: f"{t.table} -> {t.function}",
    "buckets": lambda b: b.name,
    "workflows": lambda w: w.name,
    "projections": lambda p: p.name,
    "budgets": lambda b: f"{b.function or '(app)'} per {b.period}",
    "alerts": lambda a: a.name,
}
class Change(msgspec.Struct, frozen=True):
    kind: str
    name: str
    action: str  # "add", "change", "remove" (pruned) or "keep" (gone from the app, not pruned)


class Plan(msgspec.Struct, kw_only=True):
    changes: list[Change]
    new_versions: dict[str, int] = {}  # function -> the version the deploy makes
    settings_changed: bool = False

    @property
    def empty(self) -> bool:
        return not self.new_versions and not self.settings_changed and all(
            c.action == "keep" for c in self.changes
        )


def _index(manifest: Manifest, kind: str) -> dict[str, Any]:
    key = KINDS[kind]
    return {key(item): item for item in getattr(manifest, kind)}


def diff(old: Manifest | None, new: Manifest, prune: bool) -> list[Change]:
    """The resources ``new`` adds, changes and removes (or keeps) relative to ``old``."""
    changes: list[Change] = []
    for kind in KINDS:
        before = _index(old, kind) if old is not None else {}
        after = _index(new, kind)
        for name, item in after.items():
            if name not in before:
                changes.append(Change(kind, name, "add"))
            elif before[name] != item:
                changes.append(Change(kind, name, "change"))
        for name in before.keys() - after.keys():
            changes.append(Change(kind, name, "remove" if prune else "keep"))
    changes.sort(key=lambda c: (list(KINDS).index(c.kind), c.name))
    return changes


def merge(old: Manifest, new: Manifest) -> tuple[Manifest, set[str]]:
    """``new`` plus what ``old`` declares and ``new`` does not (a deploy without prune),
    and the names of the functions kept from ``old``."""
    kept = {f.name for f in old.functions} - {f.name for f in new.functions}
    fields: dict[str, list[Any]] = {}
    for kind, key in KINDS.items():
        items = list(getattr(new, kind))
        names = {key(item) for item in items}
        items += [item for item in getattr(old, kind) if key(item) not in names]
        fields[kind] = items
    merged = msgspec.structs.replace(new, **fields)
    merged.validate()
    return merged, kept
