"""Where each place of a manifest takes its keys from, for the generated key reference
(``docs/reference/manifest.md``); a test checks the loader accepts exactly these keys."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from squall.app import App
from squall.appfile.build import RUN_ONCE, TRIGGERS

# Keywords of app.function a trigger or resource never takes from the manifest: the name is
# the mapping key (or `name:` in a list), the init is a "module:function" of the loader's.
LOADER_KEYS = ("handler", "init")
TRIGGER_NOTE = "a string stands for `{shorthand}`; a list stacks several"


@dataclass(frozen=True)
class Place:
    path: str
    sources: tuple[Callable[..., Any], ...]
    drop: tuple[str, ...] = ()
    own: tuple[tuple[str, str], ...] = ()  # (key, meaning) the loader reads itself
    note: str = ""

    def keywords(self) -> dict[str, inspect.Parameter]:
        found: dict[str, inspect.Parameter] = {}
        for source in self.sources:
            for name, param in inspect.signature(source).parameters.items():
                if name == "self" or name in self.drop or name in found:
                    continue
                if param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                    found[name] = param
        return found

    def keys(self) -> set[str]:
        return {*self.keywords(), *(key for key, _ in self.own)}


HANDLER = ("handler", 'the handler, `"module:function"` (module beside the manifest); required')
INIT = ("init", '`"module:function"` run once per sandbox; its result is `ctx.state`')
TRIGGER_KEYS = tuple((key, f"`app.{key}` on this function: see below") for key in TRIGGERS)


def places() -> list[Place]:
    function = App.function
    found = [
        Place("settings", (App.__init__,), drop=("name",), note="`squall.App(name, ...)`"),
        Place("tables.<name>", (App.table,), drop=("name",)),
        Place("buckets.<name>", (App.bucket,), drop=("name",)),
        Place("queues.<name>", (App.queue_resource,), drop=("name",)),
        Place("streams.<name>", (App.stream_resource,), drop=("name",)),
        Place("functions.<name>", (function,), drop=("name", "init"),
              own=(HANDLER, INIT, *TRIGGER_KEYS,
                   ("projection", "`app.projection` builds a read model with this handler"))),
    ]
    for key, (method, shorthand, names_function) in TRIGGERS.items():
        found.append(Place(f"functions.<name>.{key}", (method,), drop=(names_function,),
                           note=TRIGGER_NOTE.format(shorthand=shorthand)))
    found += [
        Place("functions.<name>.projection", (App.projection,), drop=("function",),
              note="the function's own keys (but `retries`) configure the projection's"
                   " function"),
        Place("workflows.<name>", (App.workflow, function),
              drop=("name", "init", *RUN_ONCE), own=(HANDLER, INIT, *TRIGGER_KEYS)),
        Place("state_machines.<name>", (App.state_machine, function),
              drop=("name", "init", "definition", *RUN_ONCE),
              own=(("definition", "the ASL document: a mapping, or JSON text"),
                   ("definition_file", "the ASL document's JSON file, beside the manifest"),
                   INIT),
              note="give `definition` or `definition_file`"),
        Place("rules.<name>", (App.rule,), drop=("name",),
              note="`targets`: a list of mappings, each with `kind` (function, bus, http,"
                   " queue) and that target's fields"),
        Place("budgets[]", (App.budget,)),
        Place("alerts.<name>", (App.alert,), drop=("name",)),
    ]
    return found
