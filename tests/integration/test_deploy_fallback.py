"""A deploy whose new platform fails to start puts the previous code back: the old bundle is
loaded again and serves, and the deploy answers with the error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from squall.engine.platform import Platform, PlatformConfig, Prepared, prepare
from squall.errors import ConfigError
from squall.gateway import host as host_module
from squall.gateway.host import Host

APP = """
import squall

app = squall.App("fallback")


@app.function()
def which(event, ctx):
    return "{label}"
"""


async def test_a_failed_start_restores_the_previous_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    app = source / "app.py"
    app.write_text(APP.format(label="v1"))
    config = PlatformConfig(app=str(app), data_dir=tmp_path / "data")
    served = Host(config, await Platform.start(config), "http://127.0.0.1:1")
    try:
        app.write_text(APP.format(label="v2"))
        new = await prepare(str(app), config.data_dir)
        real_start = Platform.start

        async def failing_start(cfg: PlatformConfig, prepared: Prepared | None = None) -> Any:
            if prepared is not None and prepared.bundle.hash == new.bundle.hash:
                await prepared.launcher.close()
                raise ConfigError("the store refused the new schema", field="store")
            return await real_start(cfg, prepared)

        monkeypatch.setattr(host_module.Platform, "start", failing_start)
        with pytest.raises(ConfigError, match="refused the new schema"):
            await served.deploy(new, prune=True)
        monkeypatch.setattr(host_module.Platform, "start", real_start)

        record = await served.platform.invoke("which", b"null")
        assert record.result is not None and json.loads(record.result) == "v1"
        assert record.version == "1"
        assert served.platform.started
    finally:
        await served.stop()
