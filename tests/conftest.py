"""Fixtures shared by the book tests: the strict smoke build of the whole book runs once per
session, and both the build checks and the browser checks read it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.book import ROOT, build_book


@dataclass(frozen=True)
class BuiltBook:
    """The result of ``jupyter-book build . -W --keep-going`` and where its HTML is."""

    result: subprocess.CompletedProcess
    html: Path

    @property
    def log(self) -> str:
        return f"{self.result.stdout[-4000:]}\n{self.result.stderr[-4000:]}"


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> BuiltBook:
    """The book built once, with warnings as errors, in the smoke profile."""
    output = tmp_path_factory.mktemp("book")
    result = build_book(ROOT, output, "-W", "--keep-going")
    return BuiltBook(result, output / "_build" / "html")
