"""Lay a stage's settings over a manifest (see ``model.stages``)."""

from __future__ import annotations

import msgspec

from squall.errors import ConfigError
from squall.model.config import Manifest
from squall.model.stages import DEFAULT_STAGE, check_stage_name


def staged(manifest: Manifest, stage: str) -> Manifest:
    """``manifest`` as stage ``stage`` serves it: the stage's env over every function's.

    An app that declares stages must declare the one asked for (``dev`` is always allowed: it
    is the default); applying a stage twice changes nothing.
    """
    check_stage_name(stage)
    if manifest.stages and stage not in manifest.stages and stage != DEFAULT_STAGE:
        known = ", ".join(sorted({DEFAULT_STAGE, *manifest.stages}))
        raise ConfigError(
            f"stage {stage!r} is not declared by app {manifest.app!r} (stages: {known})",
            field="stage",
            stage=stage,
        )
    settings = manifest.stages.get(stage)
    if settings is None or not settings.env:
        return manifest
    functions = [
        msgspec.structs.replace(fn, env={**fn.env, **settings.env}) for fn in manifest.functions
    ]
    return msgspec.structs.replace(manifest, functions=functions)
