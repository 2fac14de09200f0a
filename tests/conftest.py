"""Fixtures shared by the book tests. Each chapter is executed once per test session, in the smoke
profile: the papermill tests, the reference-output checks and the book build all read that one
execution, and the browser checks read the build. Under pytest-xdist (`pytest -n 2`) the workers
share the executions and the build through a folder and file locks: the first worker to ask for a
chapter executes it (so chapters run in parallel on different workers) and the others wait for it
and read what it left."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.book import build_book, execute_chapter, executed_book_tree, toc_notebooks


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that executes a chapter or builds the book is ``slow`` too, so that
    ``pytest -m "not slow"`` runs the library tests alone; and the tests run in the order that
    keeps two xdist workers busy (:func:`_turn`)."""
    for item in items:
        if item.get_closest_marker("notebook") or item.get_closest_marker("book"):
            item.add_marker(pytest.mark.slow)
    items.sort(key=_turn)  # stable: the collection order within each turn


def _turn(item: pytest.Item) -> int:
    """When a test runs: the smoke executions of the chapters first, shared out between the
    workers; then the build, which one worker runs from those executions alone while the other
    goes on with the library tests; last, the tests that read the built pages. (In collection
    order the browser tests came first and left one worker waiting on the build.)"""
    uses = item.fixturenames
    if "built_book" in uses:
        return 3 if "site" in uses else 1  # the browser tests read the pages through `site`
    return 0 if "smoke_chapters" in uses else 2


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


class SmokeChapters:
    """The chapters executed in the smoke profile into ``tree/notebooks/``, each once per session
    on first demand; a failure is kept (``NAME.failed``) and reported to every test that asks
    for that chapter."""

    def __init__(self, tree: Path):
        with locked(tree / "tree.lock"):
            self.tree = executed_book_tree(tree)

    def _execute(self, path: Path, wait: bool) -> bool:
        """Execute the chapter at ``path`` unless it has been; False if another worker holds it
        and ``wait`` is False."""
        done, failed = (self.tree / f"{path.stem}.{end}" for end in ("done", "failed"))
        with locked(self.tree / f"{path.stem}.lock", wait=wait) as held:
            if held and not (done.exists() or failed.exists()):
                failure = execute_chapter(path, self.tree / "notebooks" / path.name)
                (failed.write_text(failure) if failure else done.touch())
            return held

    def executed(self, path: Path) -> Path:
        """The executed copy of the chapter at ``path``; fails the asking test if it raised."""
        self._execute(path, wait=True)
        failed = self.tree / f"{path.stem}.failed"
        if failed.exists():
            pytest.fail(failed.read_text(), pytrace=False)
        return self.tree / "notebooks" / path.name

    def execute_free(self, paths: list[Path]) -> None:
        """Execute each chapter of ``paths`` that no worker has executed or holds now, without
        waiting for the others (:meth:`executed` waits for them)."""
        # Last chapter first: the papermill tests ask for the chapters in reading order, and a
        # worker walking the same order would queue behind each chapter the other is executing.
        for path in reversed(paths):
            self._execute(path, wait=False)


@pytest.fixture(scope="session")
def smoke_chapters(tmp_path_factory: pytest.TempPathFactory) -> SmokeChapters:
    return SmokeChapters(shared_folder(tmp_path_factory, "executed"))


@dataclass(frozen=True)
class BuiltBook:
    """The result of ``jupyter-book build -W --keep-going`` on the executed chapters, and where
    its HTML is."""

    result: subprocess.CompletedProcess
    html: Path

    @property
    def log(self) -> str:
        return f"{self.result.stdout[-4000:]}\n{self.result.stderr[-4000:]}"


@pytest.fixture(scope="session")
def built_book(
    smoke_chapters: SmokeChapters, tmp_path_factory: pytest.TempPathFactory
) -> BuiltBook:
    """The book built once per session, with warnings as errors, from the session's smoke
    executions (no chapter runs again). A chapter that failed fails this fixture, naming it."""
    chapters = toc_notebooks()
    smoke_chapters.execute_free(chapters)
    for path in chapters:
        smoke_chapters.executed(path)
    output = shared_folder(tmp_path_factory, "book")
    record = output / "build.json"
    with locked(output / "build.lock"):
        if not record.exists():
            result = build_book(smoke_chapters.tree, output, "-W", "--keep-going")
            record.write_text(json.dumps({"args": result.args, "returncode": result.returncode,
                                          "stdout": result.stdout, "stderr": result.stderr}))
    kept = json.loads(record.read_text())
    result = subprocess.CompletedProcess(kept["args"], kept["returncode"], kept["stdout"],
                                         kept["stderr"])
    return BuiltBook(result, output / "_build" / "html")
