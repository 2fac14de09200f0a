"""Fixtures shared by the book tests. Each chapter is executed once per session, in the smoke
profile: the papermill tests, the reference-output checks and the book build all read that one
execution, and the browser checks read the build."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.book import build_book, execute_chapter, executed_book_tree, toc_notebooks


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that executes a chapter or builds the book is ``slow`` too, so that
    ``pytest -m "not slow"`` runs the library tests alone."""
    for item in items:
        if item.get_closest_marker("notebook") or item.get_closest_marker("book"):
            item.add_marker(pytest.mark.slow)


class SmokeChapters:
    """The chapters executed in the smoke profile into ``tree/notebooks/``, each on first demand
    and never twice; a failure is kept and reported to every test that asks for that chapter."""

    def __init__(self, tree: Path):
        self.tree = executed_book_tree(tree)
        self.failures: dict[Path, str | None] = {}

    def executed(self, path: Path) -> Path:
        """The executed copy of the chapter at ``path``; fails the asking test if it raised."""
        output = self.tree / "notebooks" / path.name
        if path not in self.failures:
            self.failures[path] = execute_chapter(path, output)
        if self.failures[path] is not None:
            pytest.fail(self.failures[path], pytrace=False)
        return output


@pytest.fixture(scope="session")
def smoke_chapters(tmp_path_factory: pytest.TempPathFactory) -> SmokeChapters:
    return SmokeChapters(tmp_path_factory.mktemp("executed"))


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
    """The book built once, with warnings as errors, from the session's smoke executions (no
    chapter runs again). A chapter that failed fails this fixture, naming it."""
    for path in toc_notebooks():
        smoke_chapters.executed(path)
    output = tmp_path_factory.mktemp("book")
    result = build_book(smoke_chapters.tree, output, "-W", "--keep-going")
    return BuiltBook(result, output / "_build" / "html")
