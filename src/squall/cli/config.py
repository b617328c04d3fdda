"""Where the CLI finds the platform and its key: options, environment, then a config file.

``squall login`` writes ``~/.config/squall/config.json`` (or ``$SQUALL_CONFIG``) readable by
its owner only: ``{"url": ..., "key": ...}``. Resolution, first hit wins:

    url:  --url, SQUALL_URL, config file, http://127.0.0.1:8787
    key:  --key, SQUALL_API_KEY, config file
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from squall.client import DEFAULT_URL

CONFIG_ENV = "SQUALL_CONFIG"


class ConfigFileError(ValueError):
    """The config file exists but cannot be used; the message names it."""


def config_path() -> Path:
    configured = os.environ.get(CONFIG_ENV)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "squall" / "config.json"


def load() -> dict[str, Any]:
    path = config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigFileError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise ConfigFileError(f"{path} is not valid JSON: fix or delete it") from None
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path} must hold a JSON object")
    return data


def save(url: str, key: str) -> Path:
    """Write the config atomically, owner read/write only, before a byte of the key lands."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(path.name + ".tmp")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"url": url, "key": key}, out, indent=2)
        out.write("\n")
    os.chmod(partial, 0o600)
    os.replace(partial, path)
    return path


def resolve(url: str | None, key: str | None) -> tuple[str, str | None]:
    """Fill what the options and environment left unset from the config file."""
    if url is not None and key is not None:
        return url, key
    data = load()
    if url is None:
        url = data.get("url") if isinstance(data.get("url"), str) else None
    if key is None:
        key = data.get("key") if isinstance(data.get("key"), str) else None
    return url or DEFAULT_URL, key
