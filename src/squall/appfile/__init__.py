"""``squall.yaml``: an app declared in a YAML manifest instead of decorators.

Every section calls the ``App`` method its decorator would (``functions.<name>.http`` is
``app.http``, ``queues`` is ``app.queue_resource`` …), with the method's keyword names as
keys, so both ways validate alike; errors name the dotted path of the key at fault.
"""

from __future__ import annotations

from pathlib import Path

from squall.app import App
from squall.appfile.build import SECTIONS, TRIGGERS, build
from squall.appfile.imports import Imports
from squall.appfile.parse import parse
from squall.errors import ConfigError

__all__ = ["SECTIONS", "TRIGGERS", "load_app_file"]


def load_app_file(path: str | Path) -> tuple[App, bytes]:
    """The app ``path`` declares, and the bytes of the manifest and of every module and
    file it names (for the version hash)."""
    file = Path(path).resolve()
    try:
        text = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"app file {str(path)!r} does not exist", field="app") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {str(path)!r}: {exc.strerror}", field="app") from None
    doc = parse(text, str(path))
    imports = Imports(file.parent)
    app = build(doc, imports)
    return app, text + b"\0" + imports.source()
