"""One matcher for all the rules of a bus: an automaton over field conditions.

Matching an event against N rules one by one costs O(N). Here, as in aws/event-ruler,
every rule's pattern is expanded into conjunctions of field conditions
(:mod:`.conjunctions`), and all conjunctions of all rules are threaded into one
automaton. A state holds, per field path, a *step*: the transitions that conditions on
that path lead to — dict tables keyed by exact value, case-folded value, prefix and
suffix, a short list of operator tests (numeric, cidr, wildcard, anything-but; rules
with the same operator share one), and edges for "has a value" and "has none". A rule
sits in the state its conjunction ends in. Conjunctions share their common beginnings,
so the states an event reaches depend on the values it holds, not on how many rules
there are: at 10,000 rules, an event still makes a few dict probes per field.

Matching flattens the event once into ``path -> leaf values``, visiting only paths
some rule reads, then walks the automaton from the root: per step of a reached state,
the event's values at that path pick the next states. The walk is exact, with one
exception: objects inside arrays keep their identity in EventBridge ("array-consistent"
matching: the fields of one sub-pattern must match within the same element), which a
flattened event cannot tell apart. When an event holds several objects at a path some
rule descends into, the walk is made lenient there (it then finds a superset) and the
rules reading below that path are confirmed with their compiled :class:`Pattern`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from typing import Any

from squall.engine.router.conjunctions import Condition, Path, conjunctions
from squall.engine.router.operators import Op, canonical
from squall.engine.router.patterns import Pattern, compile_pattern, leaf_values, object_values

_MISSING: Any = object()
_GENERAL, _EXACT, _PRESENT = 0, 1, 2  # _Step.mode


class _State:
    # Containers are created on first use: a large automaton is mostly small states, and
    # its size decides how much of it stays in the processor's caches.
    __slots__ = ("rules", "steps")

    def __init__(self) -> None:
        self.rules: set[str] | None = None  # rules whose conjunction ends here
        self.steps: dict[int, _Step] | None = None  # by path id


class _Step:
    """The transitions of one state on one path, by how each condition is tested."""

    __slots__ = (
        "absent", "ancestors", "exact", "folded", "mode", "ops", "present", "tables",
    )  # fmt: skip

    def __init__(self, ancestors: frozenset[int]) -> None:
        self.ancestors = ancestors  # ids of the proper prefixes of the path
        self.mode = _GENERAL  # what leads on from here, for the walk's fast paths
        self.exact: dict[Hashable, _State] | None = None
        self.folded: dict[str, _State] | None = None
        self.tables: _Affixes | None = None
        self.ops: dict[str, tuple[Op, _State]] | None = None  # by operator signature
        self.present: _State | None = None
        self.absent: _State | None = None

    def targets(self, leaf_exact: frozenset[Hashable], ops: tuple[Op, ...]) -> list[_State]:
        """The states the conditions of one leaf lead to, created as needed."""
        out: list[_State] = []
        for key in leaf_exact:
            if self.exact is None:
                self.exact = {}
            out.append(_child(self.exact, key))
        for op in ops:
            if op.kind == "ci":
                if self.folded is None:
                    self.folded = {}
                out.append(_child(self.folded, op.key))
            elif op.kind == "other":
                if self.ops is None:
                    self.ops = {}
                if op.sig not in self.ops:
                    self.ops[op.sig] = (op, _State())
                out.append(self.ops[op.sig][1])
            else:
                if self.tables is None:
                    self.tables = _Affixes()
                out.append(self.tables.child(op.kind, op.key))
        return out

    def refresh(self) -> None:
        others = self.folded or self.tables or self.ops or self.absent
        if self.exact is not None and not (others or self.present):
            self.mode = _EXACT
        elif self.present is not None and not (others or self.exact):
            self.mode = _PRESENT
        else:
            self.mode = _GENERAL

    def collect(self, values: list[Any], into: list[_State]) -> None:
        """Append the states the event's ``values`` at this path lead to."""
        if self.present is not None:
            into.append(self.present)
        exact, folded, tables, ops = self.exact, self.folded, self.tables, self.ops
        for value in values:
            if exact is not None:
                found = exact.get(value if type(value) is str else canonical(value))
                if found is not None:
                    into.append(found)
            if type(value) is str:
                if folded is not None:
                    found = folded.get(value.casefold())
                    if found is not None:
                        into.append(found)
                if tables is not None:
                    tables.collect(value, into)
            if ops is not None:
                for op, state in ops.values():
                    if op.test(value):
                        into.append(state)


