"""Requirement lists: parsing, the canonical form, and where the app's come from."""

from __future__ import annotations

from pathlib import Path

import pytest

import squall
from squall.errors import ConfigError
from squall.model.config import FunctionConfig
from squall.model.requirements import normalize, parse
from squall.runtime.envs import env_key
from squall.runtime.zygotes import environments, file_requirements


def test_parse_drops_comments_and_blank_lines() -> None:
    text = "# pinned for the invoice code\n\nrequests==2.31  # http\n  ./pkgs/tinydep \n"
    assert parse(text) == ["requests==2.31", "./pkgs/tinydep"]


def test_normalize_sorts_dedupes_and_anchors_local_paths(tmp_path: Path) -> None:
    got = normalize(
        ["b==1", "./pkgs/tinydep", "a @ ../shared/a.whl", " b==1 ", "c @ file:///x.whl"], tmp_path
    )
    assert got == (
        str(tmp_path / "pkgs" / "tinydep"),
        f"a @ {(tmp_path.parent / 'shared' / 'a.whl').as_uri()}",
        "b==1",
        "c @ file:///x.whl",
    )


def test_the_key_depends_on_the_set_not_its_spelling(tmp_path: Path) -> None:
    assert env_key(normalize(["b", "a", "a"], tmp_path)) == env_key(normalize(["a", "b"], tmp_path))
    assert env_key(("a",)) != env_key(("a", "b"))


@pytest.mark.parametrize("bad", ["tinydep", ["ok", ""], ["two\nlines"], [3]])
def test_bad_requirements_name_the_function_and_field(bad: object) -> None:
    with pytest.raises(ConfigError) as caught:
        FunctionConfig(name="fn", requirements=bad).validate()  # type: ignore[arg-type]
    assert caught.value.field == "requirements"
    assert caught.value.details["function"] == "fn"


def test_requirements_are_part_of_the_manifest_and_its_version(tmp_path: Path) -> None:
    def build(extra: list[str]) -> squall.App:
        app = squall.App("shop", requirements=["base==1"])
        app.root = tmp_path
        app.function("fn", requirements=extra)(lambda event, ctx: None)
        return app

    one, two = build(["./vendor/x.whl"]).manifest(b"src"), build(["y==2"]).manifest(b"src")
    assert one.requirements == ("base==1",)
    assert one.functions[0].requirements == (str(tmp_path / "vendor" / "x.whl"),)
    assert one.version != two.version
    assert environments(one) == {"fn": (str(tmp_path / "vendor" / "x.whl"), "base==1")}


def test_the_app_reads_requirements_txt_beside_it_and_a_named_file(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("a==1\n")
    (tmp_path / "extra.txt").write_text("b==2\n# no c\n")
    app = squall.App("shop", requirements="extra.txt")
    app.root = tmp_path
    assert app.manifest().requirements == ("a==1", "b==2")
    assert file_requirements(str(tmp_path / "app.py")) == ("a==1",)


def test_a_missing_requirements_file_is_a_config_error(tmp_path: Path) -> None:
    app = squall.App("shop", requirements="nope.txt")
    app.root = tmp_path
    with pytest.raises(ConfigError, match=r"nope\.txt") as caught:
        app.manifest()
    assert caught.value.field == "requirements"


def test_requirements_cannot_be_changed_through_the_admin_api() -> None:
    with pytest.raises(ConfigError) as caught:
        FunctionConfig(name="fn").updated({"requirements": ("x",)})
    assert caught.value.field == "requirements"


def test_option_paths_are_anchored_and_nested_files_refused(tmp_path: Path) -> None:
    got = normalize(["-e ./pkgs/tinydep", "--find-links ../wheels", "-f https://x/"], tmp_path)
    assert got == (
        f"--find-links {tmp_path.parent / 'wheels'}",
        f"-e {tmp_path / 'pkgs' / 'tinydep'}",
        "-f https://x/",
    )
    (tmp_path / "requirements.txt").write_text("a==1\n-r more.txt\n")
    with pytest.raises(ConfigError, match="includes another file") as caught:
        file_requirements(str(tmp_path / "app.py"))
    assert caught.value.field == "requirements"
