"""Fixtures shared by the book tests. Each chapter is executed once per test session, in the smoke
profile, by nbval when the session collects the chapters (the README's test command: each code
cell a test, the cells marked NBVAL_CHECK_OUTPUT compared with their reference), otherwise by
papermill on first demand; the book is built from those executions and the browser checks read
the build. The hooks below keep nbval's executions (:mod:`tests.nbval_capture`). Under
pytest-xdist (`pytest -n 2 --dist loadfile`, the configured default) a chapter's cells stay on
one worker, chapters run in parallel on the two, and the workers share the executions and the
build through a folder and file locks."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import nbval_capture
from tests.book import (
    build_book,
    execute_chapter,
    executed_book_tree,
    locked,
    shared_folder,
    toc_notebooks,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that executes a chapter or builds the book is ``slow`` too, so that
    ``pytest -m "not slow"`` runs the library tests alone (nbval's cell tests are marked in the
    top-level ``conftest.py``); and the tests run in the order that keeps two xdist workers busy
    (:func:`_turn`)."""
    for item in items:
        if item.get_closest_marker("notebook") or item.get_closest_marker("book"):
            item.add_marker(pytest.mark.slow)
    # With --dist loadfile a whole test file is one unit of work, placed where its first test
    # is: a file with any test of the built book goes last as a whole.
    readers = {item.path for item in items if "built_book" in getattr(item, "fixturenames", ())}
    items.sort(key=lambda item: _turn(item, item.path in readers))  # stable within a turn


def _turn(item: pytest.Item, reads_the_book: bool) -> int:
    """When a test runs: the chapters' smoke executions first (nbval's cells), shared out between
    the workers; then the library tests; last the files that
    build the book from those executions and read its pages. A worker that reaches the build
    waits only for the chapters still running on the other, not for a queue of them: xdist hands
    each worker several files ahead, and a build placed early left one worker waiting for minutes
    while the other worked through its queue."""
    if nbval_capture.is_cell(item):
        return 0
    return 2 if reads_the_book else 1


class SmokeChapters:
    """The chapters executed in the smoke profile into ``tree/notebooks/``, each once per session:
    by nbval for the chapters in ``nbval`` (waited for), by papermill on first demand for the
    others; a failure is kept (``NAME.failed``) and reported to every test that asks for that
    chapter."""

    def __init__(self, tree: Path, nbval: set[str]):
        with locked(tree / "tree.lock"):
            self.tree = executed_book_tree(tree)
        self.nbval = nbval

    def _execute(self, path: Path, wait: bool) -> bool:
        """Execute the chapter at ``path`` unless it has been; False if another worker holds it
        and ``wait`` is False."""
        done, failed = (self.tree / f"{path.stem}.{end}" for end in ("done", "failed"))
        with locked(self.tree / f"{path.stem}.lock", wait=wait) as held:
            if held and not (done.exists() or failed.exists()):
                failure = execute_chapter(path, self.tree / "notebooks" / path.name)
                (failed.write_text(failure) if failure else done.touch())
            return held

    def _wait_for_nbval(self, path: Path, timeout: float = 3600) -> None:
        done, failed = (self.tree / f"{path.stem}.{end}" for end in ("done", "failed"))
        deadline = time.monotonic() + timeout
        while not (done.exists() or failed.exists()):
            if time.monotonic() > deadline:
                pytest.fail(f"nbval did not finish {path.name} within {timeout:.0f} s: run "
                            f"`pytest {path.relative_to(path.parents[1])}` to see why.")
            time.sleep(1)

    def executed(self, path: Path) -> Path:
        """The executed copy of the chapter at ``path``; fails the asking test if it raised."""
        if path.stem in self.nbval:
            self._wait_for_nbval(path)
        else:
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
            if path.stem not in self.nbval:
                self._execute(path, wait=False)


@pytest.fixture(scope="session")
def smoke_chapters(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> SmokeChapters:
    return SmokeChapters(shared_folder(tmp_path_factory, "executed"),
                         pytestconfig.stash.get(nbval_capture.CHAPTERS, set()))


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
