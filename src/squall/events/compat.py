"""BACKWARD compatibility of a schema's next version: every document valid under version N must
stay valid under version N+1.

Hand-written on purpose. No maintained library says *why* one JSON Schema fails to contain
another, and the reason is what a refused registration must carry ("required field 'coupon'
added"). jsonschema-rs's canonical forms can decide containment for part of the language, but
answer yes/no/unknown, and unknown for changes as common as number → integer. So the walk below
proves containment keyword by keyword for the common keywords and names every change it cannot
prove harmless; only then is the library asked, and only its YES (a proof) overrules the walk.

The walk is conservative: new is a conjunction of constraints (keyword groups), and each must be
shown to hold for everything old admits, using what old's own keywords guarantee. Dropping some
of old's guarantees only makes old larger, so using fewer of them is always sound; a keyword
group the walk does not model passes only when old holds the very same group.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs

from squall.events.compat_rules import (
    OLD_DRAFTS,
    Schema,
    child_pointer,
    draft_of,
    fraction,
    json_equal,
    limit_of,
    limit_text,
    may_be,
    refs_in,
    resolve_ref,
    show_value,
    tighter_or_equal,
    type_names,
    types_of,
)
from squall.events.schemas import render_path

# Keywords that constrain nothing the walk must check (annotations, and `format`, which is not
# asserted: validators are built with validate_formats=False).
ANNOTATIONS = frozenset(
    {"title", "description", "$comment", "examples", "default", "deprecated", "readOnly",
     "writeOnly", "$schema", "$defs", "definitions", "format", "contentMediaType",
     "contentEncoding", "contentSchema", "$vocabulary", "$id", "$anchor", "$dynamicAnchor"}
)
MODELED = frozenset(
    {"type", "enum", "const", "minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum",
     "multipleOf", "minLength", "maxLength", "pattern", "minItems", "maxItems", "uniqueItems",
     "items", "prefixItems", "additionalItems", "required", "properties", "patternProperties",
     "additionalProperties", "minProperties", "maxProperties", "$ref", "allOf", "anyOf", "oneOf"}
)
# Assertions the walk does not model: a new version passes them only unchanged.
UNMODELED = frozenset(
    {"not", "dependentSchemas", "dependentRequired", "dependencies", "propertyNames",
     "$dynamicRef", "$recursiveRef"}
)
# Keywords whose meaning depends on their siblings' (so unchanged is not enough either).
UNEVALUATED = frozenset({"unevaluatedProperties", "unevaluatedItems"})
# Groups whose keywords mean something only together: compared as one unit.
GROUPS = ({"if", "then", "else"}, {"contains", "minContains", "maxContains"})
MAX_STEPS = 10_000  # subschema pairs compared, at most
_BOUNDS = (  # keyword, the type it applies to, whether it is a lower bound
    ("minLength", "string", True), ("maxLength", "string", False),
    ("minItems", "array", True), ("maxItems", "array", False),
    ("minProperties", "object", True), ("maxProperties", "object", False),
)


def incompatibilities(old: Schema, new: Schema) -> list[str]:
    """Why a document valid under ``old`` might be invalid under ``new``; empty means it cannot.

    The schemas must be valid (``events.schemas.compile_schema``); paths are instance paths
    (``data.items[].qty``).
    """
    walk = _Walk(old, new)
    if walk.drafts_differ():
        return walk.findings
    walk.covers(old, new, "data", "#", "#")
    return list(dict.fromkeys(walk.findings))


def backward_problems(old: Schema, new: Schema) -> list[str]:
    """``incompatibilities``, unless jsonschema-rs proves that ``new`` contains ``old``."""
    problems = incompatibilities(old, new)
    if problems and _library_proves(old, new):
        return []
    return problems


def _library_proves(old: Schema, new: Schema) -> bool:
    try:
        verdict = jsonschema_rs.canonicalize(new).covers(jsonschema_rs.canonicalize(old))
    except Exception:  # any schema it cannot model is simply not proven
        return False
    return verdict == jsonschema_rs.canonical.Containment.YES


class _Walk:
    def __init__(self, old_root: Schema, new_root: Schema) -> None:
        self.old_root, self.new_root = old_root, new_root
        self.findings: list[str] = []
        self._assumed: set[tuple[str, str]] = set()  # pointer pairs under comparison (recursion)
        self._new_validators: jsonschema_rs.ValidatorMap | None = None
        self._old_draft = draft_of(old_root)
        self._new_draft = draft_of(new_root)

    def drafts_differ(self) -> bool:
        if self._old_draft != self._new_draft:
            self.findings.append(
                f"data: the versions use different JSON Schema drafts ($schema"
                f" {self._old_draft} and {self._new_draft}): not checked"
            )
            return True
        return False

    def note(self, path: str, message: str) -> None:
        self.findings.append(f"{path}: {message}")

    # --- the walk ------------------------------------------------------------------------

    def covers(self, old: Schema, new: Schema, path: str, old_ptr: str, new_ptr: str) -> None:
        """Note every way ``new`` may reject a value ``old`` accepts."""
        if new is True or old is False or new == {}:
            return
        old, old_ptr = self._follow(self.old_root, old, old_ptr)
        new, new_ptr = self._follow(self.new_root, new, new_ptr)
        if new is True or old is False or new == {}:
            return
        if len(self._assumed) > MAX_STEPS:
            self.note(path, "the schemas are too large to compare: not checked")
            return
        if (old_ptr, new_ptr) in self._assumed:
            return  # a recursive schema met again: assume what is being shown (coinduction)
        self._assumed.add((old_ptr, new_ptr))
        if new is False:
            self.note(path, "no value is allowed any more")
            return
        old_kw = self._knowledge({} if old is True else old, old_ptr)
        assert isinstance(new, dict)
        if self._same(old, new):
            return
        if "enum" in old_kw or "const" in old_kw:
            self._values_still_valid(old_kw, path, new_ptr)
            return
        for alternative in ("anyOf", "oneOf"):
            branches = old_kw.get(alternative)
            if isinstance(branches, list) and not self._same(branches, new.get(alternative)):
                # old is a disjunction: each of its branches must be covered on its own
                rest = {k: v for k, v in old_kw.items() if k != alternative}
                for i, branch in enumerate(branches):
                    if branch is not False:
                        part = {**rest, **branch} if isinstance(branch, dict) else rest
                        self.covers(part, new, path, f"{old_ptr}/{alternative}/{i}", new_ptr)
                return
        if self._new_draft in OLD_DRAFTS and "$ref" in new:
            new = {"$ref": new["$ref"]}  # before 2019-09, $ref's siblings are ignored
        for keyword, value in new.items():
            if keyword == "$ref":
                target, pointer = resolve_ref(self.new_root, value, new_ptr)
                if target is None:
                    self.note(path, f"$ref {value!r} is not a local reference: not checked")
                else:
                    self.covers(old, target, path, old_ptr, pointer)
            elif keyword == "allOf":
                for i, part in enumerate(value):
                    self.covers(old, part, path, old_ptr, f"{new_ptr}/allOf/{i}")
            elif keyword == "anyOf":
                self._some_branch_covers(old, value, path, old_ptr, new_ptr)
            elif keyword == "oneOf" and not self._same(old_kw.get("oneOf"), value):
                # a value may match several branches, which oneOf refuses: only unchanged passes
                self.note(path, "oneOf added or changed: not checked")
        self._keywords(old_kw, new, path, old_ptr, new_ptr)

    def _follow(self, root: Schema, schema: Schema, ptr: str) -> tuple[Schema, str]:
        """A schema that is only a local $ref, replaced by its target (so that pointers of a
        recursive schema repeat and the walk ends)."""
        for _ in range(16):
            if not isinstance(schema, dict) or "$ref" not in schema:
                break
            if set(schema) - ANNOTATIONS != {"$ref"}:
                break
            target, pointer = resolve_ref(root, schema["$ref"], ptr)
            if target is None:
                break
            schema, ptr = target, pointer
        return schema, ptr

    def _keywords(
        self, old: dict[str, Any], new: dict[str, Any], path: str, old_ptr: str, new_ptr: str
    ) -> None:
        old_types = types_of(old)
        self._type(old_types, new, path)
        for keyword in ("enum", "const"):  # old has neither (it would have been enumerated)
            if keyword in new:
                allowed = new["enum"] if keyword == "enum" else [new["const"]]
                shown = ", ".join(show_value(v) for v in allowed[:5])
                self.note(path, f"{keyword} added: only {shown} allowed")
        if may_be(old_types, "number"):
            self._numbers(old, new, path, old_types)
        if may_be(old_types, "string") and "pattern" in new and new["pattern"] != old.get(
            "pattern"
        ):
            was = old.get("pattern")
            change = f"changed from {was!r} to" if was is not None else "added:"
            self.note(path, f"pattern {change} {new['pattern']!r}")
        for keyword, kind, lower in _BOUNDS:
            if may_be(old_types, kind) and keyword in new:
                self._bound(keyword, old.get(keyword), new[keyword], lower, path)
        if may_be(old_types, "array"):
            self._arrays(old, new, path, old_ptr, new_ptr)
        if may_be(old_types, "object"):
            self._objects(old, new, path, old_ptr, new_ptr)
        for keyword in sorted(new.keys() & UNMODELED):
            if not self._same(old.get(keyword), new[keyword]):
                self.note(path, f"{keyword} added or changed: not checked")
        for keyword in sorted(new.keys() & UNEVALUATED):
            self.note(path, f"{keyword} with changed siblings: not checked")
        for group in GROUPS:
            if group & new.keys() and not all(
                self._same(old.get(k), new.get(k)) for k in group
            ):
                self.note(path, f"{'/'.join(sorted(group & new.keys()))} changed: not checked")

    def _type(self, old_types: set[str] | None, new: dict[str, Any], path: str) -> None:
        new_types = types_of(new)
        if new_types is None:
            return
        if old_types is None:
            restricted = type_names(new_types)
            self.note(path, f"type restricted to {restricted} where any type was allowed")
            return
        for kind in sorted(old_types):
            if kind in new_types or (kind == "integer" and "number" in new_types):
                continue
            if kind == "number" and "integer" in new_types:
                self.note(path, "type narrowed from number to integer")
            else:
                self.note(path, f"type {kind!r} no longer allowed (now {type_names(new_types)})")

    def _numbers(
        self, old: dict[str, Any], new: dict[str, Any], path: str, old_types: set[str] | None
    ) -> None:
        for lower in (True, False):
            wanted = limit_of(new, lower)
            if wanted is None:
                continue
            have = limit_of(old, lower)
            name = "minimum" if lower else "maximum"
            if have is None:
                self.note(path, f"{limit_text(wanted, lower)} added")
            elif not tighter_or_equal(have, wanted, lower):
                moved = "raised" if lower else "lowered"
                if have[1] or wanted[1]:
                    was, now = limit_text(have, lower), limit_text(wanted, lower)
                else:
                    was, now = str(have[0]), str(wanted[0])
                self.note(path, f"{name} {moved} from {was} to {now}")
        step = new.get("multipleOf")
        if step is not None and step != old.get("multipleOf"):
            old_step = old.get("multipleOf")
            if step == 1 and old_types is not None and old_types <= {"integer"}:
                return
            if old_step is not None and (fraction(old_step) / fraction(step)).denominator == 1:
                return
            since = "added" if old_step is None else f"(was {old_step})"
            self.note(path, f"multipleOf {step} {since}")

    def _bound(self, keyword: str, was: int | None, now: int, lower: bool, path: str) -> None:
        if was is None:
            if (lower and now > 0) or not lower:
                self.note(path, f"{keyword} {now} added")
        elif (lower and now > was) or (not lower and now < was):
            self.note(path, f"{keyword} {'raised' if lower else 'lowered'} from {was} to {now}")

    def _arrays(
        self, old: dict[str, Any], new: dict[str, Any], path: str, old_ptr: str, new_ptr: str
    ) -> None:
        unique = new.get("uniqueItems") is True and old.get("uniqueItems") is not True
        if unique and old.get("maxItems", 2) > 1:
            self.note(path, "uniqueItems added")
        positional = ("prefixItems", "additionalItems")
        tuple_form = any(k in d for d in (old, new) for k in positional) or any(
            isinstance(d.get("items"), list) for d in (old, new)
        )
        if tuple_form:
            if not all(self._same(old.get(k), new.get(k)) for k in (*positional, "items")):
                self.note(path, "positional items (prefixItems, items as a list) changed:"
                          " not checked")
            return
        if "items" in new:
            self.covers(old.get("items", True), new["items"], f"{path}[]",
                        f"{old_ptr}/items", f"{new_ptr}/items")

    def _objects(
        self, old: dict[str, Any], new: dict[str, Any], path: str, old_ptr: str, new_ptr: str
    ) -> None:
        for name in sorted(set(new.get("required", ())) - set(old.get("required", ()))):
            self.note(path, f"required field {name!r} added")
        keys = ("properties", "patternProperties", "additionalProperties")
        if not any(k in new for k in keys):
            return
        old_props: dict[str, Any] = old.get("properties", {})
        new_props: dict[str, Any] = new.get("properties", {})
        if ("patternProperties" in old or "patternProperties" in new) and not (
            self._same(old.get("patternProperties"), new.get("patternProperties"))
            and old_props.keys() == new_props.keys()
        ):
            self.note(path, "patternProperties changed: not checked")
            return
        old_extra, new_extra = old.get("additionalProperties", True), new.get(
            "additionalProperties", True
        )
        for name in sorted(old_props.keys() | new_props.keys()):
            if name not in new_props and new_extra is False and old_props[name] is not False:
                self.note(path, f"property {name!r} removed while additionalProperties is false")
                continue
            self.covers(
                old_props.get(name, old_extra),
                new_props.get(name, new_extra),
                render_path(path, [name]),
                child_pointer(old_ptr, "properties", name) if name in old_props else
                f"{old_ptr}/additionalProperties",
                child_pointer(new_ptr, "properties", name) if name in new_props else
                f"{new_ptr}/additionalProperties",
            )
        if new_extra is False and old_extra is not False:
            allowed = ", ".join(sorted(new_props)) or "none"
            self.note(path, f"additionalProperties closed (only {allowed} allowed)")
        elif new_extra is not True:
            self.covers(old_extra, new_extra, f"{path}.*",
                        f"{old_ptr}/additionalProperties", f"{new_ptr}/additionalProperties")

    # --- old's side: what its keywords guarantee -------------------------------------------

    def _knowledge(self, old: dict[str, Any], old_ptr: str, depth: int = 0) -> dict[str, Any]:
        """Old's keywords, with $ref targets and allOf parts merged in (one value per keyword
        is kept where two disagree: fewer guarantees is still sound)."""
        merged = dict(old)
        if "$ref" in old and depth < 16:  # a chain of $refs to $refs ends somewhere
            target, pointer = resolve_ref(self.old_root, old["$ref"], old_ptr)
            if isinstance(target, dict):
                base = {} if self._old_draft in OLD_DRAFTS else merged
                merged = {**self._knowledge(target, pointer, depth + 1), **base}
                merged.pop("$ref", None)
        for part in old.get("allOf", ()):
            if isinstance(part, dict):
                merged = {**part, **merged}
        return merged

    def _some_branch_covers(
        self, old: Schema, branches: list[Schema], path: str, old_ptr: str, new_ptr: str
    ) -> None:
        for i, branch in enumerate(branches):
            trial = _Walk(self.old_root, self.new_root)
            trial._assumed = set(self._assumed)
            trial.covers(old, branch, path, old_ptr, f"{new_ptr}/anyOf/{i}")
            if not trial.findings:
                return
        self.note(path, "anyOf added or changed: no branch is shown to accept every value the"
                  " old version accepts")

    def _values_still_valid(self, old: dict[str, Any], path: str, new_ptr: str) -> None:
        values = old["enum"] if "enum" in old else [old["const"]]
        validator = self._validators().get(new_ptr)
        if validator is None:
            self.note(path, "enum/const against a schema reached by reference: not checked")
            return
        for value in values:
            errors = list(validator.iter_errors(value))
            if errors:
                first = errors[0]
                if first.kind.name == "enum" and not first.instance_path:
                    self.note(path, f"enum value {show_value(value)} removed")
                else:
                    where = render_path(path, first.instance_path)
                    self.note(where, f"value {show_value(value)} no longer valid ({first.message})")

    def _validators(self) -> jsonschema_rs.ValidatorMap:
        if self._new_validators is None:
            self._new_validators = jsonschema_rs.validator_map_for(
                self.new_root, validate_formats=False
            )
        return self._new_validators

    # --- equality ------------------------------------------------------------------------

    def _same(self, old: Any, new: Any) -> bool:
        """Equal keyword values that also mean the same: their $refs reach equal targets."""
        if not json_equal(old, new):
            return False
        refs = refs_in(new)
        return not refs or self._defs_same(refs)

    def _defs_same(self, refs: set[str]) -> bool:
        if json_equal(self.old_root, self.new_root):
            return True
        roots = (self.old_root, self.new_root)
        if any(isinstance(root, bool) for root in roots):
            return False
        defs = [(r.get("$defs"), r.get("definitions")) for r in roots if isinstance(r, dict)]
        local = ("#/$defs/", "#/definitions/")
        return json_equal(defs[0], defs[1]) and all(
            ref.startswith(local) for ref in refs | refs_in(defs[1])
        )
