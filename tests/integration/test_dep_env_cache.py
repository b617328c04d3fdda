"""The dependency environment cache: real virtualenvs, real pip, local wheels, no index."""

from __future__ import annotations

import logging
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from wheelmaker import make_wheel

from squall.errors import DependencyError
from squall.runtime import envs
from squall.runtime.envs import READY, EnvCache, env_key


@pytest.fixture(autouse=True)
def no_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")


def run(python: str, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)


async def test_an_environment_is_built_once_then_found_without_pip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = make_wheel(tmp_path / "wheels", "tinydep", "1.0", "VERSION = '1.0'\n")
    cache = EnvCache(tmp_path / "envs")
    requirements = (str(wheel),)
    env = await cache.ensure(requirements)
    assert env.path == tmp_path / "envs" / env_key(requirements)
    assert (env.path / READY).is_file()
    shown = run(env.python, "import tinydep, squall.runtime.zygote; print(tinydep.VERSION)")
    assert shown.stdout.strip() == "1.0", shown.stderr

    def no_installer(*args: object) -> None:
        raise AssertionError("the installer ran for an environment that is built")

    monkeypatch.setattr(envs, "_run", no_installer)
    again = await EnvCache(tmp_path / "envs").ensure(requirements)
    assert again == env
    assert EnvCache(tmp_path / "envs").build(requirements) == env  # the locked path, too


async def test_the_env_sees_squall_but_not_the_platforms_other_packages(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "wheels", "tinydep", "1.0", "")
    env = await EnvCache(tmp_path / "envs").ensure((str(wheel),))
    assert run(env.python, "import msgspec, squall.app").returncode == 0
    hidden = run(env.python, "import pytest")  # installed for the platform, not in the env
    assert "No module named 'pytest'" in hidden.stderr


async def test_a_pinned_package_wins_over_the_platforms_copy(tmp_path: Path) -> None:
    # The env's own site-packages come before the platform's runtime links on sys.path.
    wheel = make_wheel(tmp_path / "wheels", "croniter", "0.0.1", "PINNED = True\n")
    env = await EnvCache(tmp_path / "envs").ensure((str(wheel),))
    shown = run(env.python, "import croniter; print(croniter.PINNED)")
    assert shown.stdout.strip() == "True", shown.stderr


async def test_a_bad_requirement_reports_pips_error_and_caches_nothing(tmp_path: Path) -> None:
    cache = EnvCache(tmp_path / "envs")
    requirements = ("squall-no-such-package==1.0",)
    with pytest.raises(DependencyError) as caught:
        await cache.ensure(requirements)
    error = caught.value
    assert error.field == "requirements"
    assert error.details["requirements"] == ["squall-no-such-package==1.0"]
    assert "No matching distribution found for squall-no-such-package" in error.details["stderr"]
    assert "squall-no-such-package" in error.message
    assert cache.find(requirements) is None
    left = [p.name for p in (tmp_path / "envs").iterdir() if not p.name.endswith(".lock")]
    assert left == []


async def test_a_build_that_died_is_redone(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "wheels", "tinydep", "1.0", "VERSION = '1.0'\n")
    requirements = (str(wheel),)
    cache = EnvCache(tmp_path / "envs")
    key = env_key(requirements)
    (tmp_path / "envs" / f".building-{key}").mkdir(parents=True)  # a crash mid-install
    (tmp_path / "envs" / key).mkdir()  # or after the rename, before anything was trusted
    assert cache.find(requirements) is None
    env = await cache.ensure(requirements)
    assert run(env.python, "import tinydep").returncode == 0
    assert not (tmp_path / "envs" / f".building-{key}").exists()


def test_two_builders_of_one_set_install_once_and_log_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    wheel = make_wheel(tmp_path / "wheels", "tinydep", "1.0", "")
    requirements = (str(wheel),)
    installs: list[Path] = []
    create = envs._create

    def counted(path: Path, wanted: tuple[str, ...]) -> None:
        installs.append(path)
        time.sleep(0.3)  # the second builder arrives while the first holds the lock
        create(path, wanted)

    monkeypatch.setattr(envs, "_create", counted)
    caplog.set_level(logging.INFO, logger="squall")
    with ThreadPoolExecutor(2) as pool:  # two platforms on one cache, as two threads
        built = list(pool.map(lambda _: EnvCache(tmp_path / "envs").build(requirements), [1, 2]))
    assert built[0] == built[1]
    assert len(installs) == 1
    assert "Successfully installed tinydep-1.0" in caplog.text
    assert f"building environment {built[0].key[:12]}" in caplog.text
