"""The code blocks of the Markdown pages under docs/, and what each says it is.

Every fenced block is one of:

- ```` ```text ````: output, a diagram or a listing, not code;
- preceded by ``<!-- snippet: path -->``: the whole of ``docs/snippets/path``, which a test
  runs (``test_docs.py`` checks the block and the file are the same text);
- preceded by ``<!-- runs: scenario -->``: shell commands a scenario test runs literally, in
  order; a ```` ```text ```` block right after one is output the last command prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"
FENCE = re.compile(r"^```([\w-]*)\s*$")
MARK = re.compile(r"^<!-- (snippet|runs): (\S+) -->$")


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    body: str
    mark: tuple[str, str] | None  # ("snippet", path) or ("runs", scenario)
    output: str | None = None  # the text block that follows a "runs" block

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end] != "```":
            end += 1
        previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        mark = MARK.match(previous.strip())
        body = "\n".join(lines[index + 1 : end]) + "\n"
        block = Block(page, index + 1, opening.group(1), body,
                      (mark.group(1), mark.group(2)) if mark else None)
        if block.lang == "text" and found and found[-1].mark and found[-1].mark[0] == "runs":
            after_fence = found[-1].line + found[-1].body.count("\n") + 1
            gap = lines[after_fence:index]
            if not any(line.strip() for line in gap):
                found[-1].output = body
        found.append(block)
        index = end + 1
    return found


def scenario(name: str) -> list[Block]:
    """The blocks of a scenario, in page order."""
    return [b for page in pages() for b in blocks(page) if b.mark == ("runs", name)]


def commands(block: Block) -> list[str]:
    """Its command lines: comments and blank lines dropped, ``\\`` continuations joined."""
    joined: list[str] = []
    pending = ""
    for raw in block.body.splitlines():
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    return joined
