"""Functions running in their own dependency environments, through a real platform."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import msgspec
import pytest
from conftest import StartPlatform
from docs_blocks import SNIPPETS
from support import SQUALL
from wheelmaker import make_wheel

from squall.engine.platform import Platform
from squall.errors import ConfigError, DependencyError
from squall.runtime import envs

REPORT = """
def report():
    import sys
    try:
        import tinydep
    except ImportError as exc:
        return {"missing": exc.name, "prefix": sys.prefix}
    return {"version": tinydep.VERSION, "prefix": sys.prefix}
"""


@pytest.fixture(autouse=True)
def no_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")


@pytest.fixture
def wheels(tmp_path: Path) -> dict[str, Path]:
    made = {
        version: make_wheel(tmp_path / "wheels", "tinydep", version, f"VERSION = {version!r}\n")
        for version in ("1.0", "2.0")
    }
    made["other"] = make_wheel(tmp_path / "wheels", "otherdep", "1.0", "NAME = 'otherdep'\n")
    return made


def write(tmp_path: Path, source: str, requirements: str | None = None) -> Path:
    path = tmp_path / "app.py"
    path.write_text(textwrap.dedent(source).lstrip() + REPORT)
    if requirements is not None:
        (tmp_path / "requirements.txt").write_text(requirements)
    return path


async def call(p: Platform, name: str) -> dict[str, str]:
    record = await p.invoke(name, b"null")
    assert record.error is None, record.error
    assert record.result is not None
    return msgspec.json.decode(record.result, type=dict[str, str])


TWO_VERSIONS = """
import squall

app = squall.App("deps")

@app.function(requirements=["./wheels/tinydep-1.0-py3-none-any.whl"])
def old(event, ctx):
    return report()

@app.function(requirements=["./wheels/tinydep-2.0-py3-none-any.whl"])
def new(event, ctx):
    return report()

@app.function()
def plain(event, ctx):
    return report()