class _Affixes:
    """Prefix and suffix tables by kind ("pre", "suf", "pre-ci", "suf-ci"), with the
    lengths of their keys: a value is probed once per distinct length, not per character."""

    __slots__ = ("lengths", "tables")

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, _State]] = {}
        self.lengths: dict[str, Counter[int]] = {}

    def child(self, kind: str, key: str) -> _State:
        table = self.tables.setdefault(kind, {})
        if key not in table:
            table[key] = _State()
            self.lengths.setdefault(kind, Counter())[len(key)] += 1
        return table[key]

    def collect(self, value: str, into: list[_State]) -> None:
        for kind, table in self.tables.items():
            text = value.casefold() if kind.endswith("-ci") else value
            size = len(text)
            for length in self.lengths[kind]:
                if length <= size:
                    found = table.get(text[:length] if kind[0] == "p" else text[size - length :])
                    if found is not None:
                        into.append(found)


def _child(table: dict[Any, _State], key: Any) -> _State:
    state = table.get(key)
    if state is None:
        state = table[key] = _State()
    return state


class _Field:
    """A node of the tree of paths rules read: what flattening visits."""

    __slots__ = ("children", "id", "leaf")

    def __init__(self, path_id: int) -> None:
        self.id = path_id
        self.leaf = False  # some condition reads the leaf values here
        self.children: dict[str, _Field] = {}


