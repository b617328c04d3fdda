"""The dashboard's static files: all shipped as package data, every module import resolves."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from squall.gateway.ui import UI_DIR

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "squall"
IMPORT = re.compile(r"""(?:from\s+|import\s*\(\s*)["'](\.{1,2}/[^"']+)["']""")


def test_every_file_of_the_dashboard_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["squall"]
    files = [p for p in UI_DIR.rglob("*") if p.is_file()]
    assert files
    for path in files:
        relative = path.relative_to(PACKAGE).as_posix()
        assert any(Path(relative).match(glob) and relative.count("/") == glob.count("/")
                   for glob in globs), f"{relative} is not in package-data"


def test_every_relative_import_names_a_module_that_exists() -> None:
    modules = list(UI_DIR.rglob("*.js"))
    seen = 0
    for module in modules:
        for target in IMPORT.findall(module.read_text()):
            seen += 1
            assert (module.parent / target).resolve().is_file(), f"{module.name} imports {target}"
    assert seen > len(modules)  # every page imports something


def test_the_index_loads_the_entry_module_and_styles_only_from_here() -> None:
    index = (UI_DIR / "index.html").read_text()
    assert '<script type="module" src="js/app.js"></script>' in index
    assert not re.search(r"(src|href)=\"(https?:)?//", index)  # nothing from elsewhere
    assert "<script>" not in index  # no inline script: the CSP allows none
