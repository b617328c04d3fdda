"""Import the handlers a manifest names as ``"module:function"`` and remember their files,
so the app's version hash changes when any of them does."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from squall.errors import ConfigError


class Imports:
    """Resolves references from modules beside the manifest (its directory goes first on
    ``sys.path``, as ``load_app`` does for an ``app.py``)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.files: dict[str, Path] = {}
        if str(base) not in sys.path:
            sys.path.insert(0, str(base))

    def callable(self, ref: Any, path: str) -> Callable[..., Any]:
        if not isinstance(ref, str) or ref.count(":") != 1 or not all(ref.split(":")):
            raise ConfigError(
                f"{path}: expected 'module:function', got {ref!r}", field=path, value=repr(ref)
            )
        module_name, attr = ref.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (module_name + ".").startswith(exc.name + "."):
                raise  # the module exists but imports something missing: its own error
            raise ConfigError(
                f"{path}: no module named {module_name!r} (looked in {self.base} and on"
                " sys.path)",
                field=path,
            ) from None
        found: Any = module
        for part in attr.split("."):
            found = getattr(found, part, None)
            if found is None:
                raise ConfigError(
                    f"{path}: module {module_name!r} has no attribute {attr!r}", field=path
                )
        if not callable(found):
            raise ConfigError(f"{path}: {ref!r} is not callable", field=path)
        if module.__file__:
            self.files[module_name] = Path(module.__file__)
        return found  # type: ignore[no-any-return]

    def file(self, ref: Any, path: str) -> Path:
        """A file named relative to the manifest's directory."""
        if not isinstance(ref, str) or not ref:
            raise ConfigError(f"{path}: expected a file name, got {ref!r}", field=path)
        found = (self.base / ref).resolve()
        if not found.is_file():
            raise ConfigError(f"{path}: {ref!r} does not exist (in {self.base})", field=path)
        self.files[f"file:{ref}"] = found
        return found

    def source(self) -> bytes:
        """Every imported module's and named file's bytes, in a stable order."""
        parts = [
            name.encode() + b"\0" + self.files[name].read_bytes() for name in sorted(self.files)
        ]
        return b"\0".join(parts)