class Matcher:
    """Rules by id; ``match(event)`` returns the ids of those whose pattern matches."""

    def __init__(self) -> None:
        self._patterns: dict[str, Pattern] = {}
        self._conjunctions: dict[str, list[list[Condition]]] = {}
        self._build()

    def __len__(self) -> int:
        return len(self._patterns)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._patterns

    def add(self, rule_id: str, pattern: dict[str, Any] | Pattern) -> None:
        """Add or replace a rule; an invalid pattern raises ``InvalidInput``, changing nothing."""
        compiled = pattern if isinstance(pattern, Pattern) else compile_pattern(pattern)
        self.remove(rule_id)
        self._patterns[rule_id] = compiled
        self._conjunctions[rule_id] = conjunctions(compiled)
        self._thread(rule_id)

    def remove(self, rule_id: str) -> None:
        """Forget a rule; unknown ids are ignored."""
        if self._patterns.pop(rule_id, None) is None:
            return
        del self._conjunctions[rule_id]
        for state in self._ends.pop(rule_id, ()):
            if state.rules is not None:
                state.rules.discard(rule_id)
        self._ancestors.pop(rule_id, None)
        self._removed += 1
        if self._removed > 64 and self._removed > len(self._patterns):
            self.rebalance()  # dead branches now outweigh the live ones

    def rebalance(self) -> None:
        """Rebuild the automaton from the live rules, dropping branches removals left."""
        if not self._removed:
            return  # adding is order-independent: only removals leave anything to tidy
        self._build()
        for rule_id in self._patterns:
            self._thread(rule_id)

    def match(self, event: dict[str, Any]) -> set[str]:
        values: dict[int, list[Any]] = {}
        crowded: set[int] = set()  # paths holding several objects (see the module doc)
        if isinstance(event, dict):
            _flatten(event, self._fields.children, values, crowded, False)
        found: set[str] = set()
        stack = [self._root]
        pending: list[_State] = []
        while stack:
            state = stack.pop()
            if state.rules:
                found |= state.rules
            if state.steps is None:
                continue
            for path, step in state.steps.items():
                here = values.get(path)
                if here is None:
                    if step.absent is not None:
                        stack.append(step.absent)
                    continue
                if step.absent is not None and crowded and not crowded.isdisjoint(step.ancestors):
                    stack.append(step.absent)  # another element may lack the field
                if len(here) > 1:  # several values may lead to one state: walk it once
                    step.collect(here, pending)
                    stack.extend(dict.fromkeys(pending))
                    pending.clear()
                    continue
                # The fast paths below are step.collect() for one value, inlined.
                mode = step.mode
                if mode == _PRESENT:
                    stack.append(step.present)  # type: ignore[arg-type]
                    continue
                if mode != _EXACT:
                    step.collect(here, stack)
                    continue
                value = here[0]
                kind = type(value)
                following = step.exact.get(  # type: ignore[union-attr]
                    value
                    if kind is str
                    else (float, value)
                    if kind is int or kind is float
                    else canonical(value)
                )
                if following is None:
                    continue
                if following.steps is None:  # a final state: no need to visit it
                    if following.rules:
                        found |= following.rules
                else:
                    stack.append(following)
        if crowded and found:
            ancestors = self._ancestors
            patterns = self._patterns
            found = {
                rule_id
                for rule_id in found
                if crowded.isdisjoint(ancestors[rule_id]) or patterns[rule_id].matches(event)
            }
        return found

    # -- building ------------------------------------------------------------------------

    def _build(self) -> None:
        self._root = _State()
        self._fields = _Field(-1)
        self._path_ids: dict[Path, int] = {}
        self._ends: dict[str, list[_State]] = {}
        self._ancestors: dict[str, frozenset[int]] = {}
        self._removed = 0

    def _thread(self, rule_id: str) -> None:
        ends: list[_State] = []
        ancestors: set[int] = set()
        for conjunction in self._conjunctions[rule_id]:
            states = [self._root]
            for path, leaf in conjunction:
                path_id, above = self._register(path)
                ancestors |= above
                following: list[_State] = []
                for state in states:
                    if state.steps is None:
                        state.steps = {}
                    step = state.steps.get(path_id)
                    if step is None:
                        step = state.steps[path_id] = _Step(above)
                    following += step.targets(
                        frozenset() if leaf.if_present else leaf.exact,
                        () if leaf.if_present else leaf.ops,
                    )
                    if leaf.if_present:
                        step.present = step.present or _State()
                        following.append(step.present)
                    if leaf.if_absent:
                        step.absent = step.absent or _State()
                        following.append(step.absent)
                    step.refresh()
                states = list(dict.fromkeys(following))
            for state in states:
                if state.rules is None:
                    state.rules = set()
                state.rules.add(rule_id)
            ends += states
        self._ends[rule_id] = ends
        self._ancestors[rule_id] = frozenset(ancestors)

    def _register(self, path: Path) -> tuple[int, frozenset[int]]:
        """The id of ``path`` (flattening now visits it) and the ids of its ancestors."""
        node = self._fields
        above: list[int] = []
        for depth, key in enumerate(path):
            if depth:
                above.append(node.id)
            child = node.children.get(key)
            if child is None:
                prefix = path[: depth + 1]
                child = node.children[key] = _Field(
                    self._path_ids.setdefault(prefix, len(self._path_ids))
                )
            node = child
        node.leaf = True
        return node.id, frozenset(above)


def _flatten(
    obj: dict[str, Any],
    fields: dict[str, _Field],
    out: dict[int, list[Any]],
    crowded: set[int],
    merge: bool,
) -> None:
    """Leaf values at the paths rules read, arrays crushed as patterns see them.

    ``merge`` is set below a path holding several objects: their values add up.
    """
    for key, field in fields.items():
        value = obj.get(key, _MISSING)
        if value is _MISSING:
            continue
        nested = type(value) is list or type(value) is dict
        if field.leaf:
            leaves = list(leaf_values(value)) if nested else [value]
            if leaves:
                if merge:
                    out.setdefault(field.id, []).extend(leaves)
                else:
                    out[field.id] = leaves
        if field.children and nested:
            objects = [value] if type(value) is dict else object_values(value)
            several = len(objects) > 1
            if several:
                crowded.add(field.id)
            for item in objects:
                _flatten(item, field.children, out, crowded, merge or several)
