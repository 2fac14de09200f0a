"""What the tests need to know about the book: where it is, which notebooks its table of
contents names, how to execute a chapter, and how to build the book from executed chapters."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import papermill
import pytest
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


def execute_chapter(path: Path, output: Path) -> str | None:
    """Execute one chapter in the smoke profile with papermill (from its own folder, as a reader
    runs it) into ``output``; the failure as a message naming the cell, or ``None``."""
    try:
        papermill.execute_notebook(
            str(path), str(output), parameters={"PROFILE": "smoke"}, cwd=str(path.parent),
            kernel_name="python3", progress_bar=False,
        )
    except papermill.PapermillExecutionError as err:
        source = "\n".join("    " + line for line in err.source.splitlines())
        return (f"{path.name} failed in cell {err.cell_index} (execution count {err.exec_count}):"
                f"\n{source}\n{err.ename}: {err.evalue}")
    return None


def executed_book_tree(tree: Path) -> Path:
    """A copy of the book's sources in ``tree`` that builds from chapters already executed: the
    configuration excludes ``notebooks/`` from execution, where the executed chapters are to be
    written; the rest of the book (``book/``, linked, not copied) is executed by the build as
    usual (its one page of code cells, ``book/figures_and_explorers.md``, takes seconds)."""
    tree.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["exclude_patterns"] = ["notebooks/*"]
    (tree / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copy(TOC, tree / TOC.name)
    if not (tree / "book").exists():
        (tree / "book").symlink_to(ROOT / "book", target_is_directory=True)
    (tree / "notebooks").mkdir(exist_ok=True)
    return tree


@contextlib.contextmanager
def locked(path: Path, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``path``, waiting for another worker that holds it; with
    ``wait=False``, yield False at once instead of waiting (and True when the lock is held)."""
    import fcntl

    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def shared_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder that every pytest-xdist worker of this session sees (the session's own base
    folder without xdist)."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if "PYTEST_XDIST_WORKER" in os.environ else base
    folder = root / name
    folder.mkdir(exist_ok=True)
    return folder
