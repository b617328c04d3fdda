"""Stages: the same app served as dev and as prod gets each stage's env vars and secrets."""

from __future__ import annotations

import json

import pytest

from squall.engine.platform import Platform
from squall.errors import ConfigError

APP = """
import os
import squall

app = squall.App(
    "staged",
    stages={
        "prod": {"env": {"DB": "prod-db", "MODE": "strict"}},
        "staging": squall.Stage(env={"DB": "staging-db"}),
    },
)


@app.function(env={"DB": "local-db", "OWN": "kept"}, secrets=["TOKEN"])
def where(event, ctx):
    return {
        "db": os.environ.get("DB"),
        "mode": os.environ.get("MODE"),
        "own": os.environ.get("OWN"),
        "token": ctx.secrets.get("TOKEN"),
    }
"""


async def _where(p: Platform) -> dict[str, object]:
    record = await p.invoke("where", b"null")
    assert record.result is not None, record.error
    answer: dict[str, object] = json.loads(record.result)
    return answer


async def test_each_stage_gets_its_env_and_secrets(platform, tmp_path) -> None:
    dev = await platform(APP)
    await dev.control.set_secret("TOKEN", "shared")
    await dev.control.set_secret("prod__TOKEN", "prod-only")
    assert await _where(dev) == {"db": "local-db", "mode": None, "own": "kept", "token": "shared"}

    prod = await platform(APP, data_dir=tmp_path / "prod-data", stage="prod")
    await prod.control.set_secret("TOKEN", "shared")
    await prod.control.set_secret("prod__TOKEN", "prod-only")
    assert await _where(prod) == {
        "db": "prod-db", "mode": "strict", "own": "kept", "token": "prod-only"
    }
    staging = await platform(APP, data_dir=tmp_path / "staging-data", stage="staging")
    await staging.control.set_secret("TOKEN", "shared")
    await staging.control.set_secret("prod__TOKEN", "prod-only")  # another stage's: not seen
    assert await _where(staging) == {
        "db": "staging-db", "mode": None, "own": "kept", "token": "shared"
    }


async def test_an_undeclared_stage_is_refused_by_name(platform, tmp_path) -> None:
    with pytest.raises(ConfigError, match="stage 'qa' is not declared by app 'staged'"):
        await platform(APP, stage="qa")
    with pytest.raises(ConfigError, match="stage name 'Prod!' is invalid"):
        await platform(APP, data_dir=tmp_path / "other", stage="Prod!")
