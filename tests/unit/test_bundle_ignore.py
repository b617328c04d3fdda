"""What a bundle leaves out: caches, environments, logs and `.squallignore`'s globs."""

from __future__ import annotations

from pathlib import Path

from squall.engine.deploy.bundle import snapshot


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_ignored_files_stay_out_and_do_not_change_the_hash(tmp_path: Path) -> None:
    app = tmp_path / "app"
    _tree(
        app,
        {
            "app.py": "import squall\napp = squall.App('x')\n",
            "helpers/tax.py": "RATE = 0.2\n",
            "data/prices.json": "{}",
            "server.log": "noise",
            "__pycache__/app.cpython-311.pyc": "bytecode",
            ".venv/lib/site.py": "env",
            "scratch/big.bin": "x" * 100,
            "notes.tmp": "draft",
            ".squallignore": "# not code\nscratch/\n*.tmp\n",
        },
    )
    data = tmp_path / "data-dir"
    first = snapshot(str(app / "app.py"), data)
    kept = sorted(p.relative_to(first.root).as_posix() for p in Path(first.root).rglob("*")
                  if p.is_file())
    assert kept == [".squallignore", "app.py", "data/prices.json", "helpers/tax.py"]

    (app / "server.log").write_text("more noise")
    (app / "scratch" / "big.bin").write_text("y")
    assert snapshot(str(app / "app.py"), data).hash == first.hash

    (app / "helpers" / "tax.py").write_text("RATE = 0.25\n")
    assert snapshot(str(app / "app.py"), data).hash != first.hash
