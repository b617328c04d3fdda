"""Change data capture: every change to the `articles` table is mirrored into a full-text
search index (SQLite FTS5) by a change-stream trigger, exactly once.

    PUT/DELETE /articles/{id} ──> articles table ──> change stream ──> index-articles ──> FTS5
    GET /search?q=… ──> search (ranked matches with a snippet)

The index lives outside the platform's store, so its writes cannot share the transaction
that advances the trigger's checkpoint. Each change carries its stream sequence, which
grows per key; the indexer applies a change and records the key's sequence in one
transaction of the index, and skips a change whose sequence it has recorded. A batch
delivered again — after a failure, or a crash between the index's commit and the checkpoint —
then changes nothing: each change takes effect exactly once.
"""

import os
import sqlite3
from pathlib import Path

import squall

app = squall.App("cdc-sync")
app.table("articles", partition_key="id", stream="new_and_old")

INDEX = os.environ.get("SEARCH_INDEX", ".squall/search-index.db")
SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5(id UNINDEXED, title, body);
CREATE TABLE IF NOT EXISTS applied (id TEXT PRIMARY KEY, sequence INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS stats (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def open_index(ctx=None):
    """The index, created on first use; one connection per sandbox (the init hook's)."""
    Path(INDEX).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(INDEX, timeout=10, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    return conn


def count(conn, name, by=1):
    conn.execute(
        "INSERT INTO stats VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + ?",
        (name, by, by),
    )


@app.on_change("articles", batch_size=50, name="index-articles", init=open_index)
def index_articles(event, ctx):
    conn = ctx.state
    for change in event["records"]:
        key = change["keys"]["id"]
        conn.execute("BEGIN IMMEDIATE")
        try:
            seen = conn.execute("SELECT sequence FROM applied WHERE id = ?", (key,)).fetchone()
            if seen is not None and seen[0] >= change["sequence"]:
                count(conn, "replays_skipped")
                conn.execute("COMMIT")
                continue
            conn.execute("DELETE FROM docs WHERE id = ?", (key,))
            if change["eventName"] != "REMOVE":
                article = change["new"]
                conn.execute("INSERT INTO docs (id, title, body) VALUES (?, ?, ?)",
                             (key, article.get("title", ""), article.get("body", "")))
            conn.execute(
                "INSERT INTO applied VALUES (?, ?) ON CONFLICT (id) DO UPDATE"
                " SET sequence = excluded.sequence",
                (key, change["sequence"]),
            )
            count(conn, "changes_applied")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        article = change.get("new") or {}
        if article.get("fail_once") and _first_failure(conn, key):
            # Stands in for a crash after the index committed, before the checkpoint did:
            # the batch is delivered again and must change nothing.
            raise RuntimeError(f"indexing {key!r} failed after its index commit")


def _first_failure(conn, key):
    marker = f"failed:{key}"
    if conn.execute("SELECT 1 FROM stats WHERE name = ?", (marker,)).fetchone():
        return False
    count(conn, marker)
    return True


@app.http("PUT /articles/{id}", permissions=["table:articles"])
def put_article(request, ctx):
    article = request.json()
    if not isinstance(article, dict) or not isinstance(article.get("title"), str):
        return squall.Response(
            {"error": {"field": "title", "message": "an article needs a string title"}},
            status=400,
        )
    return ctx.tables["articles"].put({**article, "id": request.path_params["id"]})


@app.http("DELETE /articles/{id}", permissions=["table:articles"])
def delete_article(request, ctx):
    ctx.tables["articles"].delete({"id": request.path_params["id"]})
    return squall.Response(None, status=204)


@app.http("GET /search", init=open_index)
def search(request, ctx):
    """Articles matching the FTS5 query ``q``, best first, with a snippet of the match."""
    query = request.query.get("q", "")
    if not query.strip():
        return squall.Response(
            {"error": {"field": "q", "message": "give a search query: ?q=words"}}, status=400
        )
    try:
        rows = ctx.state.execute(
            "SELECT id, title, snippet(docs, 2, '[', ']', '…', 8) FROM docs"
            " WHERE docs MATCH ? ORDER BY rank LIMIT 20",
            (query,),
        ).fetchall()
    except sqlite3.OperationalError as exc:
        return squall.Response({"error": {"field": "q", "message": str(exc)}}, status=400)
    return [{"id": row[0], "title": row[1], "snippet": row[2]} for row in rows]


@app.http("GET /index/stats", init=open_index)
def index_stats(request, ctx):
    return dict(ctx.state.execute("SELECT name, value FROM stats").fetchall())
