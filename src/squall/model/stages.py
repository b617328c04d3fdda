"""Stages: one app, several environments (dev, staging, prod) with their own settings.

``squall up --stage prod`` serves the app with the ``prod`` stage's environment variables laid
over every function's own (the stage's win: they are what differs between environments), and
looks secrets up in the stage's scope first: a function asking for ``DB_URL`` gets the secret
``prod__DB_URL`` when it exists, else ``DB_URL``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

from squall.errors import ConfigError

STAGE_RE = re.compile(r"^[a-z][a-z0-9]{0,15}$")
DEFAULT_STAGE = "dev"
SCOPE_SEPARATOR = "__"


class StageConfig(msgspec.Struct, frozen=True, kw_only=True):
    env: dict[str, str] = {}
    description: str = ""


def check_stage_name(name: object, field: str = "stage") -> str:
    if not isinstance(name, str) or not STAGE_RE.match(name):
        raise ConfigError(
            f"stage name {name!r} is invalid: use 1-16 lowercase letters and digits, starting"
            " with a letter (dev, staging, prod)",
            field=field,
        )
    return name


def check_stages(stages: Mapping[str, StageConfig]) -> None:
    for name, stage in stages.items():
        check_stage_name(name, f"stages.{name}")
        for key, value in stage.env.items():
            if not isinstance(key, str) or not isinstance(value, str) or not key:
                raise ConfigError(
                    f"stage {name!r}: env {key!r}={value!r} must map names to strings",
                    field=f"stages.{name}.env",
                )


def scoped_secret(stage: str, name: str) -> str:
    """The name a stage's own value of secret ``name`` is stored under."""
    return f"{stage}{SCOPE_SEPARATOR}{name}"
