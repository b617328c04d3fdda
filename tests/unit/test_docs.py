"""The docs hold no untested code: every code block is a snippet file a test runs, shell
lines a scenario test runs, or plain text; the generated references match the code."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest
from docs_blocks import DOCS, ROOT, SNIPPETS, blocks, pages

# Scenarios whose shell blocks a test runs, and the test that runs them.
SCENARIOS = {
    "quickstart-setup": "tests/integration/test_docs_quickstart.py",
    "quickstart-orders": "tests/integration/test_docs_quickstart.py",
    "quickstart-first": "tests/integration/test_docs_quickstart.py",
}
# Snippets and the tests that run them.
SNIPPET_TESTS = {
    "first_app.py": "tests/integration/test_docs_quickstart.py",
    "triggers.py": "tests/integration/test_docs_snippets.py",
    "saga.py": "tests/integration/test_docs_snippets.py",
    "triggers.yaml": "tests/integration/test_docs_snippets.py",
    "triggers_handlers.py": "tests/integration/test_docs_snippets.py",
    "dependencies.py": "tests/integration/test_dep_env_platform.py",
}


def test_the_docs_have_pages() -> None:
    names = {page.relative_to(DOCS).as_posix() for page in pages()}
    assert {"README.md", "quickstart.md", "concepts.md", "operations.md", "comparison.md",
            "reference/cli.md", "reference/admin-api.md", "reference/python.md"} <= names


@pytest.mark.parametrize("page", pages(), ids=lambda page: page.relative_to(DOCS).as_posix())
def test_every_code_block_is_tested(page) -> None:  # type: ignore[no-untyped-def]
    for block in blocks(page):
        if block.lang == "text":
            continue
        assert block.mark is not None, (
            f"{block.where()}: a ```{block.lang} block needs <!-- snippet: file --> or"
            " <!-- runs: scenario --> on the line before it, or to be ```text"
        )
        kind, name = block.mark
        if kind == "snippet":
            path = SNIPPETS / name
            assert path.is_file(), f"{block.where()}: docs/snippets/{name} does not exist"
            assert block.body == path.read_text(), (
                f"{block.where()}: the block differs from docs/snippets/{name}"
            )
            assert name in SNIPPET_TESTS, f"docs/snippets/{name}: no test runs it"
        else:
            assert name in SCENARIOS, f"{block.where()}: no test runs scenario {name!r}"


def test_every_snippet_is_shown_and_tested() -> None:
    shown = {
        b.mark[1] for page in pages() for b in blocks(page) if b.mark and b.mark[0] == "snippet"
    }
    files = {path.name for pattern in ("*.py", "*.yaml") for path in SNIPPETS.glob(pattern)}
    assert files == shown == set(SNIPPET_TESTS)
    for test in {*SNIPPET_TESTS.values(), *SCENARIOS.values()}:
        assert (ROOT / test).is_file(), test


def _generator() -> ModuleType:
    path = ROOT / "tools" / "gen_reference.py"
    spec = importlib.util.spec_from_file_location("gen_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_references_match_the_code() -> None:
    generator = _generator()
    for name, build in generator.PAGES.items():
        page = DOCS / "reference" / name
        assert page.read_text() == build(), (
            f"docs/reference/{name} is out of date: run .venv/bin/python tools/gen_reference.py"
        )


def test_no_page_holds_merge_conflict_markers() -> None:
    markdown = [ROOT / "README.md", *pages(), *ROOT.glob("examples/*/README.md")]
    for page in markdown:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            assert not line.startswith(("<<<<<<< ", ">>>>>>> ")) and line != "=======", (
                f"{page.relative_to(ROOT)}:{number}: a merge conflict marker"
            )
