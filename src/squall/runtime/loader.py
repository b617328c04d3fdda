"""Find the user's ``squall.App`` from ``path/to/app.py``, ``module``, ``module:attr`` or a
manifest, ``path/to/squall.yaml``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from squall.app import App
from squall.errors import ConfigError


def load_app(ref: str) -> tuple[App, bytes]:
    """Import the app; return it and its module's source bytes (for the version hash): for a
    manifest, its own and those of the handler modules it names."""
    if ref.endswith((".yaml", ".yml")):
        from squall.appfile import load_app_file  # PyYAML only for apps that use it

        app, source = load_app_file(ref)
        app.root = Path(ref).resolve().parent  # where requirements.txt is found
        return app, source
    module_ref = ref.partition(":")[0]
    if module_ref.endswith(".py") or "/" in module_ref:
        path = Path(module_ref).resolve()
        if not path.is_file():
            raise ConfigError(f"app file {module_ref!r} does not exist", field="app")
        sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"cannot import {module_ref!r} as Python", field="app")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        source = path.read_bytes()
    else:
        sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(module_ref)
        except ModuleNotFoundError as exc:
            if exc.name != module_ref.split(".")[0] and exc.name != module_ref:
                raise
            raise ConfigError(
                f"no module named {module_ref!r}: pass a file (app.py) or an importable module",
                field="app",
            ) from None
        source = Path(module.__file__).read_bytes() if module.__file__ else b""
    app = _find_app(module, ref)
    if module.__file__:  # where requirements.txt and relative requirement paths are found
        app.root = Path(module.__file__).resolve().parent
    return app, source


def _find_app(module: ModuleType, ref: str) -> App:
    module_ref, _, attr = ref.partition(":")
    if attr:
        app = getattr(module, attr, None)
        if not isinstance(app, App):
            raise ConfigError(f"{ref!r} is not a squall.App", field="app")
        return app
    apps = [value for value in vars(module).values() if isinstance(value, App)]
    if len(apps) != 1:
        found = "no squall.App" if not apps else f"{len(apps)} squall.App objects"
        raise ConfigError(
            f"{module_ref!r} defines {found}: name one with {module_ref}:<variable>", field="app"
        )
    return apps[0]
