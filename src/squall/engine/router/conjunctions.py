"""A compiled pattern as an OR of conjunctions of field conditions, in matching order.

The matcher's automaton walks one condition at a time, so each pattern is expanded into
its disjunctive normal form: ``$or`` groups and nested objects multiply out into plain
lists of ``(path, Leaf)``, and the pattern matches an event (whose objects are not
inside arrays, see the matcher) if any list has all its leaves matching. ``$or``
expansion is bounded by ``patterns.MAX_COMBINATIONS``, so this stays small.

Each list is sorted into one global order, so rules that share conditions share the
start of their walk: conditions looked up by value first (exact, case-folded, prefix,
suffix: a dict probe each), then those tested by calling an operator (numeric, cidr,
wildcard, anything-but), then ``exists: true``, then conditions a missing field can
meet. Looked-up conditions prune the most for the least work, so they go first.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from squall.engine.router.patterns import Leaf, Node, Pattern

Path = tuple[str, ...]
Condition = tuple[Path, Leaf]


def conjunctions(pattern: Pattern) -> list[list[Condition]]:
    """The pattern's conjunctions, each sorted by :func:`order`; duplicates are dropped."""
    out: dict[tuple[tuple[Path, int], ...], list[Condition]] = {}
    for conjunction in _expand(pattern.root, ()):
        ordered = sorted(conjunction, key=order)
        out.setdefault(tuple((path, id(leaf)) for path, leaf in ordered), ordered)
    return list(out.values())


def order(condition: Condition) -> tuple[int, Path]:
    path, leaf = condition
    if leaf.if_absent:
        rank = 3
    elif leaf.if_present:
        rank = 2
    elif any(op.kind == "other" for op in leaf.ops):
        rank = 1
    else:
        rank = 0
    return rank, path


def _expand(node: Node, path: Path) -> Iterator[list[Condition]]:
    factors: list[list[list[Condition]]] = []
    for key, child in node.fields:
        where = (*path, key)
        if isinstance(child, Leaf):
            factors.append([[(where, child)]])
        else:
            factors.append(list(_expand(child, where)))
    for group in node.ors:
        factors.append([c for branch in group for c in _expand(branch, path)])
    for combination in itertools.product(*factors):
        yield [condition for part in combination for condition in part]
