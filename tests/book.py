"""What the tests need to know about the book: where it is, which notebooks its table of
contents names, and how to build it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TOC = ROOT / "_toc.yml"
NOTEBOOKS = ROOT / "notebooks"


def toc_entries(toc: Path = TOC) -> list[str]:
    """Every ``file:`` entry of a Jupyter Book table of contents, root first, in reading order."""
    data = yaml.safe_load(toc.read_text())
    entries = [data["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                entries.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({key: value for key, value in data.items() if key != "root"})
    return entries


def resolve_entry(entry: str) -> Path | None:
    """The file a toc entry names (the toc leaves out the suffix), or None if there is none."""
    for suffix in (".ipynb", ".md"):
        path = ROOT / f"{entry}{suffix}"
        if path.exists():
            return path
    return None


def toc_notebooks() -> list[Path]:
    """The notebooks the table of contents names, in reading order."""
    paths = (resolve_entry(entry) for entry in toc_entries())
    return [path for path in paths if path is not None and path.suffix == ".ipynb"]


def build_book(source: Path, output: Path, *flags: str) -> subprocess.CompletedProcess:
    """Build the book at ``source`` into ``output`` in the smoke profile with this environment's
    ``jupyter-book``; ``flags`` go to its command line (``-W --keep-going``: the strict build)."""
    # The console script installed next to this interpreter, so the build uses this environment.
    jupyter_book = (shutil.which("jupyter-book", path=str(Path(sys.executable).parent))
                    or "jupyter-book")
    env = {**os.environ, "DISENTANGLE_PROFILE": "smoke"}
    return subprocess.run(
        [jupyter_book, "build", str(source), "--path-output", str(output), *flags],
        capture_output=True, text=True, env=env, timeout=1200,
    )
