"""One matcher for all the rules of a bus.

Matching an event against N rules one by one costs O(N). Instead, every rule is indexed
under a few *anchors*: conditions that any event it matches must meet, chosen so that
looking them up costs time in the size of the event, not in the number of rules.

- An anchor is ``(path, kind, key)``: the exact value ``key`` at ``path`` (kind ``eq``,
  with numbers compared numerically through :func:`canonical`), a case-folded value
  (``ci``), a prefix or suffix (``pre``, ``suf``, and their case-insensitive ``-ci``
  forms), or just "``path`` holds a value" (``any``) for operators that cannot be
  looked up by value (numeric, cidr, wildcard, anything-but, exists: true).
- A pattern is an AND of conjuncts, so one conjunct suffices as its anchor: a leaf field
  (anchored by every value and operator it lists: the field matches only if one of them
  does) or a ``$or`` group (the union of one anchor set per branch). Fields holding
  ``exists: false`` match missing fields and cannot anchor. Of the anchorable conjuncts
  the rule takes the cheapest: value anchors beat ``any``, and emptier buckets beat
  crowded ones, so rules sharing ``type`` spread over their other fields.
- A rule with no anchorable conjunct (say, only ``exists: false``) is checked for every
  event; such rules are rare and this keeps the index simple.

Matching flattens the event once into ``path -> leaf values``, descending only into
paths some rule is indexed under; each value is looked up in its path's index (one dict
probe per kind, and one per distinct prefix/suffix length registered there); the
candidates found are confirmed with their compiled :class:`Pattern`, whose evaluation is
exact (arrays, ``$or``, operators). Anchors are necessary conditions, so confirmation
never loses a match, and only rules that share a value with the event pay for it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from typing import Any

from squall.engine.router.operators import canonical
from squall.engine.router.patterns import (
    Leaf,
    Node,
    Pattern,
    compile_pattern,
    leaf_values,
    object_values,
)

Path = tuple[str, ...]
Anchor = tuple[Path, str, Hashable]

# Relative cost of an anchor kind: how many events it is likely to let through.
_WEIGHT = {"eq": 1, "ci": 1, "pre": 4, "pre-ci": 4, "suf": 4, "suf-ci": 4, "any": 64}
_AFFIX = ("pre", "pre-ci", "suf", "suf-ci")


class _PathIndex:
    """Rules anchored at one field path: per anchor kind, a table from key to rule ids."""

    __slots__ = ("lengths", "tables")

    def __init__(self) -> None:
        self.tables: dict[str, dict[Hashable, set[str]]] = {}  # only kinds in use
        # For prefix/suffix kinds, the lengths of the registered keys: a value is probed
        # once per distinct length rather than once per character.
        self.lengths: dict[str, Counter[int]] = {}

    def collect(self, value: Any, into: set[str]) -> None:
        found: set[str] | None
        for kind, table in self.tables.items():  # usually one or two kinds
            if kind == "eq":
                found = table.get(value if type(value) is str else canonical(value))
            elif kind == "any":
                found = table[None]
            elif type(value) is not str:
                continue
            elif kind == "ci":
                found = table.get(value.casefold())
            else:
                text = value.casefold() if kind.endswith("-ci") else value
                size = len(text)
                for length in self.lengths[kind]:
                    if length <= size:
                        found = table.get(
                            text[:length] if kind[0] == "p" else text[size - length :]
                        )
                        if found:
                            into |= found
                continue
            if found:
                into |= found

    def add(self, kind: str, key: Hashable, rule_id: str) -> None:
        bucket = self.tables.setdefault(kind, {}).setdefault(key, set())
        if rule_id not in bucket:
            bucket.add(rule_id)
            if kind in _AFFIX and isinstance(key, str):
                self.lengths.setdefault(kind, Counter())[len(key)] += 1

    def discard(self, kind: str, key: Hashable, rule_id: str) -> None:
        table = self.tables.get(kind, {})
        bucket = table.get(key)
        if bucket is None or rule_id not in bucket:
            return
        bucket.discard(rule_id)
        if not bucket:
            del table[key]
            if not table:
                del self.tables[kind]
        if kind in _AFFIX and isinstance(key, str):
            lengths = self.lengths[kind]
            lengths[len(key)] -= 1
            if not lengths[len(key)]:
                del lengths[len(key)]

    def size(self, kind: str, key: Hashable) -> int:
        return len(self.tables.get(kind, {}).get(key, ()))


class Matcher:
    """Rules by id; ``match(event)`` returns the ids of those whose pattern matches."""

    def __init__(self) -> None:
        self._patterns: dict[str, Pattern] = {}
        self._anchors: dict[str, list[Anchor]] = {}
        self._paths: dict[Path, _PathIndex] = {}
        self._inner: set[Path] | None = set()  # proper prefixes of indexed paths; None: stale
        self._unanchored: set[str] = set()

    def __len__(self) -> int:
        return len(self._patterns)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._patterns

    def add(self, rule_id: str, pattern: dict[str, Any] | Pattern) -> None:
        """Add or replace a rule; an invalid pattern raises ``InvalidInput``, changing nothing."""
        compiled = pattern if isinstance(pattern, Pattern) else compile_pattern(pattern)
        self.remove(rule_id)
        self._patterns[rule_id] = compiled
        anchors = self._choose(compiled.root, ())
        if anchors is None:
            self._unanchored.add(rule_id)
            return
        anchors = list(dict.fromkeys(anchors))  # $or branches may share an anchor
        self._anchors[rule_id] = anchors
        for path, kind, key in anchors:
            index = self._paths.get(path)
            if index is None:
                index = self._paths[path] = _PathIndex()
                self._inner = None
            index.add(kind, key, rule_id)

    def rebalance(self) -> None:
        """Re-file every rule under its cheapest anchors, now that all buckets are known.

        ``add`` chooses with the buckets as they are at that moment, so rules added early
        (while every bucket was empty) may sit under an anchor that many later rules share.
        Call this after loading a bus's rules.
        """
        for rule_id in list(self._anchors):
            compiled = self._patterns[rule_id]
            self.remove(rule_id)
            self.add(rule_id, compiled)

    def remove(self, rule_id: str) -> None:
        """Forget a rule; unknown ids are ignored."""
        if self._patterns.pop(rule_id, None) is None:
            return
        self._unanchored.discard(rule_id)
        for path, kind, key in self._anchors.pop(rule_id, ()):
            index = self._paths[path]
            index.discard(kind, key, rule_id)
            if not index.tables:
                del self._paths[path]
                self._inner = None

    def match(self, event: dict[str, Any]) -> set[str]:
        candidates = set(self._unanchored)
        if isinstance(event, dict) and self._paths:
            for path, values in self._flatten(event).items():
                index = self._paths[path]
                for value in values:
                    index.collect(value, candidates)
        patterns = self._patterns
        return {rule_id for rule_id in candidates if patterns[rule_id].matches(event)}

    # -- matching ------------------------------------------------------------------------

    def _flatten(self, event: dict[str, Any]) -> dict[Path, list[Any]]:
        """Leaf values at the indexed paths, arrays crushed as patterns see them."""
        inner = self._inner
        if inner is None:
            inner = self._inner = {path[:i] for path in self._paths for i in range(1, len(path))}
        paths = self._paths
        out: dict[Path, list[Any]] = {}
        stack: list[tuple[Path, dict[str, Any]]] = [((), event)]
        while stack:
            base, obj = stack.pop()
            for key, value in obj.items():
                path = (*base, key)
                if path in paths:
                    if isinstance(value, (list, dict)):
                        leaves = list(leaf_values(value))
                        if leaves:
                            out.setdefault(path, []).extend(leaves)
                    else:
                        out.setdefault(path, []).append(value)
                if path in inner:
                    for child in object_values(value):
                        stack.append((path, child))
        return out

    # -- anchoring -----------------------------------------------------------------------

    def _choose(self, node: Node, path: Path) -> list[Anchor] | None:
        """The cheapest anchor set of one of ``node``'s conjuncts, or None if none has one."""
        best: list[Anchor] | None = None
        best_cost = 0
        for option in self._options(node, path):
            cost = sum(_WEIGHT[kind] * (1 + self._size(p, kind, key)) for p, kind, key in option)
            if best is None or cost < best_cost:
                best, best_cost = option, cost
        return best

    def _options(self, node: Node, path: Path) -> Iterable[list[Anchor]]:
        for key, child in node.fields:
            where = (*path, key)
            if isinstance(child, Leaf):
                anchors = _leaf_anchors(child, where)
            else:
                anchors = self._choose(child, where)
            if anchors is not None:
                yield anchors
        for group in node.ors:
            union: list[Anchor] = []
            for branch in group:
                anchors = self._choose(branch, path)
                if anchors is None:
                    break
                union.extend(anchors)
            else:
                yield union

    def _size(self, path: Path, kind: str, key: Hashable) -> int:
        index = self._paths.get(path)
        return index.size(kind, key) if index is not None else 0


def _leaf_anchors(leaf: Leaf, path: Path) -> list[Anchor] | None:
    if leaf.if_absent:  # exists: false matches events without the field: no anchor
        return None
    if leaf.if_present or any(op.kind == "other" for op in leaf.ops):
        return [(path, "any", None)]  # subsumes every value anchor on the same path
    anchors: list[Anchor] = [(path, "eq", key) for key in leaf.exact]
    anchors += [(path, op.kind, op.key) for op in leaf.ops]
    return anchors