"""


async def test_each_function_sees_its_own_requirements(
    tmp_path: Path, platform: StartPlatform, wheels: dict[str, Path]
) -> None:
    p = await platform(write(tmp_path, TWO_VERSIONS))
    old, new, plain = await call(p, "old"), await call(p, "new"), await call(p, "plain")
    assert old["version"] == "1.0"
    assert new["version"] == "2.0"
    assert plain["missing"] == "tinydep"
    assert old["prefix"] != new["prefix"]
    assert Path(old["prefix"]).parent == tmp_path / "data" / "envs"
    # Relative paths are anchored in the deploy's bundle, the snapshot of the app's directory.
    relative = wheels["1.0"].relative_to(tmp_path)
    assert p.function("old").requirements == (str(Path(p.bundle.root) / relative),)


async def test_a_second_deploy_reuses_the_environments(
    tmp_path: Path, platform: StartPlatform, monkeypatch: pytest.MonkeyPatch, wheels: object
) -> None:
    first = await platform(write(tmp_path, TWO_VERSIONS))
    before = await call(first, "old")
    await first.stop()

    def no_installer(*args: object) -> None:
        raise AssertionError("a second deploy installed the requirements again")

    monkeypatch.setattr(envs, "_run", no_installer)
    second = await platform(write(tmp_path, TWO_VERSIONS + "\n# a new version\n"))
    assert second.manifest.version != first.manifest.version
    assert await call(second, "old") == before
    assert (await call(second, "new"))["version"] == "2.0"


async def test_app_requirements_come_from_the_file_beside_it_before_import(
    tmp_path: Path, platform: StartPlatform, wheels: object
) -> None:
    source = """
    import squall
    import tinydep  # a top-level import: needs requirements.txt, read before the import

    app = squall.App("filed")

    @app.function()
    def filed(event, ctx):
        return report()
    """
    p = await platform(write(tmp_path, source, "# pinned\n./wheels/tinydep-2.0-py3-none-any.whl\n"))
    assert (await call(p, "filed"))["version"] == "2.0"


async def test_app_declared_requirements_add_to_the_file(
    tmp_path: Path, platform: StartPlatform, wheels: object
) -> None:
    source = """
    import squall

    app = squall.App("declared", requirements=["./wheels/otherdep-1.0-py3-none-any.whl"])

    @app.function()
    def both(event, ctx):
        import otherdep
        return {**report(), "other": otherdep.NAME}
    """
    p = await platform(write(tmp_path, source, "./wheels/tinydep-1.0-py3-none-any.whl\n"))
    shown = await call(p, "both")
    assert shown["version"] == "1.0"
    assert shown["other"] == "otherdep"
    assert len(p.manifest.requirements) == 2


async def test_a_spawned_sandbox_runs_in_its_environment(
    tmp_path: Path, platform: StartPlatform, wheels: object
) -> None:
    source = """
    import threading
    import squall

    threading.Thread(target=threading.Event().wait, daemon=True).start()  # not fork-safe
    app = squall.App("threads")

    @app.function(requirements=["./wheels/tinydep-2.0-py3-none-any.whl"])
    def spawned(event, ctx):
        return report()
    """
    p = await platform(write(tmp_path, source))
    assert (await call(p, "spawned"))["version"] == "2.0"


async def test_a_bad_requirement_fails_the_start_naming_the_package(
    tmp_path: Path, platform: StartPlatform
) -> None:
    source = """
    import squall

    app = squall.App("bad")

    @app.function(requirements=["squall-no-such-package>=1"])
    def broken(event, ctx):
        return report()
    """
    with pytest.raises(DependencyError) as caught:
        await platform(write(tmp_path, source))
    assert "No matching distribution found for squall-no-such-package" in caught.value.message
    assert caught.value.details["requirements"] == ["squall-no-such-package>=1"]
    built = [p for p in (tmp_path / "data" / "envs").iterdir() if not p.name.startswith(".")]
    assert built == []


async def test_a_module_that_needs_a_functions_requirement_to_import_is_refused(
    tmp_path: Path, platform: StartPlatform, wheels: object
) -> None:
    source = """
    import squall

    app = squall.App("differs")

    @app.function()
    def plain(event, ctx):
        return report()

    try:
        import tinydep
    except ImportError:
        pass
    else:
        @app.function()
        def sneaky(event, ctx):
            return report()

    @app.function(requirements=["./wheels/tinydep-1.0-py3-none-any.whl"])
    def own(event, ctx):
        return report()
    """
    with pytest.raises(ConfigError, match="must import the same way"):
        await platform(write(tmp_path, source))


def test_requirements_are_validated_naming_the_function() -> None:
    import squall

    app = squall.App("v")
    with pytest.raises(ConfigError) as caught:
        app.function("fn", requirements="tinydep")(lambda event, ctx: None)  # type: ignore[arg-type]
    assert caught.value.field == "requirements"
    assert caught.value.details["function"] == "fn"


async def test_the_dependencies_snippet_runs_two_versions_side_by_side(
    tmp_path: Path, platform: StartPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "index"  # stands in for a package index: pip finds the pins here
    for version in ("1.0", "2.1"):
        make_wheel(index, "acme_pricing", version, f"__version__ = {version!r}\n")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    app = tmp_path / "app.py"
    shutil.copy(SNIPPETS / "dependencies.py", app)
    p = await platform(app)
    assert await call(p, "quote") == {"engine": "2.1"}
    assert await call(p, "legacy-quote") == {"engine": "1.0"}


def test_squall_up_exits_2_with_pips_error(tmp_path: Path) -> None:
    write(tmp_path, 'import squall\napp = squall.App("up")\n', "squall-no-such-package==3\n")
    done = subprocess.run(
        [SQUALL, "up", "app.py", "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PIP_NO_INDEX": "1"},
    )
    assert done.returncode == 2, done.stderr
    assert "No matching distribution found for squall-no-such-package" in done.stderr
