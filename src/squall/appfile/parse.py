"""Read a manifest's YAML with YAML 1.2 booleans.

PyYAML follows YAML 1.1, where ``on``, ``off``, ``yes`` and ``no`` are booleans: the trigger
key ``on:`` would load as ``True``. This loader is ``SafeLoader`` with only ``true`` and
``false`` resolved as booleans; it builds plain data, as ``yaml.safe_load`` does.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from squall.errors import ConfigError

BOOL_TAG = "tag:yaml.org,2002:bool"


class ManifestLoader(yaml.SafeLoader):
    pass


ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ManifestLoader.add_implicit_resolver(
    BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def parse(text: bytes, name: str) -> Any:
    try:
        return yaml.load(text, Loader=ManifestLoader)  # a SafeLoader: plain data only
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{name}: not valid YAML{where}: {problem}", field="app") from None
