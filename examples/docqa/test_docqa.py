"""End to end: serve the docqa app with `squall up`, upload two PDFs made with fpdf2 and a
corrupt one over the bucket API, and check the answers to questions, the document list, the
dead letter, a redelivered upload and the cold and warm invocation records."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fpdf import FPDF
from support import AUTH, start_squall, stop, wait_for, wait_until_gone

HERE = Path(__file__).parent
OBJECT = "/api/v1/buckets/docs/object"

TEA = [
    "A short history of tea. Tea came from China, where it was drunk for centuries before "
    "traders carried it along the silk road. Black, green, white and oolong teas all come "
    "from the same plant, Camellia sinensis; they differ in how the leaves are withered, "
    "rolled and oxidised after picking.",
    "Brewing green tea. Green tea should steep for two to three minutes in water at about "
    "80 degrees Celsius, never boiling: water that is too hot or a steep that is too long "
    "makes green tea bitter. Use one teaspoon of leaves per cup and warm the pot first.",
    "Storing tea. Keep the leaves in an airtight tin away from light, heat and strong "
    "smells. Green tea keeps its flavour for about six months, black tea for two years.",
]
BIKE = [
    "Tools for bicycle repair. A basic kit holds tyre levers, a pump, a set of hex keys, a "
    "chain tool and a spoke key. Keep a spare inner tube in the saddle bag on every ride.",
    "Fixing a flat tyre. When a tyre goes flat from a puncture, take the wheel off, lever "
    "one side of the tyre off the rim and pull out the inner tube. Find the hole, patch it "
    "or fit a new tube, check the tyre for thorns or glass, refit it and pump it up.",
    "Adjusting the brakes. If the brake levers pull to the handlebar, tighten the cable at "
    "the barrel adjuster. Replace brake pads when their grooves have worn away.",
]


def pdf(pages: list[str]) -> bytes:
    doc = FPDF()
    doc.set_font("Helvetica", size=12)
    for text in pages:
        doc.add_page()
        doc.multi_cell(0, 8, text)
    return bytes(doc.output())


# Made once: the same bytes uploaded again have the same etag (a redelivery, to the indexer).
TEA_PDF, BIKE_PDF = pdf(TEA), pdf(BIKE)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("docqa")
    shutil.copy(HERE / "app.py", workdir / "app.py")
    proc, url = start_squall(workdir, "--retry-base", "0.05")
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0


@pytest.fixture(scope="module")
def admin(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
        yield client


def upload(admin: httpx.Client, key: str, body: bytes) -> None:
    response = admin.put(OBJECT, params={"key": key}, content=body,
                         headers={"content-type": "application/pdf"})
    assert response.status_code in (200, 201), response.text


def documents(url: str) -> dict[str, dict[str, Any]]:
    listed = httpx.get(f"{url}/documents", timeout=30).json()["documents"]
    return {d["document"]: d for d in listed}


def runs(admin: httpx.Client, function: str) -> list[dict[str, Any]]:
    found = admin.get("/api/v1/invocations", params={"function": function, "limit": 100})
    assert found.status_code == 200, found.text
    invocations: list[dict[str, Any]] = found.json()["invocations"]
    return invocations


@pytest.fixture(scope="module")
def indexed(url: str, admin: httpx.Client) -> dict[str, dict[str, Any]]:
    upload(admin, "uploads/tea.pdf", TEA_PDF)
    upload(admin, "uploads/bicycle.pdf", BIKE_PDF)

    def both() -> dict[str, dict[str, Any]] | None:
        found = documents(url)
        return found if len(found) == 2 else None

    return wait_for(both, timeout=90)


def ask(url: str, body: Any) -> httpx.Response:
    return httpx.post(f"{url}/ask", json=body, timeout=60)


def test_both_pdfs_are_indexed_per_page(indexed: dict[str, dict[str, Any]]) -> None:
    assert set(indexed) == {"tea.pdf", "bicycle.pdf"}
    for doc in indexed.values():
        assert doc["pages"] == 3 and doc["chunks"] == 3  # one short passage per page


def test_the_best_passage_answers_from_the_right_document_and_page(
    url: str, indexed: dict[str, dict[str, Any]]
) -> None:
    tea = ask(url, {"question": "how long should green tea steep?", "k": 3})
    assert tea.status_code == 200, tea.text
    best, *rest = tea.json()["passages"]
    assert (best["document"], best["page"]) == ("tea.pdf", 2)
    assert "two to three minutes" in best["text"]
    assert len(rest) == 2 and all(best["score"] > p["score"] for p in rest)

    bike = ask(url, {"question": "my bike has a flat tyre, how do I fix the puncture?"})
    assert bike.status_code == 200, bike.text
    passages = bike.json()["passages"]
    assert len(passages) == 3  # k defaults to 3
    assert (passages[0]["document"], passages[0]["page"]) == ("bicycle.pdf", 2)
    assert "inner tube" in passages[0]["text"]


def test_a_redelivered_upload_changes_nothing(
    url: str, admin: httpx.Client, indexed: dict[str, dict[str, Any]]
) -> None:
    before = runs(admin, "index-document")
    upload(admin, "uploads/tea.pdf", TEA_PDF)  # the same bytes: the same etag

    def skipped() -> dict[str, Any] | None:
        new = [r for r in runs(admin, "index-document") if r["id"] not in
               {b["id"] for b in before} and r["status"] == "succeeded"]
        return new[0] if new else None

    record = wait_for(skipped, timeout=60)
    detail = admin.get(f"/api/v1/invocations/{record['id']}").json()
    assert detail["result"] == {"document": "tea.pdf", "skipped": True}
    assert documents(url)["tea.pdf"] == indexed["tea.pdf"]


def test_a_corrupt_pdf_is_retried_then_dead_lettered(
    url: str, admin: httpx.Client, indexed: dict[str, dict[str, Any]]
) -> None:
    upload(admin, "uploads/broken.pdf", b"%PDF-1.4\n this is not really a PDF")

    def dead() -> list[dict[str, Any]] | None:
        found = admin.get("/api/v1/dead-letters", params={"function": "index-document"})
        letters: list[dict[str, Any]] = found.json()["dead_letters"]
        return letters or None

    [letter] = wait_for(dead, timeout=60)
    assert letter["attempts"] == 3
    assert letter["error"]["error_type"] == "CorruptPdf"
    assert "uploads/broken.pdf is not a PDF" in letter["error"]["message"]
    assert "broken.pdf" not in documents(url)


def test_a_removed_pdf_leaves_the_index(
    url: str, admin: httpx.Client, indexed: dict[str, dict[str, Any]]
) -> None:
    notes = ["Kettle notes. Descale the kettle every month with white vinegar and water."]
    upload(admin, "uploads/kettle.pdf", pdf(notes))
    wait_for(lambda: documents(url).get("kettle.pdf"), timeout=60)
    question = {"question": "how often should I descale the kettle?", "k": 1}
    assert ask(url, question).json()["passages"][0]["document"] == "kettle.pdf"

    removed = admin.delete(OBJECT, params={"key": "uploads/kettle.pdf"})
    assert removed.status_code in (200, 204), removed.text
    wait_for(lambda: True if "kettle.pdf" not in documents(url) else None, timeout=60)
    assert set(documents(url)) == {"tea.pdf", "bicycle.pdf"}
    assert ask(url, question).json()["passages"][0]["document"] != "kettle.pdf"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"k": 2}, "question"),
        ({"question": "   "}, "question"),
        ({"question": "tea?", "k": 0}, "k"),
        ({"question": "tea?", "k": "3"}, "k"),
        ([1, 2], "body"),
    ],
)
def test_a_bad_ask_is_refused_naming_the_field(url: str, body: Any, field: str) -> None:
    response = ask(url, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field


def test_not_json_is_refused(url: str) -> None:
    response = httpx.post(f"{url}/ask", content=b"{not json", timeout=60)
    assert response.status_code == 400 and response.json()["error"]["field"] == "body"


def test_the_model_loads_once_per_sandbox(
    url: str, admin: httpx.Client, indexed: dict[str, dict[str, Any]]
) -> None:
    for _ in range(2):
        assert ask(url, {"question": "how should tea be stored?", "k": 1}).status_code == 200
    for function in ("ask", "index-document"):
        records = runs(admin, function)
        cold = [r for r in records if r["cold"]]
        assert len(cold) == 1 and cold[0]["init_ms"] > 0, function
        assert len(records) > 1 and all(r["init_ms"] is None for r in records if not r["cold"])


def test_an_upload_acknowledged_before_a_sigkill_is_indexed_after_the_restart(
    tmp_path: Path,
) -> None:
    shutil.copy(HERE / "app.py", tmp_path / "app.py")
    data = tmp_path / "data"
    first, url = start_squall(tmp_path, "--data-dir", str(data))
    try:
        with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
            upload(client, "uploads/bicycle.pdf", BIKE_PDF)
        # The indexer's cold start loads the model for seconds: nothing is indexed yet.
        assert documents(url) == {}
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert wait_until_gone(tmp_path, data, {os.getpid()}, timeout=10) == {}

    second, url = start_squall(tmp_path, "--data-dir", str(data))
    try:
        found = wait_for(lambda: documents(url) or None, timeout=90)
        assert list(found) == ["bicycle.pdf"] and found["bicycle.pdf"]["chunks"] == 3
        best = ask(url, {"question": "how do I fix a flat tyre?", "k": 1}).json()["passages"]
        assert (best[0]["document"], best[0]["page"]) == ("bicycle.pdf", 2)
    finally:
        stop(second)
