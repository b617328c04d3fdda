"""The docqa app's pure parts without a platform: how a page is split into overlapping
passages, how a corrupt PDF is reported, and which /ask bodies are refused."""

from __future__ import annotations

import importlib.util
import itertools
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from fpdf import FPDF

HERE = Path(__file__).parent


def load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docqa_app", HERE / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


APP = load_app()
WORDS = [f"word{n:04d}" for n in range(400)]  # 3,999 characters, every word distinct


def test_a_long_page_is_split_at_spaces_into_overlapping_passages() -> None:
    passages = APP.split_passages("  \n".join(WORDS))
    assert len(passages) >= 8
    assert all(len(p) <= APP.CHUNK_CHARS for p in passages)
    for passage in passages:
        assert set(passage.split()) <= set(WORDS)  # no word cut in two
    for before, after in itertools.pairwise(passages):
        shared = set(before.split()) & set(after.split())
        overlap = len(" ".join(w for w in before.split() if w in shared))
        assert 0 < overlap <= APP.OVERLAP_CHARS
        assert after.split()[0] in shared  # the next passage starts inside this one
    covered = [w for p in passages for w in p.split()]
    assert sorted(set(covered)) == WORDS


def test_a_short_or_empty_page_is_one_passage_or_none() -> None:
    assert APP.split_passages("Green tea  steeps\nfor two minutes.") == [
        "Green tea steeps for two minutes."
    ]
    assert APP.split_passages(" \n\t ") == []


def test_a_word_longer_than_a_passage_is_cut_rather_than_looping() -> None:
    passages = APP.split_passages("x" * 1200)
    assert "".join(passages) == "x" * 1200 and all(len(p) <= 500 for p in passages)


def test_pages_are_numbered_from_one() -> None:
    doc = FPDF()
    doc.set_font("Helvetica", size=12)
    for text in ("first page", "second page"):
        doc.add_page()
        doc.cell(text=text)
    pages = APP.read_pages("uploads/two.pdf", bytes(doc.output()))
    assert [(n, t.strip()) for n, t in pages] == [(1, "first page"), (2, "second page")]


@pytest.mark.parametrize("body", [b"", b"not a pdf at all", b"%PDF-1.4\n garbage"])
def test_a_corrupt_pdf_raises_corrupt_pdf_naming_the_key(body: bytes) -> None:
    with pytest.raises(APP.CorruptPdf, match=r"uploads/bad\.pdf is not a PDF"):
        APP.read_pages("uploads/bad.pdf", body)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (None, "body"),
        ({"question": 3}, "question"),
        ({"question": "x" * 2001}, "question"),
        ({"question": "tea?", "k": True}, "k"),
        ({"question": "tea?", "k": 21}, "k"),
    ],
)
def test_ask_problem_names_the_field(body: object, field: str) -> None:
    wrong = APP.ask_problem(body)
    assert wrong is not None and wrong[0] == field


def test_a_good_ask_has_no_problem() -> None:
    assert APP.ask_problem({"question": "how long should green tea steep?", "k": 20}) is None
    assert APP.ask_problem({"question": "tea?"}) is None


def test_importing_the_app_loads_neither_torch_nor_numpy() -> None:
    """The zygote imports app.py and forks every sandbox from it: it must hold no threads."""
    probe = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(HERE / 'app.py')!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted(m for m in ('torch', 'numpy', 'sentence_transformers', 'pypdf')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
